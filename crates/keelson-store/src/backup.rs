//! Online backup and cautious restore of a site's database, and the run
//! lock that tells the two apart from a running agent.
//!
//! # Invariants
//!
//! - A backup is taken through SQLite's online backup API in a single step,
//!   that is inside one read transaction on the live database. In WAL mode
//!   that read never blocks the agent's writer, and the copy is exactly the
//!   database as of one committed transaction: never half a transaction,
//!   whatever the agent writes meanwhile.
//! - A backup file is one self-contained SQLite file (rollback journal mode,
//!   no `-wal` beside it), mode 0600 because it holds password hashes. It is
//!   written under a temporary name, checked with `PRAGMA integrity_check`,
//!   synced, then renamed into place: a backup file that exists is whole.
//!   An existing file is never overwritten.
//! - A running agent holds an exclusive `flock` on its data directory for
//!   as long as it runs ([`RunLock`]). Restore takes the same lock and
//!   refuses to run when it cannot, so it never swaps a database under a
//!   live agent. The kernel drops the lock when the process dies, even on
//!   `kill -9`, so a crash never leaves a stale lock behind.
//! - Restore checks the backup before touching anything: it must pass
//!   `integrity_check`, carry the schema of the same site, and no migration
//!   this build does not know (a backup from a newer release is refused).
//!   The current database is first copied aside to
//!   `keelson.db.pre-restore-<UTC time>` in the data directory, so a
//!   mistaken restore can itself be undone. The restore then replaces the
//!   database's content in one SQLite transaction, and pending migrations
//!   are applied as at any open.
//! - Restored files get the data directory's owner, so a restore run by
//!   root leaves files the service user can still open.

use crate::{DB_FILE, Site, StoreError, migrate};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, MAIN_DB, OpenFlags};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many times a backup step that found the database busy is retried.
const BUSY_RETRIES: u32 = 50;

/// An exclusive lock on a data directory, held by a running agent.
#[derive(Debug)]
pub struct RunLock {
    // The lock lives as long as this open file description.
    _dir: File,
}

impl RunLock {
    /// Takes the lock on `data_dir`, or fails with [`StoreError::Running`]
    /// when another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<RunLock, StoreError> {
        let dir = File::open(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        match rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(RunLock { _dir: dir }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                Err(StoreError::Running(data_dir.to_owned()))
            }
            Err(e) => Err(StoreError::Io {
                path: data_dir.to_owned(),
                source: e.into(),
            }),
        }
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Where the database that was replaced was copied, if there was one.
    pub previous: Option<PathBuf>,
    /// The migrations the restored database carries.
    pub migrations: Vec<String>,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backup written to {} ({} bytes)",
            self.path.display(),
            self.bytes
        )
    }
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.previous {
            Some(previous) => write!(
                f,
                "restored; the database it replaced was kept at {}",
                previous.display()
            ),
            None => write!(f, "restored"),
        }
    }
}

/// Copies the database in `data_dir` to `to` while the agent may be
/// running and writing.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    let db_path = data_dir.join(DB_FILE);
    if !db_path.exists() {
        return Err(StoreError::Backup(format!(
            "no database at {}",
            db_path.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists; choose a new file name",
            to.display()
        )));
    }
    // Opening read-write (never create) lets SQLite use the live WAL index
    // exactly as the agent does.
    let src = Connection::open_with_flags(
        &db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: db_path.clone(),
        source,
    })?;
    src.busy_timeout(Duration::from_secs(5))?;

    let partial = partial_name(to);
    create_private(&partial)?;
    let result = copy_into(&src, &partial).and_then(|()| {
        sync_file(&partial)?;
        std::fs::rename(&partial, to).map_err(|source| StoreError::Io {
            path: to.to_owned(),
            source,
        })?;
        sync_parent(to)
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let bytes = std::fs::metadata(to)
        .map_err(|source| StoreError::Io {
            path: to.to_owned(),
            source,
        })?
        .len();
    tracing::info!(from = %db_path.display(), to = %to.display(), bytes, "backup written");
    Ok(BackupReport {
        path: to.to_owned(),
        bytes,
    })
}

/// Copies the whole of `src` into the (empty) file at `dst_path`, then
/// makes it a self-contained, checked file.
fn copy_into(src: &Connection, dst_path: &Path) -> Result<(), StoreError> {
    let mut dst = Connection::open(dst_path).map_err(|source| StoreError::Open {
        path: dst_path.to_owned(),
        source,
    })?;
    {
        let backup = Backup::new(src, &mut dst)?;
        let mut busy = 0;
        loop {
            // -1 copies every page in one step, so the copy is one snapshot.
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if busy < BUSY_RETRIES => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(StoreError::Backup(
                        "the database stayed locked; try again".into(),
                    ));
                }
            }
        }
    }
    // A backup is one file to carry around: no WAL beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    let verdict = integrity(&dst)?;
    if verdict != "ok" {
        return Err(StoreError::Backup(format!(
            "the copy failed its integrity check: {verdict}"
        )));
    }
    dst.close().map_err(|(_, e)| StoreError::Sqlite(e))?;
    Ok(())
}

