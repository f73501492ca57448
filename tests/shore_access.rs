//! Shore users see only their own organization's vessels, through the API
//! and the pages alike; the quarantine is for fleet admins.

use keelson_model::{NewFault, Severity, ShoreRole};
use keelson_tests::{Api, start_shore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_organization_cannot_see_another_organizations_vessels() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let db = &shore.state.db;
    keelson_shore::add_org(db, "north", "North Shipping").unwrap();
    keelson_shore::add_org(db, "south", "South Tankers").unwrap();
    let key = keelson_sync::VesselKey::generate()
        .unwrap()
        .0
        .public_key_b64();
    keelson_shore::add_vessel(db, "va", "MV Aurora", &key, "north").unwrap();
    keelson_shore::add_vessel(db, "vb", "MV Boreas", &key, "south").unwrap();
    keelson_shore::add_user(db, "alice", ShoreRole::Superintendent, "alice-pw", "north").unwrap();
    keelson_shore::add_user(db, "bob", ShoreRole::Superintendent, "bob-pw", "south").unwrap();
    keelson_shore::add_user(db, "admin", ShoreRole::FleetAdmin, "admin-pw", "north").unwrap();
    assert!(keelson_shore::add_user(db, "eve", ShoreRole::Viewer, "eve-pw", "nowhere").is_err());
    let fault = keelson_records::create_fault(
        db,
        "va",
        NewFault {
            title: "Ballast pump 1 seal leaking".into(),
            description: String::new(),
            equipment: "Ballast system".into(),
            severity: Severity::Medium,
        },
        "chief",
    )
    .unwrap();
    let fault_path = format!("/api/v1/vessels/va/faults/{}", fault.id);
    db.put_vessel_alarm_events(
        "va",
        &[keelson_store::AlarmEventRow {
            id: 1,
            alarm_id: Some(1),
            tag: "ballast.pump1.pressure".into(),
            kind: "low".into(),
            event: "raised".into(),
            at_ms: 1_767_225_600_000,
            value: Some(0.4),
            by: None,
            fault_id: None,
        }],
    )
    .unwrap();

    let alice = Api::login(&shore.url, "alice", "alice-pw").await;
    let bob = Api::login(&shore.url, "bob", "bob-pw").await;
    let admin = Api::login(&shore.url, "admin", "admin-pw").await;

    let seen: Vec<String> = bob
        .get("/api/v1/vessels")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["vb"]);
    let seen: Vec<String> = alice
        .get("/api/v1/vessels")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["va"]);

    use reqwest::Method as M;
    for (method, path, body) in [
        (M::GET, "/api/v1/vessels/va/faults".to_owned(), None),
        (M::GET, "/api/v1/vessels/va/alarms".to_owned(), None),
        (M::GET, fault_path.clone(), None),
        (
            M::POST,
            format!("{fault_path}/comments"),
            Some(json!({"text": "Seen from the wrong office"})),
        ),
    ] {
        let (status, body) = bob.send(method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(
        alice.get(&fault_path).await["title"],
        "Ballast pump 1 seal leaking"
    );
    // Alice sees her vessel's active alarm, on the fleet list and its own.
    assert_eq!(alice.get("/api/v1/vessels").await[0]["active_alarms"], 1);
    let alarms = alice.get("/api/v1/vessels/va/alarms").await;
    assert_eq!(alarms["active"][0]["tag"], "ballast.pump1.pressure");
    assert_eq!(bob.get("/api/v1/vessels").await[0]["active_alarms"], 0);
    alice
        .post(
            &format!("{fault_path}/comments"),
            json!({"text": "Seal kit on the next supply boat"}),
            201,
        )
        .await;
    assert_eq!(
        db.fault(&fault.id).unwrap().unwrap().comments.len(),
        1,
        "only alice's comment"
    );

    // The pages answer the same way.
    let page = reqwest::Client::new()
        .get(format!("{}/vessels/va", shore.url))
        .header(
            "cookie",
            format!("keelson_session={}", bob.token().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);

    // The quarantine is for fleet admins, and only of their organization.
    db.quarantine("vb", "test batch", b"junk").unwrap();
    db.quarantine("va", "test batch", b"junk").unwrap();
    let (status, _) = alice.send(M::GET, "/api/v1/quarantine", None).await;
    assert_eq!(status, 403);
    let q = admin.get("/api/v1/quarantine").await;
    let vessels: Vec<&str> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["vessel_id"].as_str().unwrap())
        .collect();
    assert_eq!(vessels, ["va"]);
    cancel.cancel();
}
