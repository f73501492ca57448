//! `storage`: simulated days of tags through the real write and compaction
//! path, then trend queries of one tag.
//!
//! Options: `--days N` (default 45), `--tags N` (default 10), `--dir PATH`
//! (default a temporary directory, removed afterwards). The last line is
//! `storage: bytes_per_sample=B compaction_per_s=N p95_raw_24h_ms=X p95_hourly_30d_ms=Y …`.

use anyhow::{Context, Result};
use keelson_edge::simulate::{SimulateOptions, simulate};
use keelson_store::{Db, Resolution, Site};
use std::time::Instant;

const HOUR_MS: i64 = 3_600_000;
const QUERIES: usize = 40;

fn p95(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[(ms.len() * 95).div_ceil(100).saturating_sub(1)]
}

pub fn run(args: &[String]) -> Result<()> {
    let days: u32 = crate::option(args, "--days", 45)?;
    let tags: u32 = crate::option(args, "--tags", 10)?;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = crate::option(args, "--dir", tmp.path().to_owned())?;
    let opts = SimulateOptions::new(days, tags, dir.clone());
    eprintln!(
        "storage: simulating {days} days x {tags} tags at 1 Hz into {}",
        dir.display()
    );
    let r = simulate(&opts, |hours, r| {
        if hours % 24 == 0 {
            eprintln!(
                "  day {} done, {} samples, {:.0} s",
                hours / 24,
                r.samples,
                r.elapsed.as_secs_f64()
            );
        }
    })?;
    let u = &r.usage;
    eprintln!(
        "  {} samples in {:.1} s; disk used {} B: raw blocks {} B, 1-minute rollups {} B, hourly {} B, rows {} B, other {} B",
        r.samples,
        r.elapsed.as_secs_f64(),
        u.used_bytes,
        u.raw_block_bytes,
        u.minute_bytes,
        u.hour_bytes,
        u.rows_bytes,
        u.other_bytes
    );

    // Trend queries of one analog tag, as the UI and the API make them:
    // windows spread over the simulated period, each through the tiers.
    let db = Db::open(&dir, Site::Edge).context("reopening the database")?;
    let tag = "sim.analog.00000";
    let end = opts.start_ms + i64::from(days) * 24 * HOUR_MS;
    let span = end - opts.start_ms;
    let mut raw = Vec::with_capacity(QUERIES);
    let mut hourly = Vec::with_capacity(QUERIES);
    let mut points = (0, 0);
    for i in 0..QUERIES {
        let frac = i as f64 / QUERIES as f64;
        let to =
            (opts.start_ms + 24 * HOUR_MS + ((span - 24 * HOUR_MS) as f64 * frac) as i64).min(end);
        let t = Instant::now();
        let s = db.series(
            tag,
            to - 24 * HOUR_MS,
            to - 1,
            Some(Resolution::Raw),
            usize::MAX,
        )?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        points.0 = s.points.len();
        let t = Instant::now();
        let s = db.series(
            tag,
            end - 30 * 24 * HOUR_MS,
            end - 1,
            Some(Resolution::Hour),
            usize::MAX,
        )?;
        hourly.push(t.elapsed().as_secs_f64() * 1000.0);
        points.1 = s.points.len();
    }
    eprintln!(
        "  a 24-hour raw trend has {} points, a 30-day hourly trend {}",
        points.0, points.1
    );
    println!(
        "storage: bytes_per_sample={:.3} compaction_per_s={:.0} p95_raw_24h_ms={:.2} p95_hourly_30d_ms={:.2} \
         block_bytes_per_sample={:.3} days={days} tags={tags} samples={} elapsed_s={:.1}",
        r.bytes_per_sample(),
        r.compaction_per_s(),
        p95(raw),
        p95(hourly),
        r.block_bytes_per_sample(),
        r.samples,
        r.elapsed.as_secs_f64()
    );
    Ok(())
}
