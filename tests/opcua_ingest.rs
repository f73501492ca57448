//! The edge agent reads an OPC-UA server over Basic256Sha256 with a user
//! name and password: it creates its own certificate in the data directory
//! on first start, refuses the unknown server certificate and says so on
//! `/metrics`, and connects once fleet IT has moved the certificate from
//! `rejected/` to `trusted/`, as the fleet-IT guide describes.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use keelson_ingest::{
    OpcuaServerConfig, OpcuaTagConfig,
    opcua::{DeadbandType, ReadMode, SecurityMode, SecurityPolicy},
};
use keelson_testkit::opcua::{OpcuaTestServer, PASSWORD, USERNAME};
use keelson_tests::{Api, edge_config, start_edge, wait_for};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_trusts_an_opcua_server_once_fleet_it_moves_its_certificate() {
    let cancel = CancellationToken::new();
    let mut server = OpcuaTestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, unused);
    config.sync.enabled = false;
    config.ingest.modbus.clear();
    config.ingest.opcua.push(OpcuaServerConfig {
        name: "ams".into(),
        endpoint_url: server.endpoint_url(),
        security_policy: SecurityPolicy::Basic256Sha256,
        security_mode: SecurityMode::SignAndEncrypt,
        username: Some(USERNAME.into()),
        password: Some(PASSWORD.into()),
        // The agent fills in its data directory.
        pki_dir: None,
        trust_server_certs: false,
        mode: ReadMode::Subscription,
        publishing_interval_ms: 200,
        poll_interval_ms: 200,
        timeout_ms: 3000,
        tags: vec![OpcuaTagConfig {
            tag: "ams.double".into(),
            node_id: server.node_id("Double"),
            sampling_interval_ms: None,
            deadband: None,
            deadband_type: DeadbandType::Absolute,
            scale: 1.0,
            offset: 0.0,
            unit: "bar".into(),
        }],
    });
    let pki = config.storage.data_dir.join(keelson_edge::OPCUA_PKI_DIR);
    let edge = start_edge(dir, config, &cancel).await;
    let metrics = format!("{}/metrics", edge.url);

    wait_for("the certificate refusal on /metrics", WAIT, || {
        let url = metrics.clone();
        async move {
            let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
            text.contains(r#"keelson_ingest_errors_total{source="ams",kind="certificate"}"#)
                .then_some(())
        }
    })
    .await;
    assert!(pki.join("own/cert.der").is_file());
    let rejected: Vec<_> = std::fs::read_dir(pki.join("rejected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");

    let api = Api::login(&edge.url, "crew", "crew").await;
    let tags = api.get("/api/v1/tags").await;
    assert_eq!(tags[0]["name"], "ams.double");
    assert_eq!(tags[0]["quality"], "bad", "{tags}");

    let file = &rejected[0];
    std::fs::rename(file, pki.join("trusted").join(file.file_name().unwrap())).unwrap();
    wait_for("a good value once trusted", WAIT, || {
        let api = api.clone();
        async move {
            let tags = api.get("/api/v1/tags").await;
            (tags[0]["quality"] == "good" && tags[0]["unit"] == "bar").then_some(())
        }
    })
    .await;

    cancel.cancel();
    edge.edge.join().await;
    server.stop().await;
}
