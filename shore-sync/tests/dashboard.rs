//! The Grafana dashboard shipped in `packaging/` only queries metrics the
//! shore really exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::Request;
use keelson_shore::{ShoreConfig, ShoreState};
use std::collections::BTreeSet;
use tower::ServiceExt;

const DASHBOARD: &str = include_str!("../../packaging/grafana/keelson-fleet.json");

/// Every `keelson_…` metric name in the dashboard's queries.
fn queried_metrics(dashboard: &serde_json::Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
    {
        let expr = target["expr"].as_str().expect("expr");
        for (i, _) in expr.match_indices("keelson_") {
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
    let names = queried_metrics(&dashboard);
    assert!(names.len() >= 8, "{names:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut config = ShoreConfig::parse("test", keelson_shore::DEFAULT_CONFIG).unwrap();
    config.storage.data_dir = dir.path().to_owned();
    let state = ShoreState::open(config).unwrap();
    let (_, public) = {
        let (key, pkcs8) = keelson_sync::signing::VesselKey::generate().unwrap();
        (pkcs8, key.public_key_b64())
    };
    keelson_shore::add_vessel(
        &state.db,
        "imo9321483",
        "MV Nordic Star",
        &public,
        "default",
    )
    .unwrap();
    let app = keelson_shore::router(state.clone());
    // One request, so the HTTP counter has a series.
    let resp = app
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = state.metrics.render();

    for name in &names {
        let exported = text.lines().any(|l| {
            !l.starts_with('#')
                && (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        });
        assert!(
            exported,
            "the dashboard queries {name}, which the shore does not export:\n{text}"
        );
    }
}