/// Replaces the database in `data_dir` with the backup at `from`. Refuses
/// while an agent runs on `data_dir` and when the backup does not fit.
pub fn restore(data_dir: &Path, site: Site, from: &Path) -> Result<RestoreReport, StoreError> {
    let _lock = RunLock::acquire(data_dir)?;
    let migrations = check_backup(from, site)?;

    let db_path = data_dir.join(DB_FILE);
    let previous = if db_path.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = data_dir.join(format!("{DB_FILE}.pre-restore-{stamp}"));
        backup(data_dir, &aside)?;
        Some(aside)
    } else {
        None
    };

    {
        let mut dst = Connection::open(&db_path).map_err(|source| StoreError::Open {
            path: db_path.clone(),
            source,
        })?;
        dst.busy_timeout(Duration::from_secs(5))?;
        dst.restore(MAIN_DB, from, None::<fn(rusqlite::backup::Progress)>)?;
        dst.pragma_update(None, "journal_mode", "WAL")?;
        let verdict = integrity(&dst)?;
        if verdict != "ok" {
            return Err(StoreError::Backup(format!(
                "the restored database failed its integrity check: {verdict}"
            )));
        }
        // Checkpointing leaves everything in the main file before the
        // agent starts again.
        dst.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    }
    // Bring an older backup up to this build's schema now rather than at
    // the agent's next start, so a failure shows here. The restored
    // database numbers its changes again from where the backup stopped, so
    // it gets a new epoch: its peer then trusts no cursor from before.
    crate::Db::open(data_dir, site)?.renew_epoch()?;

    let mut owned = vec![db_path.clone()];
    for suffix in ["-wal", "-shm"] {
        let p = data_dir.join(format!("{DB_FILE}{suffix}"));
        if p.exists() {
            owned.push(p);
        }
    }
    owned.extend(previous.clone());
    give_to_dir_owner(data_dir, &owned)?;
    tracing::info!(from = %from.display(), to = %db_path.display(), "database restored");
    Ok(RestoreReport {
        previous,
        migrations,
    })
}

/// Checks that `from` is a sound backup of `site` that this build can
/// open; returns its migrations.
fn check_backup(from: &Path, site: Site) -> Result<Vec<String>, StoreError> {
    if !from.is_file() {
        return Err(StoreError::Backup(format!(
            "{} is not a file",
            from.display()
        )));
    }
    let conn = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: from.to_owned(),
        source,
    })?;
    let verdict = integrity(&conn).map_err(|e| {
        StoreError::Backup(format!("{} is not a Keelson backup: {e}", from.display()))
    })?;
    if verdict != "ok" {
        return Err(StoreError::Backup(format!(
            "{} failed its integrity check: {verdict}",
            from.display()
        )));
    }
    let names: Vec<String> = conn
        .prepare("SELECT name FROM schema_migrations ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|_| StoreError::Backup(format!("{} is not a Keelson backup", from.display())))?;
    let own_prefix = match site {
        Site::Edge => "edge/",
        Site::Shore => "shore/",
    };
    if !names.iter().any(|n| n.starts_with(own_prefix)) {
        return Err(StoreError::Backup(format!(
            "{} is not a backup of a {} database",
            from.display(),
            match site {
                Site::Edge => "vessel (edge)",
                Site::Shore => "shore",
            }
        )));
    }
    let known = migrate::names(site);
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(StoreError::Backup(format!(
            "{} comes from a newer release (migration {unknown}); restore it with that release",
            from.display()
        )));
    }
    Ok(names)
}

