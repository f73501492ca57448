//! The edge agent's `/metrics` shows ingest at work: samples per source, poll
//! latency, errors by kind, queue depth and dropped samples.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use keelson_testkit::EngineRoomSim;
use keelson_tests::{edge_config, start_edge, wait_for};
use tokio_util::sync::CancellationToken;

/// The value of the first series whose line starts with `prefix`.
fn series(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_ingest_per_source() {
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let device = EngineRoomSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), device.local_addr(), unused);
    config.sync.enabled = false;
    config.ingest.modbus[0].poll_interval_ms = 100;
    // A second device nobody answers for, so connection errors show too.
    let mut dead = config.ingest.modbus[0].clone();
    dead.name = "dead-plc".into();
    dead.address = unused.to_string();
    for register in &mut dead.registers {
        register.tag = format!("dead.{}", register.tag);
    }
    config.ingest.modbus.push(dead);
    let edge = start_edge(dir, config, &cancel).await;
    let url = format!("{}/metrics", edge.url);

    let text = wait_for("ingest metrics", Duration::from_secs(15), || {
        let url = url.clone();
        async move {
            let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
            let samples = series(
                &text,
                r#"keelson_ingest_samples_total{source="engine-room"}"#,
            )?;
            let errors = series(
                &text,
                r#"keelson_ingest_errors_total{source="dead-plc",kind="connect"}"#,
            )?;
            (samples >= 20.0 && errors >= 1.0).then_some(text)
        }
    })
    .await;
    assert!(
        series(
            &text,
            r#"keelson_ingest_poll_latency_seconds_count{source="engine-room"}"#
        )
        .unwrap()
            >= 2.0,
        "{text}"
    );
    assert!(text.contains("keelson_ingest_queue_depth "), "{text}");
    assert_eq!(
        series(&text, "keelson_ingest_dropped_samples_total ").unwrap(),
        0.0,
        "{text}"
    );
    cancel.cancel();
    edge.edge.join().await;
    device.stop().await;
}
