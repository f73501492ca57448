//! Sample tiers through a running edge agent: the background task compacts
//! old rows into blocks and rollups, the API and the tag page read them at
//! the resolution the range calls for, and the dashboard and `/metrics`
//! show disk use per tier.

#![allow(clippy::unwrap_used)]

use chrono::{Duration as Span, Utc};
use keelson_model::{Quality, Sample};
use keelson_testkit::modbus::EngineRoomSim;
use keelson_tests::{Api, edge_config, start_edge, wait_for};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TAG: &str = "test.pressure";

async fn page(api: &Api, path: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", api.base()))
        .bearer_auth(api.token().unwrap())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_samples_are_compacted_and_every_view_reads_the_right_tier() {
    let cancel = CancellationToken::new();
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
    config.retention.compact_every_secs = 1;

    // Two days of a 1 Hz tag, ending now, written before the agent starts:
    // the agent's first upkeep pass compacts every closed hour of it.
    let now = Utc::now();
    let start = now - Span::days(2);
    {
        std::fs::create_dir_all(&config.storage.data_dir).unwrap();
        let db =
            keelson_store::Db::open(&config.storage.data_dir, keelson_store::Site::Edge).unwrap();
        let batch: Vec<Sample> = (0..2 * 86_400)
            .map(|i| Sample {
                tag: TAG.into(),
                ts: start + Span::seconds(i),
                value: Some(5.0 + ((i % 600) as f64) * 0.01),
                quality: Quality::Good,
                text: None,
            })
            .collect();
        db.insert_samples(&batch).unwrap();
    }
    let edge = start_edge(dir, config, &cancel).await;
    let ship = Api::login(&edge.url, "chief", "chief").await;

    let metrics = wait_for("the first upkeep pass", Duration::from_secs(60), || {
        let ship = ship.clone();
        async move {
            let (_, text) = page(&ship, "/metrics").await;
            let blocks = text
                .lines()
                .find(|l| l.starts_with("keelson_storage_raw_block_bytes "))?
                .rsplit(' ')
                .next()?
                .parse::<u64>()
                .ok()?;
            (blocks > 0).then_some(text)
        }
    })
    .await;
    for gauge in [
        "keelson_storage_used_bytes",
        "keelson_storage_budget_bytes",
        "keelson_storage_rows_bytes",
        "keelson_storage_minute_rollup_bytes",
        "keelson_storage_hour_rollup_bytes",
        "keelson_storage_headroom_days",
    ] {
        assert!(metrics.contains(gauge), "{gauge} missing from /metrics");
    }
    let db = edge.edge.state.db.clone();
    // The live device's tags are written too; count only the test tag.
    let all = db
        .series(
            TAG,
            start.timestamp_millis(),
            now.timestamp_millis(),
            Some(keelson_store::Resolution::Raw),
            usize::MAX,
        )
        .unwrap();
    assert_eq!(all.points.len(), 2 * 86_400, "compaction kept every sample");
    assert!(db.storage_usage(u64::MAX).unwrap().block_samples > 40 * 3600);

    // The API: a 30-day range reads hourly rollups, the last hour every sample.
    let q = |from: chrono::DateTime<Utc>, extra: &str| {
        format!(
            "/api/v1/tags/{TAG}/samples?from={}&to={}{extra}",
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    let hourly = ship.get(&q(now - Span::days(30), "")).await;
    let hourly = hourly.as_array().unwrap();
    assert!(
        (48..=50).contains(&hourly.len()),
        "{} hourly points",
        hourly.len()
    );
    assert_eq!(hourly[0]["resolution"], "hour");
    assert_eq!(hourly[5]["count"], 3600);
    let raw = ship.get(&q(now - Span::hours(3), "")).await;
    let raw = raw.as_array().unwrap();
    assert!(raw.len() > 3 * 3600 - 5, "{} raw points", raw.len());
    assert!(raw[0].get("resolution").is_none());
    let minutes = ship
        .get(&q(now - Span::days(2), "&resolution=minute"))
        .await;
    assert!(minutes.as_array().unwrap().len() > 2 * 1440 - 5);
    let (status, _) = ship
        .send(
            reqwest::Method::GET,
            &q(now - Span::days(2), "&resolution=weekly"),
            None,
        )
        .await;
    assert_eq!(status, 400);

    // The tag page draws a chart per range, and stays small and self-contained.
    for range in ["1h", "24h", "30d"] {
        let (status, html) = page(&ship, &format!("/tags/{TAG}?range={range}")).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("<svg") && html.contains("<polyline"),
            "{range}: no chart"
        );
        assert!(
            html.len() < 150 * 1024,
            "{range}: page is {} bytes",
            html.len()
        );
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    }
    let (_, html) = page(&ship, &format!("/tags/{TAG}?range=30d")).await;
    assert!(html.contains("hourly rollups"));
    let (status, _) = page(&ship, "/tags/no.such.tag").await;
    assert_eq!(status, 404);

    // The dashboard links live tags to their page and shows the storage card.
    let (_, html) = page(&ship, "/").await;
    assert!(html.contains("Storage") && html.contains("Compressed samples"));
    assert!(html.contains("/tags/"), "tags link to their page");

    cancel.cancel();
    edge.edge.join().await;
    device.stop().await;
}
