//! Alarms through a running edge agent polling the simulated engine room:
//! a rule whose limit the simulator's value is past raises an alarm, crew
//! acknowledge it and log a fault from it, the history holds every step,
//! and an unacknowledged alarm survives a restart with its id.

#![allow(clippy::unwrap_used)]

use keelson_ingest::alarms::{AlarmRule, AlarmsConfig};
use keelson_testkit::modbus::EngineRoomSim;
use keelson_tests::{Api, TestEdge, edge_config, start_edge, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn rule(tag: &str, high: f64) -> AlarmRule {
    AlarmRule {
        tag: tag.into(),
        high: Some(high),
        // Far above anything the simulator produces.
        high_high: Some(10_000.0),
        low: None,
        low_low: None,
        deadband: 1.0,
        delay_secs: 1,
        stale_after_secs: None,
        bad_quality: true,
    }
}

/// Waits until the alarm list holds a `kind` alarm on `tag` and returns it.
async fn alarm_on(api: &Api, tag: &str, kind: &str) -> Value {
    wait_for(
        &format!("a {kind} alarm on {tag}"),
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let list = api.get("/api/v1/alarms").await;
                list.as_array()?
                    .iter()
                    .find(|a| a["tag"] == tag && a["kind"] == kind)
                    .cloned()
            }
        },
    )
    .await
}

