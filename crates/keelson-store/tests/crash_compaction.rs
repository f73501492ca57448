//! `kill -9` during compaction loses no sample and duplicates none.
//!
//! The test re-executes its own binary as a child that writes a known
//! sequence of samples and compacts every hour, kills it (SIGKILL) at a
//! random moment just after it starts compacting, and checks the database:
//! `PRAGMA integrity_check`, every tag an unbroken run of exactly the
//! samples written, in order, once each. The child resumes where the last
//! committed batch ended, so every round builds on the previous one.

use chrono::{TimeZone, Utc};
use keelson_model::{Quality, Sample};
use keelson_store::{Db, Resolution, Site};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CHILD_ENV: &str = "KEELSON_CRASH_CHILD_DIR";
const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_767_225_600_000;
const TAGS: i64 = 8;
const HOURS: i64 = 10;
const BATCH_S: i64 = 300;
const ROUNDS: usize = 8;

fn tag(i: i64) -> String {
    format!("t{i}")
}

fn value(tag: i64, s: i64) -> f64 {
    ((s * 7 + tag * 13) % 1000) as f64 * 0.1
}

/// The child's side: not a test of its own. It does nothing unless the
/// parent test started it with the database directory in `CHILD_ENV`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let db = Db::open(Path::new(&dir), Site::Edge).expect("open");
    // Batches hold every tag for the same seconds, so any tag's last sample
    // ends the last committed batch.
    let mut s = match db.series(
        &tag(0),
        T0,
        T0 + HOURS * HOUR_MS,
        Some(Resolution::Raw),
        usize::MAX,
    ) {
        Ok(series) => series
            .points
            .last()
            .map_or(0, |p| (p.ts_ms - T0) / 1000 + 1),
        Err(_) => 0,
    };
    // Like the agent's upkeep task, the child first finishes whatever pass
    // a kill interrupted.
    println!("compacting");
    db.compact(T0 + s * 1000, 2_000).expect("compact");
    while s < HOURS * 3600 {
        let end = s + BATCH_S;
        let batch: Vec<Sample> = (0..TAGS)
            .flat_map(|t| {
                (s..end).map(move |x| Sample {
                    tag: tag(t),
                    ts: Utc
                        .timestamp_millis_opt(T0 + x * 1000)
                        .single()
                        .expect("ts"),
                    value: Some(value(t, x)),
                    quality: Quality::Good,
                    text: None,
                })
            })
            .collect();
        db.insert_samples(&batch).expect("insert");
        s = end;
        if s % 3600 == 0 {
            println!("compacting");
            db.compact(T0 + s * 1000, 2_000).expect("compact");
        }
    }
    println!("done");
}

/// Checks the database and returns how many samples each tag holds.
fn verify(dir: &Path) -> i64 {
    let db = Db::open(dir, Site::Edge).expect("reopen after the kill");
    assert_eq!(db.integrity_check().expect("check"), "ok");
    let mut per_tag = None;
    let mut total = 0;
    for t in 0..TAGS {
        let points = match db.series(
            &tag(t),
            T0,
            T0 + HOURS * HOUR_MS,
            Some(Resolution::Raw),
            usize::MAX,
        ) {
            Ok(s) => s.points,
            Err(keelson_store::StoreError::NotFound) => Vec::new(),
            Err(e) => panic!("query: {e}"),
        };
        for (i, p) in points.iter().enumerate() {
            let x = i as i64;
            assert_eq!(
                p.ts_ms,
                T0 + x * 1000,
                "tag {t}: sample {i} lost or duplicated"
            );
            assert_eq!(p.value, Some(value(t, x)), "tag {t}: sample {i} changed");
        }
        let n = points.len() as i64;
        assert_eq!(n % BATCH_S, 0, "tag {t}: a batch was half written");
        assert!(
            per_tag.is_none_or(|m| m == n),
            "tags disagree: {per_tag:?} vs {n}"
        );
        per_tag = Some(n);
        total += n;
    }
    // Rows and blocks together hold each sample once: a sample both in a
    // block and still a row would be counted twice here.
    assert_eq!(db.sample_count().expect("count") as i64, total);
    per_tag.unwrap_or(0)
}

fn child(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("own binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child")
}

#[test]
fn kill_9_during_compaction_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut killed_while_compacting = 0;
    let mut last = 0;
    for _ in 0..ROUNDS {
        let mut c = child(dir.path());
        let out = BufReader::new(c.stdout.take().expect("stdout"));
        let mut compacting = false;
        for line in out.lines() {
            if line.expect("read the child").trim() == "compacting" {
                compacting = true;
                break;
            }
        }
        if compacting {
            // A random moment in the first ~150 ms of the pass: the pass
            // runs a few dozen transactions, so kills land before, inside
            // and between them.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .subsec_nanos();
            std::thread::sleep(Duration::from_micros(u64::from(nanos % 150_000)));
            c.kill().expect("SIGKILL the child");
            killed_while_compacting += 1;
        }
        c.wait().expect("reap the child");
        let n = verify(dir.path());
        assert!(n >= last, "samples went missing: {n} < {last}");
        last = n;
    }
    assert!(
        killed_while_compacting >= ROUNDS / 2,
        "too few kills landed"
    );

    // Let the last child finish: everything written, exactly once, and
    // compacted into blocks.
    let mut c = child(dir.path());
    let status = c.wait().expect("wait");
    assert!(status.success());
    assert_eq!(verify(dir.path()), HOURS * 3600);
    let db = Db::open(dir.path(), Site::Edge).expect("open");
    assert_eq!(
        db.storage_usage(u64::MAX).expect("usage").block_samples as i64,
        TAGS * HOURS * 3600
    );
}
