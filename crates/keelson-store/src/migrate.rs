//! Embedded SQL migrations from the workspace's `schema/` folder.

use crate::{Site, StoreError};
use rusqlite::Connection;

/// A migration: a unique name and the SQL it runs.
type Migration = (&'static str, &'static str);

const COMMON: &[Migration] = &[
    (
        "common/0001_records_users",
        include_str!("../../../schema/common/0001_records_users.sql"),
    ),
    (
        "common/0002_equipment_work_orders",
        include_str!("../../../schema/common/0002_equipment_work_orders.sql"),
    ),
];

const EDGE: &[Migration] = &[
    (
        "edge/0001_samples_sync",
        include_str!("../../../schema/edge/0001_samples_sync.sql"),
    ),
    (
        "edge/0002_sample_tiers",
        include_str!("../../../schema/edge/0002_sample_tiers.sql"),
    ),
    (
        "edge/0003_sync_budget",
        include_str!("../../../schema/edge/0003_sync_budget.sql"),
    ),
];

const SHORE: &[Migration] = &[
    (
        "shore/0001_vessels_sync",
        include_str!("../../../schema/shore/0001_vessels_sync.sql"),
    ),
    (
        "shore/0003_vessel_progress",
        include_str!("../../../schema/shore/0003_vessel_progress.sql"),
    ),
    (
        "shore/0004_organizations",
        include_str!("../../../schema/shore/0004_organizations.sql"),
    ),
];

/// The names of every migration this build knows for `site`.
pub(crate) fn names(site: Site) -> Vec<&'static str> {
    COMMON
        .iter()
        .chain(specific(site))
        .map(|&(name, _)| name)
        .collect()
}

fn specific(site: Site) -> &'static [Migration] {
    match site {
        Site::Edge => EDGE,
        Site::Shore => SHORE,
    }
}

/// Applies every migration of `site` not yet recorded, each in its own
/// transaction, so a failure leaves the database at the last good step.
pub(crate) fn apply(conn: &Connection, site: Site) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             name TEXT PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    for &(name, sql) in COMMON.iter().chain(specific(site)) {
        let done: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        let run = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(sql)?;
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at_ms) VALUES (?1, ?2)",
                rusqlite::params![name, crate::now_ms()],
            )?;
            conn.execute_batch("COMMIT")
        };
        if let Err(source) = run() {
            // The rollback may fail when the transaction never began; the
            // migration error is the one worth reporting.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Migration { name, source });
        }
        tracing::info!(migration = name, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Db, Site};

    #[test]
    fn migrations_apply_once_and_reopen_cleanly() {
        for site in [Site::Edge, Site::Shore] {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = Db::open(dir.path(), site).expect("first open");
            drop(db);
            let db = Db::open(dir.path(), site).expect("second open");
            assert_eq!(db.integrity_check().expect("check"), "ok");
        }
    }
}