fn integrity(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

fn partial_name(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

/// Creates an empty file readable by its owner only, refusing to reuse one.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Makes a rename durable by syncing the directory that holds it.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync_file(dir)
}

/// Gives `files` the owner and group of `dir` where they differ.
pub(crate) fn give_to_dir_owner(dir: &Path, files: &[PathBuf]) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source: io::Error| StoreError::Io { path, source }
        };
        let owner = std::fs::metadata(dir).map_err(io_err(dir))?;
        for f in files {
            let meta = std::fs::metadata(f).map_err(io_err(f))?;
            if meta.uid() != owner.uid() || meta.gid() != owner.gid() {
                std::os::unix::fs::chown(f, Some(owner.uid()), Some(owner.gid()))
                    .map_err(io_err(f))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, files);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Db;
    use chrono::{TimeZone, Utc};
    use keelson_model::{Quality, Sample};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    fn samples(start: i64, n: i64) -> Vec<Sample> {
        (start..start + n)
            .map(|i| Sample {
                tag: "me_rpm".into(),
                ts: Utc.timestamp_millis_opt(i * 1000).single().expect("ts"),
                value: Some(i as f64),
                quality: Quality::Good,
                text: None,
            })
            .collect()
    }

    fn count(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open");
        conn.query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn backup_while_writing_is_consistent_and_restore_brings_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Site::Edge).expect("open");
        db.register_tags(&[("me_rpm".into(), "rpm".into())])
            .expect("tags");
        db.insert_samples(&samples(0, 500)).expect("seed");

        // A writer keeps committing batches of 100 while the backup runs, so
        // a consistent copy holds a whole number of batches.
        let stop = Arc::new(AtomicBool::new(false));
        let batches = Arc::new(AtomicU64::new(0));
        let writer = {
            let (db, stop, batches) = (db.clone(), stop.clone(), batches.clone());
            std::thread::spawn(move || {
                let mut next = 500;
                while !stop.load(Ordering::SeqCst) {
                    db.insert_samples(&samples(next, 100)).expect("write");
                    next += 100;
                    batches.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        while batches.load(Ordering::SeqCst) < 3 {
            std::thread::yield_now();
        }
        let out = tempfile::tempdir().expect("tempdir");
        let file = out.path().join("edge.backup");
        let report = backup(dir.path(), &file).expect("backup");
        let during = batches.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer");
        assert!(report.bytes > 0);
        assert!(during >= 3);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!partial_name(&file).exists());
        let copy = Connection::open(&file).expect("open copy");
        let verdict: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(verdict, "ok");
        let journal: String = copy
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(journal, "delete");
        drop(copy);
        let copied = count(&file);
        assert_eq!(copied % 100, 0, "the copy holds half a batch: {copied}");
        assert!(copied >= 500);

        // A second backup to the same name is refused.
        assert!(matches!(
            backup(dir.path(), &file),
            Err(StoreError::Backup(_))
        ));

        // Restore refuses while the database's agent holds the run lock.
        let lock = RunLock::acquire(dir.path()).expect("lock");
        assert!(matches!(
            restore(dir.path(), Site::Edge, &file),
            Err(StoreError::Running(_))
        ));
        drop(lock);
        let epoch = db.epoch().expect("epoch");
        drop(db);

        let total = count(&dir.path().join(DB_FILE));
        assert!(total > copied, "the live database grew after the backup");
        let report = restore(dir.path(), Site::Edge, &file).expect("restore");
        let previous = report.previous.expect("the old database is kept aside");
        assert_eq!(count(&previous), total);
        let db = Db::open(dir.path(), Site::Edge).expect("reopen");
        assert_eq!(db.sample_count().expect("count"), copied as u64);
        assert_eq!(db.integrity_check().expect("check"), "ok");
        // The restored database starts a new epoch, so its peer trusts no
        // cursor from before.
        let renewed = db.epoch().expect("epoch");
        assert_eq!(renewed.len(), 32);
        assert_ne!(renewed, epoch);
    }

    #[test]
    fn restore_refuses_a_backup_of_the_other_site_or_a_non_database() {
        let shore_dir = tempfile::tempdir().expect("tempdir");
        drop(Db::open(shore_dir.path(), Site::Shore).expect("open"));
        let out = tempfile::tempdir().expect("tempdir");
        let shore_backup = out.path().join("shore.backup");
        backup(shore_dir.path(), &shore_backup).expect("backup");

        let edge_dir = tempfile::tempdir().expect("tempdir");
        drop(Db::open(edge_dir.path(), Site::Edge).expect("open"));
        let e = restore(edge_dir.path(), Site::Edge, &shore_backup).expect_err("wrong site");
        assert!(e.to_string().contains("not a backup of a vessel"), "{e}");

        let junk = out.path().join("junk");
        std::fs::write(&junk, b"not a database at all, just some bytes").expect("write");
        let e = restore(edge_dir.path(), Site::Edge, &junk).expect_err("junk");
        assert!(matches!(e, StoreError::Backup(_)), "{e}");

        // Nothing was replaced or copied aside by the refused restores.
        let names: Vec<_> = std::fs::read_dir(edge_dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.to_string_lossy().contains("pre-restore")),
            "{names:?}"
        );
    }

    #[test]
    fn restore_refuses_a_backup_from_a_newer_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Db::open(dir.path(), Site::Edge).expect("open"));
        let out = tempfile::tempdir().expect("tempdir");
        let file = out.path().join("edge.backup");
        backup(dir.path(), &file).expect("backup");
        let conn = Connection::open(&file).expect("open");
        conn.execute(
            "INSERT INTO schema_migrations (name, applied_at_ms) VALUES ('edge/9999_future', 0)",
            [],
        )
        .expect("insert");
        drop(conn);
        let e = restore(dir.path(), Site::Edge, &file).expect_err("newer");
        assert!(e.to_string().contains("newer release"), "{e}");
    }

    #[test]
    fn the_run_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunLock::acquire(dir.path()).expect("first");
        assert!(matches!(
            RunLock::acquire(dir.path()),
            Err(StoreError::Running(_))
        ));
        drop(first);
        RunLock::acquire(dir.path()).expect("again");
    }
}
