//! HTTPS between a vessel and a shore on loopback: the shore serves its own
//! self-signed certificate through rustls, and the vessel syncs only when it
//! trusts that certificate, through a CA file or a pinned fingerprint. A
//! vessel that does not trust it sends nothing and says why in its sync
//! status.

#![allow(clippy::unwrap_used)]

use keelson_edge::config::SyncConfig;
use keelson_edge::shore_tls::CertFingerprint;
use keelson_tests::{
    Api, TestEdge, TestShore, edge_config, register_vessel, start_edge, start_shore_with_tls,
    sync_and_wait,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A self-signed certificate for the shore on loopback, in PEM files.
struct ShoreCert {
    cert: PathBuf,
    key: PathBuf,
    fingerprint: CertFingerprint,
    _dir: tempfile::TempDir,
}

fn shore_cert() -> ShoreCert {
    make_shore_cert(rcgen::IsCa::NoCa)
}

/// A certificate for the shore on loopback, a CA certificate or not.
fn make_shore_cert(is_ca: rcgen::IsCa) -> ShoreCert {
    let dir = tempfile::tempdir().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params.is_ca = is_ca;
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let made = params.self_signed(&key_pair).unwrap();
    let cert = dir.path().join("shore-cert.pem");
    let key = dir.path().join("shore-key.pem");
    std::fs::write(&cert, made.pem()).unwrap();
    std::fs::write(&key, key_pair.serialize_pem()).unwrap();
    ShoreCert {
        cert,
        key,
        fingerprint: CertFingerprint::of(made.der()),
        _dir: dir,
    }
}

struct World {
    shore: TestShore,
    _edge: TestEdge,
    ship: Api,
    cancel: CancellationToken,
}

/// A shore serving `cert` over HTTPS and a vessel registered there whose
/// `[sync]` trusts it as `trust` says.
async fn world(cert: &ShoreCert, trust: impl FnOnce(&mut SyncConfig)) -> World {
    let cancel = CancellationToken::new();
    let shore = start_shore_with_tls(&cancel, Some((&cert.cert, &cert.key))).await;
    assert!(shore.url.starts_with("https://127.0.0.1:"), "{}", shore.url);
    let dir = tempfile::tempdir().unwrap();
    // No sensors: the records lane is under test.
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, shore.addr);
    config.ingest.modbus.clear();
    config.sync.shore_url = shore.url.clone();
    trust(&mut config.sync);
    register_vessel(&shore, &config);
    let edge = start_edge(dir, config, &cancel).await;
    let ship = Api::login(&edge.url, "chief", "chief").await;
    World {
        shore,
        _edge: edge,
        ship,
        cancel,
    }
}

impl World {
    /// Logs a fault on board; returns its id.
    async fn log_fault(&self) -> String {
        let fault = self
            .ship
            .post(
                "/api/v1/faults",
                json!({"title": "Steering gear pump leaking", "description": "Drips at the seal",
                       "equipment": "Steering gear", "severity": "high"}),
                201,
            )
            .await;
        fault["id"].as_str().unwrap().to_owned()
    }

    /// Logs a fault and syncs; expects it ashore and the session clean.
    async fn fault_reaches_the_shore(&self) {
        let id = self.log_fault().await;
        let st = sync_and_wait(&self.ship, WAIT).await;
        assert_eq!(st["last_error"], Value::Null, "{st}");
        assert_eq!(st["records"]["pending_changes"], 0, "{st}");
        let (_, _, faults, vessels) = self.shore.snapshot();
        let ashore = faults
            .iter()
            .find(|f| f.id == id)
            .expect("the fault ashore");
        assert_eq!(ashore.title, "Steering gear pump leaking");
        assert!(vessels.iter().all(|(_, acked)| *acked > 0), "{vessels:?}");
    }

