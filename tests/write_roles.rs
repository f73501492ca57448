//! Every write endpoint of the ship's API, with the lowest role allowed to
//! use it: an anonymous request gets a 401 JSON error, a user with the role
//! just below gets a 403 JSON error, and a user with the role itself is not
//! refused for want of rights. Add a row here with every new write endpoint.

#![allow(clippy::unwrap_used)]

use keelson_ingest::alarms::{AlarmRule, AlarmsConfig};
use keelson_tests::{Api, edge_config, start_edge, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A write endpoint and the lowest role that may use it. A `Null` body on
/// a POST means a multipart upload of a small PNG in the field `file`.
struct Row {
    method: Method,
    path: String,
    body: Value,
    min: &'static str,
}

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

/// Sends a row's request as `api`'s user; returns the status and JSON body.
async fn send(api: &Api, r: &Row) -> (u16, Value) {
    if !r.body.is_null() {
        return api
            .send(r.method.clone(), &r.path, Some(r.body.clone()))
            .await;
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PNG)
            .file_name("photo.png")
            .mime_str("image/png")
            .unwrap(),
    );
    api.send_form(r.method.clone(), &r.path, form).await
}

/// The role just below `role`, or `None` for crew: every authenticated user
/// on board has at least the crew role, so the crew endpoints are only
/// checked against anonymous requests.
fn below(role: &str) -> Option<&'static str> {
    match role {
        "crew" => None,
        "engineer" => Some("crew"),
        "chief_engineer" => Some("engineer"),
        other => panic!("no user for role {other}"),
    }
}

fn user_of(role: &str) -> (&'static str, &'static str) {
    match role {
        "crew" => ("crew", "crew"),
        "engineer" => ("engineer", "engineer"),
        "chief_engineer" => ("chief", "chief"),
        other => panic!("no user for role {other}"),
    }
}

