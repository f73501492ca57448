//! Bad input to the ship's REST API gets a clear JSON error with the right
//! status, never a panic or an internal message.

#![allow(clippy::unwrap_used)]

use keelson_tests::{Api, start_records_edge};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn assert_error(what: &str, status: u16, expect: u16, body: &Value) {
    assert_eq!(status, expect, "{what}: {body}");
    assert!(body["error"].is_string(), "{what}: {body}");
    assert!(body["detail"].is_string(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_input_gets_clear_json_errors() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let anon = Api::anonymous(&edge.url);
    let chief = Api::login(&edge.url, "chief", "chief").await;
    let crew = Api::login(&edge.url, "crew", "crew").await;
    use reqwest::Method as M;

    let (s, b) = anon.send(M::GET, "/api/v1/faults", None).await;
    assert_error("no token", s, 401, &b);
    let (s, b) = anon
        .send(
            M::POST,
            "/api/v1/faults",
            Some(json!({"title": "x", "severity": "low"})),
        )
        .await;
    assert_error("anonymous write", s, 401, &b);
    let (s, b) = anon
        .send(
            M::POST,
            "/api/v1/session",
            Some(json!({"username": "chief", "password": "wrong"})),
        )
        .await;
    assert_error("wrong password", s, 401, &b);

    let (s, b) = chief
        .send(
            M::POST,
            "/api/v1/faults",
            Some(json!({"title": "", "severity": "low"})),
        )
        .await;
    assert_error("empty title", s, 400, &b);
    assert!(b["detail"].as_str().unwrap().contains("title"), "{b}");
    let (s, b) = chief
        .send(
            M::POST,
            "/api/v1/faults",
            Some(json!({"title": "Leak", "severity": "apocalyptic"})),
        )
        .await;
    assert_error("unknown severity", s, 400, &b);
    let (s, b) = chief
        .send(
            M::POST,
            "/api/v1/faults",
            Some(json!({"title": "Leak", "severity": "low", "colour": "red"})),
        )
        .await;
    assert_error("unknown field", s, 400, &b);

    // Malformed JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/faults", edge.url))
        .bearer_auth(chief.token().unwrap())
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_error("malformed JSON", status, 400, &body);

    let (s, b) = chief
        .send(M::GET, "/api/v1/faults/does-not-exist", None)
        .await;
    assert_error("unknown fault", s, 404, &b);
    let (s, b) = chief.send(M::GET, "/api/v1/tags/nope/samples", None).await;
    assert_error("unknown tag", s, 404, &b);
    let (s, b) = chief
        .send(M::GET, "/api/v1/tags/nope/samples?from=yesterday", None)
        .await;
    assert_error("bad timestamp", s, 400, &b);
    let (s, b) = chief.send(M::GET, "/api/v1/nothing-here", None).await;
    assert_error("unknown route", s, 404, &b);

    // Role and life-cycle rules.
    let f = chief
        .post(
            "/api/v1/faults",
            json!({"title": "Leak", "severity": "low"}),
            201,
        )
        .await;
    let path = format!("/api/v1/faults/{}", f["id"].as_str().unwrap());
    let (s, b) = crew
        .send(M::PATCH, &path, Some(json!({"status": "resolved"})))
        .await;
    assert_error("crew changes status", s, 403, &b);
    let (s, b) = chief
        .send(M::PATCH, &path, Some(json!({"status": "closed"})))
        .await;
    assert_error("open straight to closed", s, 409, &b);
    let (s, b) = chief
        .send(M::PATCH, &path, Some(json!({"status": "resolved"})))
        .await;
    assert_error("resolved without a corrective action", s, 400, &b);
    assert!(
        b["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("corrective_action:")),
        "{b}"
    );
    let (s, b) = crew
        .send(M::PATCH, &path, Some(json!({"cause": "Worn gasket"})))
        .await;
    assert_error("crew records the cause", s, 403, &b);
    let (s, b) = chief.send(M::PATCH, &path, Some(json!({}))).await;
    assert_error("empty patch", s, 400, &b);
    let (s, b) = crew
        .send(M::POST, "/api/v1/sync/now", Some(json!({})))
        .await;
    assert_error("crew starts a sync", s, 403, &b);
    crew.post(
        &format!("{path}/comments"),
        json!({"text": "Seen it too"}),
        201,
    )
    .await;
    let (s, b) = crew
        .send(
            M::POST,
            &format!("{path}/comments"),
            Some(json!({"text": "   "})),
        )
        .await;
    assert_error("empty comment", s, 400, &b);

    // An oversized body is refused before any of it is read: the request
    // states its length and the answer comes without a byte of the body.
    // (Sending the body as well would race the server's close against the
    // client's last writes, and the client could see a broken pipe instead
    // of the answer.)
    let auth = format!("Bearer {}", chief.token().unwrap());
    let (status, body) = keelson_tests::post_head_only(
        &edge.url,
        "/api/v1/faults",
        &[
            ("authorization", auth),
            ("content-type", "application/json".into()),
        ],
        3 << 20,
    )
    .await;
    assert_error("oversized body", status, 413, &body);

    // Health and metrics need no login.
    let health = reqwest::get(format!("{}/healthz", edge.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", edge.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("keelson_http_requests_total"), "{metrics}");
    cancel.cancel();
}