    /// Logs a fault and syncs; expects the session refused for `why`, the
    /// fault still waiting on board and nothing changed ashore.
    async fn fault_stays_on_board(&self, why: &str) -> String {
        let before = self.shore.snapshot();
        self.log_fault().await;
        let st = sync_and_wait(&self.ship, WAIT).await;
        let error = st["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(why), "expected `{why}` in {st}");
        assert_eq!(st["records"]["pending_changes"], 1, "{st}");
        assert_eq!(self.shore.snapshot(), before, "the shore's store changed");
        error
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vessel_trusting_the_shore_ca_file_syncs_over_https() {
    let cert = shore_cert();
    let w = world(&cert, |sync| sync.shore_ca_file = Some(cert.cert.clone())).await;
    w.fault_reaches_the_shore().await;

    // The shore still shuts down gracefully while serving HTTPS.
    w.cancel.cancel();
    let served = tokio::time::timeout(WAIT, w.shore.served)
        .await
        .expect("the shore stops when cancelled")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vessel_pinned_to_the_shore_certificate_syncs() {
    let cert = shore_cert();
    // The pin as openssl prints it: upper case, colons between bytes.
    let upper = cert.fingerprint.to_string().to_uppercase();
    let openssl_form = (0..32)
        .map(|i| &upper[2 * i..2 * i + 2])
        .collect::<Vec<_>>()
        .join(":");
    let pin: CertFingerprint = openssl_form.parse().unwrap();
    assert_eq!(pin, cert.fingerprint);
    let w = world(&cert, |sync| sync.shore_cert_sha256 = Some(pin)).await;
    w.fault_reaches_the_shore().await;
    w.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vessel_pinned_to_another_certificate_sends_nothing_and_says_why() {
    let cert = shore_cert();
    let other = shore_cert();
    let w = world(&cert, |sync| {
        sync.shore_cert_sha256 = Some(other.fingerprint);
    })
    .await;
    let error = w
        .fault_stays_on_board("the shore's certificate does not match the pinned fingerprint")
        .await;
    // The status names the certificate presented, to compare with the
    // shore's.
    assert!(
        error.contains(&cert.fingerprint.to_string()),
        "the presented fingerprint in {error}"
    );

    // Also with the right CA file: the pin must hold as well.
    w.cancel.cancel();
    let w = world(&cert, |sync| {
        sync.shore_ca_file = Some(cert.cert.clone());
        sync.shore_cert_sha256 = Some(other.fingerprint);
    })
    .await;
    w.fault_stays_on_board("does not match the pinned fingerprint")
        .await;
    w.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vessel_trusting_only_the_web_roots_refuses_a_self_signed_shore() {
    let cert = shore_cert();
    let w = world(&cert, |_| {}).await;
    w.fault_stays_on_board("the shore's certificate is not signed by a publicly trusted authority")
        .await;
    w.cancel.cancel();

    // A CA file of another certificate is refused in its own words.
    let other = shore_cert();
    let w = world(&cert, |sync| sync.shore_ca_file = Some(other.cert.clone())).await;
    w.fault_stays_on_board("is not signed by a certificate in sync.shore_ca_file")
        .await;
    w.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_as_the_shores_own_is_refused_in_words_but_may_be_pinned() {
    // What `openssl req -x509` makes by default: a self-signed certificate
    // that says it is a CA.
    let cert = make_shore_cert(rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained));
    let w = world(&cert, |sync| sync.shore_ca_file = Some(cert.cert.clone())).await;
    w.fault_stays_on_board("the shore's certificate is a CA certificate")
        .await;
    w.cancel.cancel();

    let w = world(&cert, |sync| {
        sync.shore_cert_sha256 = Some(cert.fingerprint)
    })
    .await;
    w.fault_reaches_the_shore().await;
    w.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shore_whose_certificate_is_gone_does_not_start() {
    let cert = shore_cert();
    let missing = cert.cert.with_file_name("gone.pem");
    let cancel = CancellationToken::new();
    let shore = start_shore_with_tls(&cancel, Some((&missing, &cert.key))).await;
    let served = tokio::time::timeout(WAIT, shore.served)
        .await
        .expect("serving fails at once")
        .unwrap();
    let e = served.expect_err("no certificate, no shore");
    assert!(e.to_string().contains("gone.pem"), "{e}");
    assert!(e.to_string().contains("http.tls_cert_file"), "{e}");
    cancel.cancel();
}
