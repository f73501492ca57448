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
    (
        "common/0003_counters",
        include_str!("../../../schema/common/0003_counters.sql"),
    ),
    (
        "common/0004_plans",
        include_str!("../../../schema/common/0004_plans.sql"),
    ),
    (
        "common/0005_store_epoch",
        include_str!("../../../schema/common/0005_store_epoch.sql"),
    ),
    (
        "common/0006_fault_list_index",
        include_str!("../../../schema/common/0006_fault_list_index.sql"),
    ),
    (
        "common/0007_spare_parts",
        include_str!("../../../schema/common/0007_spare_parts.sql"),
    ),
    (
        "common/0008_attachments",
        include_str!("../../../schema/common/0008_attachments.sql"),
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
    (
        "edge/0004_time_ordered_samples",
        include_str!("../../../schema/edge/0004_time_ordered_samples.sql"),
    ),
    (
        "edge/0005_tag_texts",
        include_str!("../../../schema/edge/0005_tag_texts.sql"),
    ),
    (
        "edge/0006_shore_epoch",
        include_str!("../../../schema/edge/0006_shore_epoch.sql"),
    ),
    (
        "edge/0007_alarms",
        include_str!("../../../schema/edge/0007_alarms.sql"),
    ),
    (
        "edge/0008_file_uploads",
        include_str!("../../../schema/edge/0008_file_uploads.sql"),
    ),
    (
        "edge/0009_alarms_lane",
        include_str!("../../../schema/edge/0009_alarms_lane.sql"),
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
    (
        "shore/0005_vessel_rollups",
        include_str!("../../../schema/shore/0005_vessel_rollups.sql"),
    ),
    (
        "shore/0006_vessel_epoch",
        include_str!("../../../schema/shore/0006_vessel_epoch.sql"),
    ),
    (
        "shore/0007_vessel_files",
        include_str!("../../../schema/shore/0007_vessel_files.sql"),
    ),
    (
        "shore/0008_vessel_alarms",
        include_str!("../../../schema/shore/0008_vessel_alarms.sql"),
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
    use crate::{Db, Resolution, Site};

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

    #[test]
    fn samples_written_before_the_slot_key_survive_its_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(crate::DB_FILE);
        {
            // A vessel database as the release before the slot key left it.
            let conn = rusqlite::Connection::open(&path).expect("open");
            conn.execute_batch("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT;")
                .expect("bookkeeping");
            for &(name, sql) in super::COMMON.iter().chain(&super::EDGE[..3]) {
                conn.execute_batch(sql).expect(name);
                conn.execute(
                    "INSERT INTO schema_migrations (name, applied_at_ms) VALUES (?1, 0)",
                    [name],
                )
                .expect("record");
            }
            conn.execute("INSERT INTO tags (id, name) VALUES (1, 'me.rpm')", [])
                .expect("tag");
            // Two samples on either side of a slot boundary, one before 1970.
            for ts in [-15_000_i64, 9_999, 10_000, 1_767_225_600_000] {
                conn.execute(
                    "INSERT INTO samples (tag_id, ts_ms, value, quality) VALUES (1, ?1, 1.5, 0)",
                    [ts],
                )
                .expect("sample");
            }
        }
        let db = Db::open(dir.path(), Site::Edge).expect("migrate");
        let all = db
            .series(
                "me.rpm",
                -20_000,
                1_767_225_600_000,
                Some(Resolution::Raw),
                10,
            )
            .expect("series");
        let times: Vec<i64> = all.points.iter().map(|p| p.ts_ms).collect();
        assert_eq!(times, vec![-15_000, 9_999, 10_000, 1_767_225_600_000]);
        let keys: Vec<i64> = {
            let conn = db.reader().expect("reader");
            let mut stmt = conn
                .prepare("SELECT key FROM samples ORDER BY key")
                .expect("prepare");
            stmt.query_map([], |r| r.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let expected: Vec<i64> = times
            .iter()
            .map(|&ts| crate::tiers::row_key(1, ts).expect("in range"))
            .collect();
        assert_eq!(keys, expected);
    }
}