async fn page(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", api.base()))
        .bearer_auth(api.token().unwrap())
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn events(history: &Value) -> Vec<(String, Option<String>)> {
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["by"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_is_raised_acknowledged_logged_as_a_fault_and_kept_over_a_restart() {
    let device = EngineRoomSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = edge_config(
        dir.path(),
        device.local_addr(),
        SocketAddr::from(([127, 0, 0, 1], 9)),
    );
    config.sync.enabled = false;
    // The simulator runs the main engine near 100 rpm and the generator
    // near 420 kW, so both high limits are crossed from the first reading.
    config.alarms = AlarmsConfig {
        stale_after_secs: None,
        rules: vec![rule("me.rpm", 50.0), rule("ge1.load", 100.0)],
    };
    let cancel = CancellationToken::new();
    let edge = start_edge(dir, config.clone(), &cancel).await;
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system", "tags": ["me.rpm"]}),
            201,
        )
        .await;

    let rpm = alarm_on(&crew, "me.rpm", "high").await;
    let id = rpm["id"].as_i64().unwrap();
    assert_eq!(rpm["state"], "active_unacknowledged");
    assert_eq!(rpm["priority"], 2);
    assert_eq!(rpm["limit"], 50.0);
    assert!(rpm["value"].as_f64().unwrap() > 50.0, "{rpm}");
    assert_eq!(rpm["unit"], "rpm");
    assert!(rpm["fault_id"].is_null());

    // The dashboard and the alarm page show it with its hooks.
    let (status, dashboard) = page(&crew, reqwest::Method::GET, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(dashboard.contains("id=\"active-alarms\""), "{dashboard}");
    assert!(dashboard.contains(&format!("id=\"alarm-{id}\"")));
    let (status, alarms_page) = page(&crew, reqwest::Method::GET, "/alarms", &[]).await;
    assert_eq!(status, 200);
    assert!(alarms_page.contains(&format!("action=\"/alarms/{id}/ack\"")));
    assert!(alarms_page.contains("class=\"ack\""));
    assert!(alarms_page.contains("create-fault"));

    // Crew acknowledge it; a second acknowledgement is a conflict.
    let acked = crew
        .post(&format!("/api/v1/alarms/{id}/ack"), json!({}), 200)
        .await;
    assert_eq!(acked["state"], "active_acknowledged");
    crew.post(&format!("/api/v1/alarms/{id}/ack"), json!({}), 409)
        .await;
    crew.post("/api/v1/alarms/999999/ack", json!({}), 404).await;

    // Crew log a fault from it, filled in from the alarm.
    let fault = crew
        .post(&format!("/api/v1/alarms/{id}/fault"), json!({}), 201)
        .await;
    assert_eq!(fault["title"], "High alarm: me.rpm");
    assert_eq!(fault["severity"], "medium");
    assert_eq!(fault["equipment"], "6 Main engine");
    assert_eq!(fault["reporter"], "crew");
    assert!(
        fault["description"]
            .as_str()
            .unwrap()
            .contains(&format!("alarm {id}")),
        "{fault}"
    );
    let fault_id = fault["id"].as_str().unwrap();
    crew.get(&format!("/api/v1/faults/{fault_id}")).await;
    crew.post(&format!("/api/v1/alarms/{id}/fault"), json!({}), 409)
        .await;
    let rpm = alarm_on(&crew, "me.rpm", "high").await;
    assert_eq!(rpm["fault_id"], fault_id);
    assert_eq!(rpm["state"], "active_acknowledged");

    // The history holds every step, newest first, with who acted.
    let history = crew
        .get(&format!("/api/v1/alarms/history?alarm_id={id}"))
        .await;
    assert_eq!(
        events(&history),
        [
            ("fault_logged".to_owned(), Some("crew".to_owned())),
            ("acknowledged".to_owned(), Some("crew".to_owned())),
            ("raised".to_owned(), None),
        ]
    );
    assert_eq!(history["events"][0]["fault_id"], fault_id);
    let (status, history_page) = page(&crew, reqwest::Method::GET, "/alarms/history", &[]).await;
    assert_eq!(status, 200);
    assert!(history_page.contains("event-acknowledged"));

    // The generator's alarm is left unacknowledged over a restart.
    let load = alarm_on(&crew, "ge1.load", "high").await;
    let load_id = load["id"].as_i64().unwrap();
    assert_eq!(load["state"], "active_unacknowledged");
    cancel.cancel();
    let TestEdge { edge, dir, .. } = edge;
    edge.join().await;

    let cancel = CancellationToken::new();
    let edge = start_edge(dir, config, &cancel).await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    let load = alarm_on(&crew, "ge1.load", "high").await;
    assert_eq!(load["id"], load_id, "restored, not raised anew");
    assert_eq!(load["state"], "active_unacknowledged");
    let rpm = alarm_on(&crew, "me.rpm", "high").await;
    assert_eq!(rpm["id"], id);
    assert_eq!(rpm["state"], "active_acknowledged");
    assert_eq!(rpm["fault_id"], fault_id);
    // Readings keep coming after the restart without raising it again.
    wait_for(
        "a reading after the restart",
        Duration::from_secs(30),
        || {
            let crew = crew.clone();
            async move {
                let tags = crew.get("/api/v1/tags").await;
                tags.as_array()?
                    .iter()
                    .any(|t| t["name"] == "ge1.load" && t["quality"] == "good")
                    .then_some(())
            }
        },
    )
    .await;
    let history = crew
        .get(&format!("/api/v1/alarms/history?alarm_id={load_id}"))
        .await;
    assert_eq!(events(&history), [("raised".to_owned(), None)]);

    let (_, metrics) = page(&crew, reqwest::Method::GET, "/metrics", &[]).await;
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert!(gauge("keelson_alarms_listed") >= 2.0, "{metrics}");
    assert!(gauge("keelson_alarms_unacknowledged") >= 1.0, "{metrics}");

    // A fault logged through the alarm page's plain form, with its own title.
    let (status, fault_page) = page(
        &crew,
        reqwest::Method::POST,
        &format!("/alarms/{load_id}/fault"),
        &[("title", "Generator 1 overloaded")],
    )
    .await;
    assert_eq!(status, 200, "the form redirects to the fault's page");
    assert!(
        fault_page.contains("Generator 1 overloaded"),
        "{fault_page}"
    );
    let load = alarm_on(&crew, "ge1.load", "high").await;
    let fault = crew
        .get(&format!(
            "/api/v1/faults/{}",
            load["fault_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fault["title"], "Generator 1 overloaded");
    assert_eq!(fault["severity"], "medium");

    // Acknowledged through the alarm page's plain form.
    let (status, _) = page(
        &crew,
        reqwest::Method::POST,
        &format!("/alarms/{load_id}/ack"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "the form redirects to the alarm list");
    let load = alarm_on(&crew, "ge1.load", "high").await;
    assert_eq!(load["state"], "active_acknowledged");

    cancel.cancel();
    edge.edge.join().await;
    device.stop().await;
}
