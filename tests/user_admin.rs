//! User administration on board, through a real edge agent: only the master
//! manages users, a new user logs in with their role, a role change or a
//! new password ends the user's sessions, and no master can remove or
//! demote themselves.

#![allow(clippy::unwrap_used)]

use keelson_tests::{Api, start_records_edge};
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_manages_users_and_cannot_lock_themselves_out() {
    let cancel = CancellationToken::new();
    let edge = start_records_edge(&cancel).await;
    let master = Api::login(&edge.url, "master", "master").await;
    let chief = Api::login(&edge.url, "chief", "chief").await;

    // Only the master sees or changes the users.
    let (status, body) = chief.send(Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 403, "{body}");
    let new_user = json!({"username": "oiler", "role": "crew", "password": "oiler-pass"});
    let (status, _) = chief
        .send(Method::POST, "/api/v1/users", Some(new_user.clone()))
        .await;
    assert_eq!(status, 403);
    let (status, _) = Api::anonymous(&edge.url)
        .send(Method::POST, "/api/v1/users", Some(new_user.clone()))
        .await;
    assert_eq!(status, 401);

    let added = master.post("/api/v1/users", new_user.clone(), 201).await;
    assert_eq!(added["role"], "crew");
    assert!(added.get("password_hash").is_none());
    let (status, body) = master
        .send(Method::POST, "/api/v1/users", Some(new_user))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = master
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "short", "role": "crew", "password": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // The new user logs in as crew; promoting them ends that session.
    let oiler = Api::login(&edge.url, "oiler", "oiler-pass").await;
    oiler.get("/api/v1/faults").await;
    let (status, body) = master
        .send(
            Method::PATCH,
            "/api/v1/users/oiler",
            Some(json!({"role": "engineer"})),
        )
        .await;
    assert_eq!((status, body["role"].as_str()), (200, Some("engineer")));
    let (status, _) = oiler.send(Method::GET, "/api/v1/faults", None).await;
    assert_eq!(status, 401, "the old session ended with the role change");
    let users = master.get("/api/v1/users").await;
    let oiler_row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "oiler")
        .unwrap()
        .clone();
    assert_eq!(oiler_row["role"], "engineer");

    // A new password works and the old one no longer does.
    let (status, _) = master
        .send(
            Method::PATCH,
            "/api/v1/users/oiler",
            Some(json!({"password": "new-oiler-pass"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = Api::anonymous(&edge.url)
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({"username": "oiler", "password": "oiler-pass"})),
        )
        .await;
    assert_eq!(status, 401);
    Api::login(&edge.url, "oiler", "new-oiler-pass").await;

    // The master cannot demote or remove themselves.
    let (status, body) = master
        .send(
            Method::PATCH,
            "/api/v1/users/master",
            Some(json!({"role": "crew"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = master
        .send(Method::DELETE, "/api/v1/users/master", None)
        .await;
    assert_eq!(status, 409);
    let (status, _) = master
        .send(Method::DELETE, "/api/v1/users/nobody", None)
        .await;
    assert_eq!(status, 404);

    // Removing a user ends their sessions.
    let (status, _) = master
        .send(Method::DELETE, "/api/v1/users/oiler", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = Api::anonymous(&edge.url)
        .send(
            Method::POST,
            "/api/v1/session",
            Some(json!({"username": "oiler", "password": "new-oiler-pass"})),
        )
        .await;
    assert_eq!(status, 401);
    cancel.cancel();
}
