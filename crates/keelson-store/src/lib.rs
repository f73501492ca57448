//! Keelson's SQLite store, for the edge agent and the shore alike.
//!
//! # Invariants
//!
//! - One file per site (`keelson.db` in the data directory, created with mode
//!   0600 as it holds password hashes, owned like the directory), in WAL mode with
//!   `synchronous = FULL`: a transaction that returned is on disk, so an
//!   acknowledged write survives `kill -9` and power loss. Sensor samples
//!   are the one exception: a sample batch syncs the log to disk only when
//!   the last synced one is [`SAMPLE_SYNC_EVERY`] old, so a power loss may
//!   take back at most that much of the latest readings (never a record,
//!   whose FULL commit also syncs every sample batch before it), while
//!   `kill -9` still loses nothing.
//! - All writes go through one connection behind a mutex, so a
//!   read-modify-write of a record (load the document, change it, save it)
//!   can never interleave with another. Reads use a second connection and
//!   never wait for the writer (WAL readers see the last committed state).
//! - A record's document, its query projection and its change-log entries
//!   are written in one transaction: there is never a document without its
//!   change, nor a change without its document.
//! - Migrations live in the workspace's `schema/` folder, are embedded at
//!   build time and applied at open, each in its own transaction, recorded
//!   in `schema_migrations` by name.
//!
//! This crate stores automerge documents and changes as opaque bytes: it
//! never decodes them (only the sync crate knows automerge).

mod alarms;
mod attachments;
pub mod backup;
pub mod block;
mod edge;
pub mod files;
mod migrate;
mod records;
mod shore;
pub mod tiers;
mod users;
mod vessel_alarms;

pub use alarms::{AlarmEventRow, AlarmRow, AlarmWrite, NewAlarmRow};
pub use attachments::{ArrivingFile, FileMeta, PendingFile};
pub use edge::{StoredSample, SyncState};
pub use records::{
    ChangeRow, FaultFilter, NewChange, Origin, PartFilter, RecordTx, RecordWrite,
    RequisitionFilter, StoredRecord, WorkOrderFilter,
};
pub use shore::{DEFAULT_ORG, NonceOutcome, OrgRow, QuarantineRow, VesselRow};
pub use tiers::{
    CompactionReport, LaneRollup, Resolution, RetentionPolicy, RetentionReport, RollupBatch,
    RollupCursor, Series, SeriesPoint, StorageUsage,
};
pub use users::{SessionUser, UserRow, UserSummary};
pub use vessel_alarms::VesselAlarm;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be opened or created.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file that failed to open.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A migration failed; the database is left at the previous migration.
    #[error("migration {name} failed: {source}")]
    Migration {
        /// The migration's name.
        name: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// A stored value could not be decoded (for example a projection's JSON).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The write conflicts with what is stored (for example a duplicate name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A file or directory beside the database could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An agent is running on this data directory (it holds the run lock).
    #[error("a Keelson agent is running on {}; stop its service first", .0.display())]
    Running(PathBuf),
    /// A backup or restore was refused or failed; the message says why.
    #[error("{0}")]
    Backup(String),
    /// The write would go past a limit of the storage format; the message
    /// names it.
    #[error("storage limit reached: {0}")]
    Limit(String),
}

/// Which schema a database carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A vessel's onboard database.
    Edge,
    /// The shore's fleet database.
    Shore,
}

/// A handle on the site's database; cheap to clone and safe to share.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: PathBuf,
    site: Site,
    actor: [u8; 16],
    /// When a sample batch last synced the log to disk; taken only while
    /// holding the writer.
    samples_synced_at: Mutex<Option<std::time::Instant>>,
}

/// The longest stretch of sample batches committed without syncing the
/// log to disk (see the invariants above).
pub const SAMPLE_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .field("site", &self.inner.site)
            .finish()
    }
}

/// The database file's name inside a data directory.
pub const DB_FILE: &str = "keelson.db";

impl Db {
    /// Opens (creating when missing) the database in `data_dir` and applies
    /// any pending migrations.
    pub fn open(data_dir: &Path, site: Site) -> Result<Db, StoreError> {
        let path = data_dir.join(DB_FILE);
        create_private_file(&path)?;
        let writer = open_conn(&path)?;
        migrate::apply(&writer, site)?;
        let reader = open_conn(&path)?;
        Ok(Db {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                path,
                site,
                // A fresh random actor for every open: edits are serialized by
                // the writer lock, and a restored backup is always reopened,
                // so two different changes never share an actor and sequence
                // number.
                actor: *uuid::Uuid::new_v4().as_bytes(),
                samples_synced_at: Mutex::new(None),
            }),
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The automerge actor id this handle's local edits are made with.
    /// It lives for as long as the handle, so consecutive edits share it
    /// and compress well on the wire.
    pub fn session_actor(&self) -> &[u8; 16] {
        &self.inner.actor
    }

    /// Which schema this database carries.
    pub fn site(&self) -> Site {
        self.inner.site
    }

    // A panic while a connection was held leaves its lock poisoned. The
    // connection itself is sound (an open transaction rolls back as the
    // panic unwinds through it), so the lock is taken anyway: one failed
    // request must not stop every later one.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self
            .inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self
            .inner
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Bytes the database takes on disk: the main file plus its WAL.
    pub fn size_bytes(&self) -> u64 {
        let wal = self.inner.path.with_file_name(format!("{DB_FILE}-wal"));
        [self.inner.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The database's epoch: made at creation, made anew by a restore (see
    /// `schema/common/0005_store_epoch.sql`).
    pub fn epoch(&self) -> Result<String, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row("SELECT epoch FROM store_epoch", [], |r| r.get(0))?)
    }

    /// Gives the database a new epoch, after it was restored from a backup.
    pub(crate) fn renew_epoch(&self) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE store_epoch SET epoch = lower(hex(randomblob(16)))",
            [],
        )?;
        Ok(())
    }

    /// Runs SQLite's own consistency check and returns its verdict
    /// (`"ok"` when the file is sound).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// Creates the database file readable by its owner only, whatever the
/// caller's umask: it holds password hashes. SQLite gives its `-wal` and
/// `-shm` files the database file's mode.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {
            // Run as root (`sudo keelson-edge user add` before the service
            // ever started), the new file would belong to root and the
            // service user could not open it: it takes the directory's
            // owner instead. SQLite does the same for its -wal and -shm.
            let dir = path.parent().unwrap_or(Path::new("."));
            if let Err(e) = backup::give_to_dir_owner(dir, &[path.to_owned()]) {
                tracing::warn!(error = %e, "could not give the new database the directory's owner");
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    // WAL lets the UI read while ingest writes; FULL makes every committed
    // transaction durable before the call returns.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A 32 MiB page cache (SQLite's default is 2 MiB) keeps the record
    // projections a list page reads, thousands of faults and plans, in
    // memory rather than copying them from the operating system each time.
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Milliseconds since the Unix epoch for a timestamp.
pub(crate) fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn open(site: Site) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), site).expect("open");
        (dir, db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_wal_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, db) = test_util::open(Site::Edge);
        db.upsert_user("chief", "hash", "chief_engineer")
            .expect("write");
        for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal")] {
            let mode = std::fs::metadata(dir.path().join(&name))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert!(db.size_bytes() > 0);
    }
}