fn assert_json_error(what: &str, status: u16, expect: u16, body: &Value) {
    assert_eq!(status, expect, "{what}: {body}");
    assert!(body["error"].is_string(), "{what}: {body}");
    assert!(body["detail"].is_string(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_endpoint_refuses_anonymous_and_too_low_roles() {
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, unused);
    config.ingest.modbus.clear();
    config.sync.enabled = false;
    // No device, so a stale limit of a second raises an alarm to act on.
    config.alarms = AlarmsConfig {
        stale_after_secs: Some(1),
        rules: vec![AlarmRule {
            tag: "me.rpm".into(),
            high: None,
            high_high: None,
            low: None,
            low_low: None,
            deadband: 0.0,
            delay_secs: 0,
            stale_after_secs: None,
            bad_quality: false,
        }],
    };
    let edge = start_edge(dir, config, &cancel).await;
    let anon = Api::anonymous(&edge.url);
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let engineer = Api::login(&edge.url, "engineer", "engineer").await;

    // Records for the rows that name one.
    let fault = chief
        .post(
            "/api/v1/faults",
            json!({"title": "Leak", "severity": "low"}),
            201,
        )
        .await;
    let fault = fault["id"].as_str().unwrap();
    let eq = chief
        .post(
            "/api/v1/equipment",
            json!({"code": "6", "name": "Main engine", "level": "system"}),
            201,
        )
        .await;
    let eq = eq["id"].as_str().unwrap();
    let wo = engineer
        .post(
            "/api/v1/work-orders",
            json!({"title": "Overhaul", "equipment_id": eq}),
            201,
        )
        .await;
    let wo = wo["id"].as_str().unwrap();
    let alarm = wait_for("a stale alarm", Duration::from_secs(30), || {
        let chief = chief.clone();
        async move {
            let list = chief.get("/api/v1/alarms").await;
            list.as_array()?.first()?["id"].as_i64()
        }
    })
    .await;
    let counter = chief
        .post(
            "/api/v1/counters",
            json!({"equipment_id": eq, "start_total": 1000.0}),
            201,
        )
        .await;
    let counter = counter["id"].as_str().unwrap();
    let plan = chief
        .post(
            "/api/v1/plans",
            json!({"equipment_id": eq, "title": "Check alignment", "interval_days": 365}),
            201,
        )
        .await;
    let plan = plan["id"].as_str().unwrap();
    let part = chief
        .post(
            "/api/v1/parts",
            json!({"number": "G-1", "name": "Gasket", "locations": ["ER store"]}),
            201,
        )
        .await;
    let part = part["id"].as_str().unwrap();
    let requisition = chief
        .post(
            "/api/v1/requisitions",
            json!({"lines": [{"part_id": part, "quantity": 2}]}),
            201,
        )
        .await;
    let requisition = requisition["id"].as_str().unwrap();
    let wo_path = format!("/api/v1/work-orders/{wo}");
    engineer
        .patch(&wo_path, json!({"status": "in_progress"}), 200)
        .await;
    engineer
        .patch(&wo_path, json!({"status": "done"}), 200)
        .await;

    let row = |method: Method, path: String, body: Value, min: &'static str| Row {
        method,
        path,
        body,
        min,
    };
    // In an order that keeps every row possible for its own role: the
    // sign-off, which makes the work order final, comes last.
    let table = [
        row(
            Method::POST,
            "/api/v1/faults".into(),
            json!({"title": "Bilge alarm", "severity": "medium"}),
            "crew",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/faults/{fault}"),
            json!({"status": "in_progress"}),
            "engineer",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/faults/{fault}"),
            json!({"cause": "Float switch sticking"}),
            "engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/faults/{fault}/comments"),
            json!({"text": "Seen it"}),
            "crew",
        ),
        row(
            Method::POST,
            "/api/v1/sync/now".into(),
            json!({}),
            "engineer",
        ),
        row(
            Method::POST,
            "/api/v1/equipment".into(),
            json!({"code": "7", "name": "Generators", "level": "system"}),
            "chief_engineer",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/equipment/{eq}"),
            json!({"name": "ME"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            "/api/v1/work-orders".into(),
            json!({"title": "Check", "equipment_id": eq}),
            "engineer",
        ),
        row(
            Method::PATCH,
            wo_path.clone(),
            json!({"title": "Overhaul fuel pump"}),
            "engineer",
        ),
        row(
            Method::POST,
            format!("{wo_path}/entries"),
            json!({"text": "Done", "hours": 1.5}),
            "engineer",
        ),
        row(
            Method::POST,
            format!("{wo_path}/comments"),
            json!({"text": "Noted"}),
            "crew",
        ),
        row(
            Method::POST,
            format!("/api/v1/faults/{fault}/attachments"),
            Value::Null,
            "crew",
        ),
        row(
            Method::POST,
            format!("{wo_path}/attachments"),
            Value::Null,
            "engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/alarms/{alarm}/fault"),
            json!({"title": "Speed pick-up lost"}),
            "crew",
        ),
        row(
            Method::POST,
            "/api/v1/counters".into(),
            json!({"equipment_id": eq, "name": "Running hours"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/counters/{counter}/readings"),
            json!({"value": 1010.0}),
            "crew",
        ),
        row(
            Method::POST,
            format!("/api/v1/alarms/{alarm}/ack"),
            json!({}),
            "crew",
        ),
        row(
            Method::POST,
            format!("/api/v1/counters/{counter}/corrections"),
            json!({"value": 1005.0, "reason": "Reading mistyped"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            "/api/v1/plans".into(),
            json!({"equipment_id": eq, "title": "Change filter", "interval_days": 90}),
            "chief_engineer",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/plans/{plan}"),
            json!({"tolerance_days": 7}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/plans/{plan}/postpone"),
            json!({"until_date": "2030-01-01T00:00:00Z", "reason": "Dry dock"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            "/api/v1/parts".into(),
            json!({"number": "G-2", "name": "Gasket, large"}),
            "chief_engineer",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/parts/{part}"),
            json!({"min_stock": 10}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/parts/{part}/movements"),
            json!({"kind": "receipt", "location": "ER store", "quantity": 5}),
            "engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/parts/{part}/movements"),
            json!({"kind": "consumption", "location": "ER store", "quantity": 1}),
            "engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/parts/{part}/movements"),
            json!({"kind": "adjustment", "location": "ER store", "quantity": -1, "reason": "Count"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("{wo_path}/entries"),
            json!({"text": "Renewed the gasket", "hours": 0.5,
                   "parts": [{"part_id": part, "location": "ER store", "quantity": 1}]}),
            "engineer",
        ),
        row(
            Method::POST,
            "/api/v1/requisitions".into(),
            json!({"note": "Spares for dry dock"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            "/api/v1/requisitions/draft-from-minimum".into(),
            json!({}),
            "chief_engineer",
        ),
        row(
            Method::PATCH,
            format!("/api/v1/requisitions/{requisition}"),
            json!({"note": "Next port"}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("/api/v1/requisitions/{requisition}/submit"),
            json!({}),
            "chief_engineer",
        ),
        row(
            Method::POST,
            format!("{wo_path}/sign-off"),
            json!({}),
            "chief_engineer",
        ),
    ];

    for r in &table {
        let what = format!("{} {}", r.method, r.path);
        let (status, body) = send(&anon, r).await;
        assert_json_error(&format!("{what} anonymous"), status, 401, &body);

        if let Some(lower) = below(r.min) {
            let (name, password) = user_of(lower);
            let api = Api::login(&edge.url, name, password).await;
            let (status, body) = send(&api, r).await;
            assert_json_error(&format!("{what} as {lower}"), status, 403, &body);
        }

        let (name, password) = user_of(r.min);
        let api = Api::login(&edge.url, name, password).await;
        let (status, body) = send(&api, r).await;
        // Sync is off in this test, so starting one is a conflict; what
        // matters is that the role was not refused.
        assert!(
            (200..300).contains(&status) || (status == 409 && r.path.ends_with("/sync/now")),
            "{what} as {}: {status} {body}",
            r.min
        );
    }

    // The sign-off came last: the work order now takes no more files, and
    // says so before reading the upload.
    let attach = row(
        Method::POST,
        format!("{wo_path}/attachments"),
        Value::Null,
        "engineer",
    );
    let (status, body) = send(&engineer, &attach).await;
    assert_json_error("attaching to a signed-off work order", status, 409, &body);
    cancel.cancel();
}
