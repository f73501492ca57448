//! Fleet IT's operations against running agents: an online backup while
//! the engine room writes, a restore that refuses to run under a live agent
//! and brings the data back once it is stopped, and `/metrics` covering
//! ingest, storage, sync and HTTP on both sides.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_store::backup::{self, RunLock};
use keelson_store::{Db, Site, StoreError};
use keelson_testkit::link::{LinkEmulator, LinkProfile};
use keelson_testkit::modbus::EngineRoomSim;
use keelson_tests::{Api, edge_config, start_edge, start_shore, wait_for};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Starts a sync session and waits for one that began after the request
/// to finish without an error.
async fn sync_now(ship: &Api) {
    let st = keelson_tests::sync_and_wait(ship, WAIT).await;
    assert!(st["last_error"].is_null(), "{st}");
}

fn shore_has(shore: &keelson_tests::TestShore, fault: &str) -> bool {
    shore.state.db.fault(fault).unwrap().is_some()
}

/// The value of an unlabelled metric in a text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_running_restore_when_stopped_and_metrics() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let device = EngineRoomSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let link = LinkEmulator::start(shore.addr, LinkProfile::ideal())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = edge_config(dir.path(), device.local_addr(), link.local_addr());
    let data_dir = config.storage.data_dir.clone();
    keelson_tests::register_vessel(&shore, &config);
    let edge_cancel = cancel.child_token();
    let edge = start_edge(dir, config.clone(), &edge_cancel).await;
    let ship = Api::login(&edge.url, "chief", "chief").await;

    // The engine room is being written while we work.
    wait_for("samples in the database", WAIT, || async {
        (edge.edge.state.db.sample_count().unwrap() > 20).then_some(())
    })
    .await;
    let before = ship
        .post(
            "/api/v1/faults",
            json!({"title": "Logged before the backup", "severity": "low"}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Sync once so the sync metrics have something to say.
    ship.post("/api/v1/sync/now", json!({}), 202).await;
    wait_for("a completed sync", WAIT, || async {
        let st = ship.get("/api/v1/sync/status").await;
        (st["last_success"].is_string() && st["running"] == false).then_some(())
    })
    .await;

    // Online backup, while ingest keeps writing.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("edge.backup");
    let written_before = edge.edge.state.db.sample_count().unwrap();
    let report = tokio::task::spawn_blocking({
        let (data_dir, file) = (data_dir.clone(), file.clone());
        move || backup::backup(&data_dir, &file)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(report.bytes > 0);
    wait_for("ingest carrying on after the backup", WAIT, || async {
        (edge.edge.state.db.sample_count().unwrap() > written_before + 5).then_some(())
    })
    .await;

    // A fault logged and synced after the backup: the shore's
    // acknowledgement now runs past everything the backup holds.
    let synced_after = ship
        .post(
            "/api/v1/faults",
            json!({"title": "Synced after the backup", "severity": "low"}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sync_now(&ship).await;
    assert!(
        shore_has(&shore, &synced_after),
        "synced before the restore"
    );

    // The link goes down, so the next fault waits in the sync backlog.
    link.set_up(false);
    let after = ship
        .post(
            "/api/v1/faults",
            json!({"title": "Logged after the backup", "severity": "low"}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Restore refuses while the agent runs and leaves everything as it was.
    let refused = backup::restore(&data_dir, Site::Edge, &file).unwrap_err();
    assert!(matches!(refused, StoreError::Running(_)), "{refused}");
    assert!(
        !std::fs::read_dir(&data_dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("pre-restore")),
        "a refused restore copied nothing aside"
    );

    // Metrics: HTTP, ingest, storage and sync on the ship.
    let text = reqwest::get(format!("{}/metrics", edge.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("keelson_http_requests_total{"), "{text}");
    assert!(metric(&text, "keelson_samples_written_total").unwrap() > 0.0);
    assert!(metric(&text, "keelson_ingest_batches_written_total").unwrap() > 0.0);
    assert_eq!(
        metric(&text, "keelson_ingest_write_failures_total"),
        Some(0.0)
    );
    assert!(metric(&text, "keelson_ingest_tags").unwrap() > 0.0);
    assert!(metric(&text, "keelson_database_bytes").unwrap() > 4096.0);
    // `after` was logged with the link down, so its change waits.
    assert!(metric(&text, "keelson_sync_pending_changes").unwrap() >= 1.0);
    assert!(metric(&text, "keelson_sync_pending_bytes").unwrap() > 0.0);
    let age = metric(&text, "keelson_sync_last_success_age_seconds").unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(metric(&text, "keelson_sync_sessions_ok_total").unwrap() >= 1.0);

    // And on the shore: per-vessel sync age, quarantine, database size.
    let text = reqwest::get(format!("{}/metrics", shore.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "keelson_vessels_registered"), Some(1.0));
    assert!(metric(&text, "keelson_database_bytes").unwrap() > 4096.0);
    let age_line = format!("keelson_vessel_last_sync_age_seconds{{vessel=\"{DEMO_VESSEL}\"}} ");
    let shore_age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&age_line)?.parse().ok())
        .unwrap_or_else(|| panic!("no sync age for the vessel: {text}"));
    assert!((0.0..60.0).contains(&shore_age), "{shore_age}");
    assert!(
        text.contains(&format!(
            "keelson_vessel_quarantined_batches{{vessel=\"{DEMO_VESSEL}\"}} 0"
        )),
        "{text}"
    );
    assert!(metric(&text, "keelson_sync_changes_applied_total").unwrap() >= 1.0);

    // Stop the agent; now the restore runs and brings back the backup.
    edge_cancel.cancel();
    let keelson_tests::TestEdge { edge, dir, .. } = edge;
    edge.join().await;
    let report = tokio::task::spawn_blocking({
        let (data_dir, file) = (data_dir.clone(), file.clone());
        move || backup::restore(&data_dir, Site::Edge, &file)
    })
    .await
    .unwrap()
    .unwrap();
    let previous = report.previous.expect("the replaced database is kept");
    assert!(previous.starts_with(&data_dir));

    let db = Db::open(&data_dir, Site::Edge).unwrap();
    assert_eq!(db.integrity_check().unwrap(), "ok");
    assert!(
        db.fault(&before).unwrap().is_some(),
        "the backup's fault is back"
    );
    assert!(db.fault(&after).unwrap().is_none(), "a later fault is not");
    drop(db);

    // The agent starts again on the restored data.
    let restarted = keelson_edge::start(config, cancel.clone()).await.unwrap();
    let ship = Api::login(&format!("http://{}", restarted.addr), "chief", "chief").await;
    let faults = ship.get("/api/v1/faults").await;
    let ids: Vec<&str> = faults
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&before.as_str()), "{ids:?}");
    assert!(!ids.contains(&after.as_str()), "{ids:?}");

    // A fault logged on the restored vessel takes a sequence number the
    // shore acknowledged before the restore; the new epoch makes the shore
    // forget that acknowledgement, so the fault still arrives.
    link.set_up(true);
    let after_restore = ship
        .post(
            "/api/v1/faults",
            json!({"title": "Logged after the restore", "severity": "high"}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sync_now(&ship).await;
    assert!(
        shore_has(&shore, &after_restore),
        "a change made after the restore reached the shore"
    );
    assert!(shore_has(&shore, &before) && shore_has(&shore, &synced_after));

    // The shore holds its run lock while serving, and backs up online too.
    let shore_dir = shore.state.config.storage.data_dir.clone();
    assert!(matches!(
        RunLock::acquire(&shore_dir),
        Err(StoreError::Running(_))
    ));
    let shore_file = out.path().join("shore.backup");
    backup::backup(&shore_dir, &shore_file).unwrap();
    let e = backup::restore(&shore_dir, Site::Shore, &shore_file).unwrap_err();
    assert!(matches!(e, StoreError::Running(_)), "{e}");

    cancel.cancel();
    restarted.join().await;
    drop(dir);
}
