//! The rollups lane end to end: a vessel's compacted sensor history reaches
//! the shore as hourly and 1-minute rollups, equal to what the vessel holds,
//! the vessel's cursor moves only on the shore's acknowledgement, and the
//! shore draws a tag's trend from them.

#![allow(clippy::unwrap_used)]

use chrono::{Duration as Span, DurationRound, Utc};
use keelson_edge::demo::DEMO_VESSEL;
use keelson_model::{Quality, Sample};
use keelson_store::Resolution;
use keelson_testkit::modbus::EngineRoomSim;
use keelson_tests::{Api, edge_config, start_edge, start_shore, wait_for};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TAG: &str = "test.exhaust";
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_hours_reach_the_shore_as_rollups() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let device = EngineRoomSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = edge_config(dir.path(), device.local_addr(), shore.addr);
    config.retention.compact_every_secs = 1;
    config.retention.minute_rollups_synced = true;
    keelson_tests::register_vessel(&shore, &config);

    // Three whole hours of a 1 Hz tag, ending an hour ago, written before
    // the agent starts: its first upkeep pass compacts them.
    let first_hour = (Utc::now() - Span::hours(4))
        .duration_trunc(Span::hours(1))
        .unwrap();
    {
        std::fs::create_dir_all(&config.storage.data_dir).unwrap();
        let db =
            keelson_store::Db::open(&config.storage.data_dir, keelson_store::Site::Edge).unwrap();
        let batch: Vec<Sample> = (0..3 * 3600)
            .map(|i| Sample {
                tag: TAG.into(),
                ts: first_hour + Span::seconds(i),
                value: Some(300.0 + ((i % 900) as f64) * 0.1),
                quality: if i % 1000 == 7 {
                    Quality::Uncertain
                } else {
                    Quality::Good
                },
                text: None,
            })
            .collect();
        db.insert_samples(&batch).unwrap();
    }
    let edge = start_edge(dir, config, &cancel).await;
    let db = edge.edge.state.db.clone();
    wait_for("the first upkeep pass", WAIT, || {
        let db = db.clone();
        async move { (db.rollup_cursor(Resolution::Hour).ok()?.latest >= 3).then_some(()) }
    })
    .await;

    let ship = Api::login(&edge.url, "chief", "chief").await;
    let office = Api::login(&shore.url, "office", "office").await;
    let status = keelson_tests::sync_and_wait(&ship, WAIT).await;
    assert!(status["last_error"].is_null(), "{status}");

    // Every rollup the vessel holds is acknowledged, and the shore holds
    // the same numbers.
    for tier in [Resolution::Hour, Resolution::Minute] {
        let cursor = db.rollup_cursor(tier).unwrap();
        assert!(cursor.latest > 0);
        assert_eq!(cursor.acked, cursor.latest, "{tier:?} not all acknowledged");
    }
    let from = first_hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (first_hour + Span::hours(3) - Span::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ashore = office
        .get(&format!(
            "/api/v1/vessels/{DEMO_VESSEL}/tags/{TAG}/rollups?from={from}&to={to}"
        ))
        .await;
    let ashore = ashore.as_array().unwrap();
    let on_board = ship
        .get(&format!(
            "/api/v1/tags/{TAG}/samples?from={from}&to={to}&resolution=hour"
        ))
        .await;
    let on_board = on_board.as_array().unwrap();
    assert_eq!(ashore.len(), 3);
    assert_eq!(on_board.len(), 3);
    for (s, b) in ashore.iter().zip(on_board) {
        assert_eq!(s["count"], 3600);
        assert_eq!(s["count"], b["count"]);
        assert_eq!(s["good"], b["good"]);
        assert_eq!(s["mean"], b["value"]);
        assert_eq!(s["min"], b["min"]);
        assert_eq!(s["max"], b["max"]);
        assert_eq!(s["last"], b["last"]);
    }
    assert!(ashore.iter().any(|r| r["good"] != r["count"]));
    let minutes = office
        .get(&format!(
            "/api/v1/vessels/{DEMO_VESSEL}/tags/{TAG}/rollups?width=minute&from={from}&to={to}"
        ))
        .await;
    assert_eq!(minutes.as_array().unwrap().len(), 180);

    // The fleet view says how far the shore's sensor data reaches.
    let fleet = office.get("/api/v1/vessels").await;
    let until = fleet.as_array().unwrap()[0]["sensor_data_until"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap();
    assert_eq!(until, first_hour + Span::hours(3), "{fleet}");

    // The vessel page lists the tag; its page draws the trend.
    let tags = office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/tags"))
        .await;
    assert!(
        tags.as_array().unwrap().iter().any(|t| t["tag"] == TAG),
        "{tags}"
    );
    for path in [
        format!("/vessels/{DEMO_VESSEL}"),
        format!("/vessels/{DEMO_VESSEL}/tags/{TAG}?range=1d"),
    ] {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", shore.url))
            .bearer_auth(office.token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(TAG), "{path}");
        if path.contains("/tags/") {
            assert!(html.contains("<svg"), "{path} has no chart");
        }
    }
    let (status, _) = office
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/vessels/{DEMO_VESSEL}/tags/{TAG}/rollups?width=weekly"),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = office
        .send(
            reqwest::Method::GET,
            "/api/v1/vessels/unknown-ship/tags",
            None,
        )
        .await;
    assert_eq!(status, 404);

    cancel.cancel();
    edge.edge.join().await;
}
