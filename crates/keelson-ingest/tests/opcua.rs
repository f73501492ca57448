//! OPC-UA ingest against a real OPC-UA server from the testkit on loopback:
//! subscriptions with typed, scaled values and a deadband, polling, bad
//! status codes, Basic256Sha256 with a trusted and an untrusted server
//! certificate, a user name and password, and a server restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::{path::Path, sync::Arc};

use common::{VecSink, errors, poll_until, value_of, wait_until};
use keelson_ingest::{
    IngestConfig, IngestMetrics, OpcuaServerConfig, OpcuaTagConfig,
    opcua::{DeadbandType, ReadMode, SecurityMode, SecurityPolicy},
    start,
};
use keelson_model::{Quality, TagValue};
use keelson_testkit::opcua::{OpcuaTestServer, PASSWORD, USERNAME};
use tokio_util::sync::CancellationToken;

/// A tag on the test server's variable `node`.
fn tag(server: &OpcuaTestServer, name: &str, node: &str) -> OpcuaTagConfig {
    OpcuaTagConfig {
        tag: name.into(),
        node_id: server.node_id(node),
        sampling_interval_ms: None,
        deadband: None,
        deadband_type: DeadbandType::Absolute,
        scale: 1.0,
        offset: 0.0,
        unit: String::new(),
    }
}

/// The test server as an anonymous, unsecured source with the agent's PKI
/// in `pki`, fast intervals and `tags`.
fn source(
    server: &OpcuaTestServer,
    name: &str,
    pki: &Path,
    tags: Vec<OpcuaTagConfig>,
) -> OpcuaServerConfig {
    OpcuaServerConfig {
        name: name.into(),
        endpoint_url: server.endpoint_url(),
        security_policy: SecurityPolicy::None,
        security_mode: SecurityMode::None,
        username: None,
        password: None,
        pki_dir: Some(pki.to_path_buf()),
        trust_server_certs: false,
        mode: ReadMode::Subscription,
        publishing_interval_ms: 200,
        poll_interval_ms: 200,
        timeout_ms: 3000,
        tags,
    }
}

fn config(sources: Vec<OpcuaServerConfig>) -> IngestConfig {
    IngestConfig {
        // The tests watch qualities themselves; the stale rule would only
        // blur them.
        stale_after_ms: 0,
        opcua: sources,
        ..IngestConfig::default()
    }
}

/// Whether `value` is a whole number.
fn whole(value: f64) -> bool {
    value.fract() == 0.0
}

fn good(values: &[TagValue], name: &str) -> bool {
    value_of(values, name).quality == Quality::Good
}

/// Every changing variable of the test server, as tags named after their
/// types, with a scale and offset on the Double.
fn typed_tags(server: &OpcuaTestServer) -> Vec<OpcuaTagConfig> {
    let mut double = tag(server, "double", "Double");
    double.scale = 10.0;
    double.offset = 1.0;
    vec![
        double,
        tag(server, "float", "Float"),
        tag(server, "int32", "Int32"),
        tag(server, "uint16", "UInt16"),
        tag(server, "boolean", "Boolean"),
        tag(server, "string", "String"),
    ]
}

const TYPED: [&str; 6] = ["double", "float", "int32", "uint16", "boolean", "string"];

/// Checks that each typed tag's value is one the server can have sent at
/// some tick `n`, after scale and offset (see the testkit's table).
fn check_typed(values: &[TagValue]) {
    let v = |name: &str| value_of(values, name).value.unwrap();
    let double = v("double");
    assert!(whole((double - 1.0) / 10.0 * 2.0), "double {double}");
    assert!(whole(v("float") * 4.0), "float {}", v("float"));
    assert!(
        whole(v("int32")) && v("int32") <= 0.0,
        "int32 {}",
        v("int32")
    );
    assert!(whole(v("uint16")) && (0.0..=65535.0).contains(&v("uint16")));
    assert!(
        [0.0, 1.0].contains(&v("boolean")),
        "boolean {}",
        v("boolean")
    );
    assert!(
        whole(v("string")) && v("string") >= 0.0,
        "string {}",
        v("string")
    );
}

