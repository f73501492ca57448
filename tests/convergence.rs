//! A month offline: the ship keeps working for 30 days with the link down
//! (hundreds of record changes: faults logged and worked, comments, work
//! orders opened, worked and signed off, counter readings, a plan
//! postponed) while the office comments on what it already has, changes a
//! plan's interval and opens a work order of its own. When the link comes
//! back, both sides hold the same records, change for change.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_store::{Db, FaultFilter, WorkOrderFilter};
use keelson_sync::RecordDoc;
use keelson_testkit::link::{LinkEmulator, LinkProfile};
use keelson_tests::{
    Api, edge_config, register_vessel, start_edge, start_shore, sync_and_wait, work_work_order,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const DAYS: usize = 30;

/// Every record id of the vessel that the test touches, by kind.
fn record_ids(db: &Db) -> BTreeSet<String> {
    let faults = db
        .list_faults(&FaultFilter {
            vessel_id: Some(DEMO_VESSEL.into()),
            limit: 10_000,
            ..FaultFilter::default()
        })
        .unwrap();
    let (orders, _) = db
        .list_work_orders(&WorkOrderFilter {
            vessel_id: Some(DEMO_VESSEL.into()),
            limit: 10_000,
            ..WorkOrderFilter::default()
        })
        .unwrap();
    faults
        .into_iter()
        .map(|f| f.id)
        .chain(orders.into_iter().map(|w| w.id))
        .chain(
            db.list_plans(Some(DEMO_VESSEL))
                .unwrap()
                .into_iter()
                .map(|p| p.id),
        )
        .chain(
            db.list_counters(Some(DEMO_VESSEL), None)
                .unwrap()
                .into_iter()
                .map(|c| c.id),
        )
        .chain(
            db.list_equipment(Some(DEMO_VESSEL))
                .unwrap()
                .into_iter()
                .map(|e| e.id),
        )
        .collect()
}

/// A record as its document reads, and the hashes of every change in it.
fn record_state(db: &Db, id: &str) -> (Value, BTreeSet<String>) {
    let stored = db.record(id).unwrap().unwrap();
    let mut doc = RecordDoc::load(&stored.doc).unwrap();
    let record = serde_json::to_value(doc.to_record().unwrap()).unwrap();
    let hashes = doc.history().into_iter().map(|h| h.hash).collect();
    (record, hashes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_offline_with_concurrent_shore_edits_converges() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let link = LinkEmulator::start(shore.addr, LinkProfile::ideal())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, link.local_addr());
    config.ingest.modbus.clear();
    register_vessel(&shore, &config);
    let edge = start_edge(dir, config, &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    let office = Api::login(&shore.url, "office", "office").await;

    // Before the voyage: equipment, a counter, a plan, a fault and a work
    // order that both sides know.
    let engine = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system"}),
            201,
        )
        .await;
    let eq = engine["id"].as_str().unwrap().to_owned();
    let counter = chief
        .post(
            "/api/v1/counters",
            json!({"equipment_id": eq, "start_total": 1000.0}),
            201,
        )
        .await;
    let counter_id = counter["id"].as_str().unwrap().to_owned();
    let plan = chief
        .post(
            "/api/v1/plans",
            json!({"equipment_id": eq, "title": "Overhaul fuel valves",
                   "interval_hours": 4000.0, "counter_id": counter_id}),
            201,
        )
        .await;
    let plan_id = plan["id"].as_str().unwrap().to_owned();
    let known_fault = crew
        .post(
            "/api/v1/faults",
            json!({"title": "Purifier 1 vibrates", "severity": "medium"}),
            201,
        )
        .await;
    let known_fault_id = known_fault["id"].as_str().unwrap().to_owned();
    sync_and_wait(&chief, WAIT).await;
    assert!(
        shore.state.db.fault(&known_fault_id).unwrap().is_some(),
        "the shore knows the fault before the voyage"
    );

    // A month offline. Every day: two faults logged and worked, comments,
    // a counter reading, and a work order opened, worked and, on most days,
    // signed off.
    link.set_up(false);
    let mut changes = 0usize;
    for day in 0..DAYS {
        for n in 0..2 {
            let f = crew
                .post(
                    "/api/v1/faults",
                    json!({"title": format!("Day {day} fault {n}"), "severity": "low",
                           "equipment": "Main engine"}),
                    201,
                )
                .await;
            let path = format!("/api/v1/faults/{}", f["id"].as_str().unwrap());
            engineer
                .patch(
                    &path,
                    json!({"status": "in_progress", "cause": "Wear"}),
                    200,
                )
                .await;
            crew.post(
                &format!("{path}/comments"),
                json!({"text": format!("Seen again on day {day}")}),
                201,
            )
            .await;
            changes += 3;
            if n == 0 {
                engineer
                    .patch(
                        &path,
                        json!({"status": "resolved", "corrective_action": "Part renewed"}),
                        200,
                    )
                    .await;
                changes += 1;
            }
        }
        crew.post(
            &format!("/api/v1/counters/{counter_id}/readings"),
            json!({"value": 1000.0 + 24.0 * (day as f64 + 1.0)}),
            201,
        )
        .await;
        let wo = engineer
            .post(
                "/api/v1/work-orders",
                json!({"title": format!("Day {day} rounds"), "equipment_id": eq}),
                201,
            )
            .await;
        let wo_path = format!("/api/v1/work-orders/{}", wo["id"].as_str().unwrap());
        work_work_order(&engineer, &wo_path, "Rounds done", 0.5).await;
        changes += 5;
        if day % 3 != 0 {
            chief
                .post(&format!("{wo_path}/sign-off"), json!({"note": "OK"}), 201)
                .await;
            changes += 1;
        }
    }
    crew.post(
        &format!("/api/v1/faults/{known_fault_id}/comments"),
        json!({"text": "Balanced the bowl"}),
        201,
    )
    .await;
    chief
        .post(
            &format!("/api/v1/plans/{plan_id}/postpone"),
            json!({"until_hours": 5500.0, "reason": "Spares arrive next port"}),
            201,
        )
        .await;
    changes += 2;
    assert!(changes >= 300, "a month of work: {changes} changes");

    // Meanwhile the office comments on the fault it knows, changes the
    // plan's interval and opens a work order of its own.
    office
        .post(
            &format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{known_fault_id}/comments"),
            json!({"text": "Maker's service letter attached to the next mail"}),
            201,
        )
        .await;
    office
        .patch(
            &format!("/api/v1/vessels/{DEMO_VESSEL}/plans/{plan_id}"),
            json!({"interval_hours": 3500.0, "tolerance_hours": 100.0}),
            200,
        )
        .await;
    let shore_order = office
        .post(
            &format!("/api/v1/vessels/{DEMO_VESSEL}/work-orders"),
            json!({"title": "Send lube oil samples", "equipment_id": eq}),
            201,
        )
        .await;

    // The link comes back: sessions run until nothing is waiting on board
    // and a last one has brought the office's changes.
    link.set_up(true);
    let mut sessions = 0;
    loop {
        let st = sync_and_wait(&chief, WAIT).await;
        sessions += 1;
        if st["records"]["pending_changes"] == 0 && st["last_error"].is_null() {
            break;
        }
        assert!(sessions < 50, "the backlog never drained: {st}");
    }
    sync_and_wait(&chief, WAIT).await;

    let ship_db = &edge.edge.state.db;
    let shore_db = &shore.state.db;
    let ids = record_ids(ship_db);
    assert_eq!(
        ids,
        record_ids(shore_db),
        "both sides hold the same records"
    );
    assert!(ids.contains(shore_order["id"].as_str().unwrap()));
    for id in &ids {
        assert_eq!(
            record_state(ship_db, id),
            record_state(shore_db, id),
            "record {id} differs"
        );
    }
    let plan = ship_db.plan(&plan_id).unwrap().unwrap();
    assert_eq!(plan.interval_hours, Some(3500.0));
    assert_eq!(plan.postponements.len(), 1);
    let fault = ship_db.fault(&known_fault_id).unwrap().unwrap();
    assert_eq!(fault.comments.len(), 2, "{fault:?}");
    cancel.cancel();
}
