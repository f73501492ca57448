//! Equipment and work orders end to end: made on board, worked, signed off,
//! and seen ashore after sync with the sign-off intact, through a real shore
//! and a real edge agent on loopback.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_tests::{Api, edge_config, start_edge, start_shore, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_order_signed_off_on_board_arrives_ashore_signed_off() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let dir = tempfile::tempdir().unwrap();
    // No sensors: the records lane is under test. The edge syncs straight
    // to the shore and starts a session after every change.
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, shore.addr);
    config.ingest.modbus.clear();
    let (key, _) = keelson_edge::keys::load_or_create(&config.sync.key_file).unwrap();
    keelson_shore::add_vessel(
        &shore.state.db,
        DEMO_VESSEL,
        "MV Test",
        &key.public_key_b64(),
        "default",
    )
    .unwrap();
    let edge = start_edge(dir, config, &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;
    let office = Api::login(&shore.url, "office", "office").await;

    let system = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system", "criticality": "critical"}),
            201,
        )
        .await;
    let pump = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6.1", "name": "Fuel pump 3", "level": "component",
                   "maker": "MAN", "tags": ["me_rpm"]}),
            201,
        )
        .await;
    assert_eq!(pump["parent_code"], "6");
    let tree = chief.get("/api/v1/equipment").await;
    let codes: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["6", "6.1"]);

    let wo = engineer
        .post(
            "/api/v1/work-orders",
            json!({"title": "Overhaul fuel pump 3", "equipment_id": pump["id"], "assignee": "engineer"}),
            201,
        )
        .await;
    let path = format!("/api/v1/work-orders/{}", wo["id"].as_str().unwrap());
    engineer
        .patch(&path, json!({"status": "in_progress"}), 200)
        .await;
    engineer
        .post(
            &format!("{path}/entries"),
            json!({"text": "Replaced plunger and barrel", "hours": 3.5}),
            201,
        )
        .await;
    engineer
        .patch(
            &path,
            json!({"status": "done", "work_done": "Pump overhauled"}),
            200,
        )
        .await;
    let signed = chief
        .post(
            &format!("{path}/sign-off"),
            json!({"note": "Tested under load"}),
            201,
        )
        .await;
    assert_eq!(signed["status"], "signed_off");

    // Signed off means final on board: field edits and work entries get a
    // clear 409, comments still go through.
    let (status, body) = chief
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"status": "in_progress"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    let (status, body) = engineer
        .send(
            reqwest::Method::POST,
            &format!("{path}/entries"),
            Some(json!({"text": "More", "hours": 1})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    engineer
        .post(
            &format!("{path}/comments"),
            json!({"text": "Old parts kept for the maker"}),
            201,
        )
        .await;

    // The equipment page lists the work order's history per equipment.
    let listed = chief
        .get(&format!(
            "/api/v1/work-orders?equipment_id={}&status=signed_off",
            pump["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed["total"], 1, "{listed}");

    // The audit trail names everyone who changed it.
    let history = chief
        .get(&format!(
            "/api/v1/records/{}/history",
            wo["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(history["kind"], "work_order");
    let authors: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"].as_str().unwrap())
        .collect();
    assert!(
        authors.contains(&"chief") && authors.contains(&"engineer"),
        "{history}"
    );

    // Ashore, after the sync the edits started, it is signed off too.
    let wo_path = format!(
        "/api/v1/vessels/{DEMO_VESSEL}/work-orders/{}",
        wo["id"].as_str().unwrap()
    );
    let ashore: Value = wait_for("the signed-off work order ashore", WAIT, || async {
        let (status, body) = office.send(reqwest::Method::GET, &wo_path, None).await;
        (status == 200 && body["comments"].as_array().is_some_and(|c| c.len() == 1)).then_some(body)
    })
    .await;
    assert_eq!(ashore["status"], "signed_off");
    assert_eq!(ashore["sign_offs"][0]["author"], "chief");
    assert_eq!(ashore["sign_offs"][0]["note"], "Tested under load");
    assert_eq!(ashore["hours_spent"], 3.5);
    let equipment = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/equipment"))
        .await;
    assert_eq!(equipment.as_array().unwrap().len(), 2);
    assert_eq!(equipment[0]["id"], system["id"]);

    // The shore's vessel page lists both.
    let page = reqwest::Client::new()
        .get(format!("{}/vessels/{DEMO_VESSEL}", shore.url))
        .bearer_auth(office.token().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Overhaul fuel pump 3"), "{page}");
    assert!(page.contains("Signed off"), "{page}");
    assert!(page.contains("Fuel pump 3"), "{page}");
    cancel.cancel();
}