fn encoded(metrics: &IngestMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// The value of the series whose line starts with `prefix`.
fn series(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn subscription_delivers_typed_scaled_values_and_bad_status() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    let mut tags = typed_tags(&server);
    let mut banded = tag(&server, "double.banded", "Double");
    banded.sampling_interval_ms = Some(100);
    banded.deadband = Some(1.0);
    tags.push(banded);
    tags.push(tag(&server, "text", "Text"));
    tags.push(tag(&server, "broken", "Bad"));
    let config = config(vec![source(&server, "plc", pki.path(), tags)]);
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    let values = wait_until(&handle.latest, "every typed tag good", |values| {
        TYPED.iter().all(|name| good(values, name))
    })
    .await;
    check_typed(&values);
    // Values keep arriving as the server changes them.
    poll_until("several double values", || {
        let mut seen: Vec<f64> = sink
            .stored()
            .iter()
            .filter(|s| s.tag == "double" && s.quality == Quality::Good)
            .filter_map(|s| s.value)
            .collect();
        seen.dedup();
        seen.len() >= 4
    })
    .await;
    let values = handle.latest.snapshot();
    check_typed(&values);

    // A node with a bad status gives bad samples, counted by kind; text that
    // is not a number reads as text.
    poll_until("bad status counted", || {
        errors(&handle.metrics, "plc", "status") >= 1
    })
    .await;
    let stored = sink.stored();
    let broken: Vec<_> = stored.iter().filter(|s| s.tag == "broken").collect();
    assert!(!broken.is_empty(), "no sample of broken");
    assert!(
        broken
            .iter()
            .all(|s| s.quality == Quality::Bad && s.value.is_none()),
        "broken: {broken:?}"
    );
    let text: Vec<_> = stored.iter().filter(|s| s.tag == "text").collect();
    assert!(!text.is_empty(), "no sample of text");
    assert!(
        text.iter().all(|s| s.quality == Quality::Good
            && s.value.is_none()
            && s.text.as_deref() == Some("running")),
        "text: {text:?}"
    );
    assert_eq!(errors(&handle.metrics, "plc", "decode"), 0);

    // The deadband of 1.0 on a value moving 0.5 per tick lets only moves of
    // more than 1.0 through.
    poll_until("several banded values", || {
        sink.stored()
            .iter()
            .filter(|s| s.tag == "double.banded" && s.value.is_some())
            .count()
            >= 3
    })
    .await;
    let banded: Vec<f64> = sink
        .stored()
        .iter()
        .filter(|s| s.tag == "double.banded")
        .filter_map(|s| s.value)
        .collect();
    for pair in banded.windows(2) {
        assert!(
            (pair[1] - pair[0]).abs() > 1.0,
            "deadband let a small move through: {banded:?}"
        );
    }
    assert!(encoded(&handle.metrics).contains("ingest_samples_total{source=\"plc\"}"));

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn polling_reads_every_tag() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    let mut tags = typed_tags(&server);
    tags.push(tag(&server, "broken", "Bad"));
    let mut polled = source(&server, "poller", pki.path(), tags);
    polled.mode = ReadMode::Poll;
    polled.poll_interval_ms = 100;
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config(vec![polled]), sink.clone(), cancel.clone()).unwrap();

    let values = wait_until(&handle.latest, "every typed tag good", |values| {
        TYPED.iter().all(|name| good(values, name))
    })
    .await;
    check_typed(&values);
    assert_eq!(value_of(&values, "broken").quality, Quality::Bad);
    // Polls repeat: each one stores every tag.
    poll_until("three polls", || {
        sink.stored().iter().filter(|s| s.tag == "uint16").count() >= 3
    })
    .await;
    assert!(errors(&handle.metrics, "poller", "status") >= 1);
    let text = encoded(&handle.metrics);
    assert!(
        text.contains("ingest_poll_latency_seconds_count{source=\"poller\"}"),
        "{text}"
    );

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn tags_the_server_will_not_monitor_are_polled() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    // A percent deadband needs the variable's EURange, which the test
    // server does not give, and a node that does not exist cannot be
    // monitored at all.
    let mut percent = tag(&server, "double.percent", "Double");
    percent.deadband = Some(5.0);
    percent.deadband_type = DeadbandType::Percent;
    let tags = vec![
        tag(&server, "int32", "Int32"),
        percent,
        tag(&server, "missing", "Missing"),
    ];
    let mut subscribed = source(&server, "plc", pki.path(), tags);
    subscribed.poll_interval_ms = 100;
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config(vec![subscribed]), sink.clone(), cancel.clone()).unwrap();

    wait_until(&handle.latest, "monitored and polled tags good", |values| {
        good(values, "int32") && good(values, "double.percent")
    })
    .await;
    assert!(errors(&handle.metrics, "plc", "subscription") >= 1);
    // The refused tag is read by polling, in subscription mode.
    poll_until("repeated polls", || {
        series(
            &encoded(&handle.metrics),
            "ingest_poll_latency_seconds_count{source=\"plc\"}",
        )
        .is_some_and(|polls| polls >= 3.0)
    })
    .await;
    // The node that does not exist is bad, whether the server refused to
    // monitor it or reports its status through the subscription.
    poll_until("the missing node reported", || {
        handle.latest.get("missing").unwrap().ts.is_some()
    })
    .await;
    assert!(
        sink.stored()
            .iter()
            .filter(|s| s.tag == "missing")
            .all(|s| s.quality == Quality::Bad)
    );
    assert_eq!(handle.latest.get("missing").unwrap().quality, Quality::Bad);
    assert!(errors(&handle.metrics, "plc", "status") >= 1);

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn basic256sha256_with_a_trusted_server_and_a_password() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    let agent_pki = pki.path().join("opcua-pki");
    // Fleet IT has put the server's certificate into the trust store.
    server.trust_in(&agent_pki).unwrap();

    let mut encrypted = source(
        &server,
        "encrypted",
        &agent_pki,
        vec![tag(&server, "enc.double", "Double")],
    );
    encrypted.security_policy = SecurityPolicy::Basic256Sha256;
    encrypted.security_mode = SecurityMode::SignAndEncrypt;
    encrypted.username = Some(USERNAME.into());
    encrypted.password = Some(PASSWORD.into());
    let mut signed = source(
        &server,
        "signed",
        &agent_pki,
        vec![tag(&server, "sig.int32", "Int32")],
    );
    signed.security_policy = SecurityPolicy::Basic256Sha256;
    signed.security_mode = SecurityMode::Sign;
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(
        &config(vec![encrypted, signed]),
        sink.clone(),
        cancel.clone(),
    )
    .unwrap();

    wait_until(
        &handle.latest,
        "values over both secure endpoints",
        |values| good(values, "enc.double") && good(values, "sig.int32"),
    )
    .await;
    // The agent made its own certificate on first start, and trusted
    // nothing new.
    assert!(agent_pki.join("own/cert.der").is_file());
    assert!(agent_pki.join("private/private.pem").is_file());
    assert_eq!(
        std::fs::read_dir(agent_pki.join("rejected"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(errors(&handle.metrics, "encrypted", "certificate"), 0);

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn an_untrusted_server_is_refused_until_its_certificate_is_moved() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    let agent_pki = pki.path().join("opcua-pki");
    let mut secure = source(
        &server,
        "secure",
        &agent_pki,
        vec![tag(&server, "sec.double", "Double")],
    );
    secure.security_policy = SecurityPolicy::Basic256Sha256;
    secure.security_mode = SecurityMode::SignAndEncrypt;
    secure.username = Some(USERNAME.into());
    secure.password = Some(PASSWORD.into());
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config(vec![secure]), sink.clone(), cancel.clone()).unwrap();

    let rejected = agent_pki.join("rejected");
    poll_until("the certificate refused", || {
        errors(&handle.metrics, "secure", "certificate") >= 1
    })
    .await;
    let files: Vec<_> = std::fs::read_dir(&rejected)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // Refused means no value at all: the tag is bad, every stored sample
    // is bad.
    assert_eq!(
        handle.latest.get("sec.double").unwrap().quality,
        Quality::Bad
    );
    assert!(sink.stored().iter().all(|s| s.quality == Quality::Bad));

    // What fleet IT does after checking the certificate: move it from
    // rejected/ to trusted/. The next attempt connects.
    let file = &files[0];
    std::fs::rename(
        file,
        agent_pki.join("trusted").join(file.file_name().unwrap()),
    )
    .unwrap();
    wait_until(&handle.latest, "values once trusted", |values| {
        good(values, "sec.double")
    })
    .await;

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_samples() {
    let server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    server.trust_in(pki.path()).unwrap();
    let mut secure = source(
        &server,
        "secure",
        pki.path(),
        vec![tag(&server, "sec.double", "Double")],
    );
    secure.security_policy = SecurityPolicy::Basic256Sha256;
    secure.security_mode = SecurityMode::SignAndEncrypt;
    secure.username = Some(USERNAME.into());
    secure.password = Some("not the password".into());
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config(vec![secure]), sink.clone(), cancel.clone()).unwrap();

    poll_until("the login refused", || {
        errors(&handle.metrics, "secure", "login") >= 1
    })
    .await;
    assert_eq!(
        handle.latest.get("sec.double").unwrap().quality,
        Quality::Bad
    );
    assert!(sink.stored().iter().all(|s| s.quality == Quality::Bad));
    assert_eq!(errors(&handle.metrics, "secure", "certificate"), 0);

    cancel.cancel();
    handle.join().await;
    let mut server = server;
    server.stop().await;
}

#[tokio::test]
async fn a_server_restart_recreates_the_subscription() {
    let mut server = OpcuaTestServer::start().await.unwrap();
    let pki = tempfile::tempdir().unwrap();
    let tags = vec![
        tag(&server, "double", "Double"),
        tag(&server, "int32", "Int32"),
    ];
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(
        &config(vec![source(&server, "plc", pki.path(), tags)]),
        sink.clone(),
        cancel.clone(),
    )
    .unwrap();
    wait_until(&handle.latest, "values before the restart", |values| {
        good(values, "double") && good(values, "int32")
    })
    .await;

    server.stop().await;
    wait_until(
        &handle.latest,
        "tags bad while the server is away",
        |values| !good(values, "double") && !good(values, "int32"),
    )
    .await;
    assert!(errors(&handle.metrics, "plc", "connect") >= 1);
    let before = sink.stored().len();

    server.restart().await.unwrap();
    // The new server knows nothing of the old session; values only flow
    // again once the client has made a new session and subscription.
    poll_until("changing values after the restart", || {
        let mut seen: Vec<f64> = sink.stored()[before..]
            .iter()
            .filter(|s| s.tag == "double" && s.quality == Quality::Good)
            .filter_map(|s| s.value)
            .collect();
        seen.dedup();
        seen.len() >= 3
    })
    .await;
    wait_until(&handle.latest, "both tags good again", |values| {
        good(values, "double") && good(values, "int32")
    })
    .await;

    cancel.cancel();
    handle.join().await;
    server.stop().await;
}
