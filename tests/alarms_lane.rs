//! The alarms lane end to end: an alarm raised on board by a real Modbus
//! device's value, acknowledged and cleared, reaches the shore in the order
//! it happened; while it is active the fleet dashboard (page and API) shows
//! it and whether it waits for an acknowledgement, and once it cleared it
//! does not; history sent again after a lost acknowledgement is stored once.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_edge::sync_client::ALARMS_LANE;
use keelson_ingest::alarms::{AlarmRule, AlarmsConfig};
use keelson_testkit::modbus_device::{DeviceMemory, ModbusTcpDevice, Table};
use keelson_tests::{Api, edge_config, start_edge, start_shore, sync_and_wait, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
/// The main engine's speed register in the demo's register map.
const RPM_REGISTER: u16 = 0;

/// The vessel's row of the fleet list.
async fn fleet_row(office: &Api) -> Value {
    let fleet = office.get("/api/v1/vessels").await;
    fleet
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == DEMO_VESSEL)
        .cloned()
        .unwrap_or_else(|| panic!("{DEMO_VESSEL} missing from {fleet}"))
}

/// The vessel's `(active, unacknowledged)` alarms on the fleet list.
async fn fleet_alarms(office: &Api) -> (u64, u64) {
    let row = fleet_row(office).await;
    let count = |key: &str| {
        row[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {row}"))
    };
    (count("active_alarms"), count("unacknowledged_alarms"))
}

/// Runs a sync session through the ship's API and expects it to succeed;
/// returns the sync status after it.
async fn sync(ship: &Api) -> Value {
    let status = sync_and_wait(ship, WAIT).await;
    assert!(status["last_error"].is_null(), "{status}");
    status
}

/// The fleet page's row of the vessel, as HTML.
async fn fleet_page_row(office: &Api) -> String {
    let page = office.page("/").await;
    let start = page
        .find(&format!("id=\"vessel-{DEMO_VESSEL}\""))
        .unwrap_or_else(|| panic!("no row for the vessel: {page}"));
    let end = page[start..].find("</tr>").unwrap() + start;
    page[start..end].to_owned()
}

/// `(seq, event, by)` of each entry of a history, oldest first.
fn entries(history: &Value) -> Vec<(i64, String, Option<String>)> {
    let mut out: Vec<_> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["event"].as_str().unwrap().to_owned(),
                e["by"].as_str().map(str::to_owned),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn alarm_list(ship: &Api) -> Vec<Value> {
    ship.get("/api/v1/alarms").await.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_reaches_the_fleet_dashboard_in_order_and_leaves_it_when_cleared() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let memory = DeviceMemory::new();
    memory.set_registers(Table::Holding, RPM_REGISTER, &[100]);
    let device = ModbusTcpDevice::start(SocketAddr::from(([127, 0, 0, 1], 0)), memory.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = edge_config(dir.path(), device.local_addr(), shore.addr);
    config.alarms = AlarmsConfig {
        stale_after_secs: None,
        rules: vec![AlarmRule {
            tag: "me.rpm".into(),
            high: Some(120.0),
            high_high: None,
            low: None,
            low_low: None,
            deadband: 1.0,
            delay_secs: 0,
            stale_after_secs: None,
            bad_quality: false,
        }],
    };
    keelson_tests::register_vessel(&shore, &config);
    let edge = start_edge(dir, config, &cancel).await;
    let ship = Api::login(&edge.url, "chief", "chief").await;
    let office = Api::login(&shore.url, "office", "office").await;

    // Nothing alarming yet: the fleet shows no alarms.
    sync(&ship).await;
    assert_eq!(fleet_alarms(&office).await, (0, 0));

    // The engine overspeeds: the alarm raises on board and waits in the
    // alarms lane.
    memory.set_registers(Table::Holding, RPM_REGISTER, &[130]);
    let alarm = wait_for("the overspeed alarm on board", WAIT, || {
        let ship = ship.clone();
        async move {
            alarm_list(&ship)
                .await
                .into_iter()
                .find(|a| a["tag"] == "me.rpm" && a["kind"] == "high")
        }
    })
    .await;
    let id = alarm["id"].as_i64().unwrap();
    let waiting = ship.get("/api/v1/sync/status").await;
    assert!(
        waiting["alarms"]["pending_events"].as_u64().unwrap() >= 1,
        "{waiting}"
    );
    assert!(waiting["alarms"]["pending_bytes"].as_u64().unwrap() > 0);
    assert!(ship.page("/sync").await.contains("id=\"alarms-waiting\""));

    // Synced, it is active ashore and unacknowledged, on the page and in
    // the API, and the lane has nothing left.
    let status = sync(&ship).await;
    assert_eq!(status["alarms"]["pending_events"], 0, "{status}");
    assert_eq!(status["alarms"]["pending_bytes"], 0, "{status}");
    assert_eq!(fleet_alarms(&office).await, (1, 1));
    let row = fleet_row(&office).await;
    assert_eq!(row["pending_alarm_events"], 0, "{row}");
    let html = fleet_page_row(&office).await;
    assert!(html.contains("1 active"), "{html}");
    assert!(html.contains("1 unacknowledged"), "{html}");
    let ashore = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/alarms"))
        .await;
    let active = ashore["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{ashore}");
    assert_eq!(active[0]["tag"], "me.rpm");
    assert_eq!(active[0]["kind"], "high");
    assert_eq!(active[0]["alarm_id"], id);
    assert_eq!(active[0]["state"], "active_unacknowledged");
    assert_eq!(active[0]["acknowledged"], false);
    assert!(active[0]["value"].as_f64().unwrap() >= 120.0, "{ashore}");
    assert_eq!(ashore["unacknowledged"], 1);
    let vessel_page = office.page(&format!("/vessels/{DEMO_VESSEL}")).await;
    assert!(
        vessel_page.contains("id=\"vessel-alarm-me.rpm-high\""),
        "{vessel_page}"
    );
    assert!(vessel_page.contains("state-active_unacknowledged"));

    // Acknowledged on board: still active ashore, no longer waiting.
    ship.post(&format!("/api/v1/alarms/{id}/ack"), json!({}), 200)
        .await;
    sync(&ship).await;
    assert_eq!(fleet_alarms(&office).await, (1, 0));
    let html = fleet_page_row(&office).await;
    assert!(html.contains("1 active"), "{html}");
    assert!(!html.contains("unacknowledged"), "{html}");
    let ashore = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/alarms"))
        .await;
    assert_eq!(ashore["active"][0]["state"], "active_acknowledged");
    assert_eq!(ashore["active"][0]["acknowledged_by"], "chief");

    // The engine slows down: the alarm clears on board, then ashore.
    memory.set_registers(Table::Holding, RPM_REGISTER, &[100]);
    wait_for("the alarm to clear on board", WAIT, || {
        let ship = ship.clone();
        async move { alarm_list(&ship).await.is_empty().then_some(()) }
    })
    .await;
    sync(&ship).await;
    assert_eq!(fleet_alarms(&office).await, (0, 0));
    let html = fleet_page_row(&office).await;
    assert!(!html.contains("active-alarms"), "{html}");
    let ashore = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/alarms"))
        .await;
    assert!(ashore["active"].as_array().unwrap().is_empty(), "{ashore}");
    let vessel_page = office.page(&format!("/vessels/{DEMO_VESSEL}")).await;
    assert!(vessel_page.contains("No active alarms."), "{vessel_page}");
    assert!(vessel_page.contains("event-cleared"), "{vessel_page}");

    // The shore holds the history as it happened on board, in order.
    let on_board = ship.get("/api/v1/alarms/history?limit=1000").await;
    let on_board = entries(&on_board);
    assert_eq!(
        on_board
            .iter()
            .map(|(_, e, by)| (e.as_str(), by.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("raised", None),
            ("acknowledged", Some("chief")),
            ("cleared", None)
        ]
    );
    assert_eq!(entries(&ashore["history"]), on_board);
    assert_eq!(ashore["history"]["total"], 3);

    // An acknowledgement lost on the way back: the vessel sends the whole
    // lane again, and the shore stores none of it twice.
    edge.edge
        .state
        .db
        .rewind_sent_acked(ALARMS_LANE, 0)
        .unwrap();
    let again = ship.get("/api/v1/sync/status").await;
    assert_eq!(again["alarms"]["pending_events"], 3, "{again}");
    let status = sync(&ship).await;
    assert_eq!(status["alarms"]["pending_events"], 0, "{status}");
    let ashore = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/alarms"))
        .await;
    assert_eq!(ashore["history"]["total"], 3, "{ashore}");
    assert_eq!(entries(&ashore["history"]), on_board);
    assert!(ashore["active"].as_array().unwrap().is_empty(), "{ashore}");
    assert_eq!(fleet_alarms(&office).await, (0, 0));

    cancel.cancel();
    edge.edge.join().await;
    device.stop().await;
}
