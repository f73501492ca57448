//! Shared helpers for the end-to-end tests: start a real shore and a real
//! edge agent (their libraries, on loopback port 0), talk to their APIs,
//! and wait for a condition instead of sleeping.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::{DemoOptions, demo_config};
use keelson_edge::{EdgeConfig, RunningEdge};
use keelson_model::{Role, ShoreRole};
use keelson_shore::{ShoreConfig, ShoreState};
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A shore running on a loopback port.
pub struct TestShore {
    /// Its base URL.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its state (database access for before/after comparisons).
    pub state: ShoreState,
    /// The serving task, which ends when the test's token is cancelled.
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// Starts a shore with a superintendent `office` / `office`, speaking plain
/// HTTP.
pub async fn start_shore(cancel: &CancellationToken) -> TestShore {
    start_shore_with_tls(cancel, None).await
}

/// Starts a shore with a superintendent `office` / `office`; with `tls`
/// (a certificate file and its key file) it speaks HTTPS, and its URL is
/// `https://127.0.0.1:<port>`.
pub async fn start_shore_with_tls(
    cancel: &CancellationToken,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> TestShore {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ShoreConfig::parse("test", keelson_shore::DEFAULT_CONFIG).unwrap();
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.storage.data_dir = dir.path().to_owned();
    if let Some((cert, key)) = tls {
        config.http.tls_cert_file = Some(cert.to_owned());
        config.http.tls_key_file = Some(key.to_owned());
    }
    let state = ShoreState::open(config).unwrap();
    keelson_shore::add_user(
        &state.db,
        "office",
        ShoreRole::Superintendent,
        "office",
        "default",
    )
    .unwrap();
    keelson_shore::add_user(&state.db, "viewer", ShoreRole::Viewer, "viewer", "default").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(keelson_shore::serve(
        state.clone(),
        listener,
        cancel.clone(),
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    TestShore {
        url: format!("{scheme}://{addr}"),
        addr,
        state,
        served,
        _dir: dir,
    }
}

/// Everything a sync request could change at a shore: its record and
/// change counts, its faults, and each vessel's acknowledged cursor.
pub type ShoreSnapshot = (u64, u64, Vec<keelson_model::Fault>, Vec<(String, u64)>);

impl TestShore {
    /// Everything a sync request could change, to compare before and after.
    pub fn snapshot(&self) -> ShoreSnapshot {
        let db = &self.state.db;
        let (records, changes) = db.record_counts().unwrap();
        let faults = db
            .list_faults(&keelson_store::FaultFilter::default())
            .unwrap();
        let vessels = db
            .vessels(None)
            .unwrap()
            .into_iter()
            .map(|v| (v.id, v.records_acked))
            .collect();
        (records, changes, faults, vessels)
    }
}

/// Creates the vessel key of `config` (when missing) and registers the
/// demo vessel with it at `shore`, in the default organization.
pub fn register_vessel(shore: &TestShore, config: &EdgeConfig) {
    let (key, _) = keelson_edge::keys::load_or_create(&config.sync.key_file).unwrap();
    keelson_shore::add_vessel(
        &shore.state.db,
        keelson_edge::demo::DEMO_VESSEL,
        "MV Test",
        &key.public_key_b64(),
        "default",
    )
    .unwrap();
}

/// An edge agent running on a loopback port.
pub struct TestEdge {
    /// Its base URL.
    pub url: String,
    /// The running agent.
    pub edge: RunningEdge,
    /// Its data directory.
    pub dir: tempfile::TempDir,
}

/// The demo's edge configuration, on port 0 in a fresh directory, polling
/// `device` and syncing through `link` (sync only when triggered, so tests
/// decide when it happens).
pub fn edge_config(dir: &std::path::Path, device: SocketAddr, link: SocketAddr) -> EdgeConfig {
    let opts = DemoOptions {
        data_dir: dir.to_owned(),
        ship_port: 0,
        shore_port: 0,
        sync_interval_secs: 3600,
    };
    let mut c = demo_config(&opts, device, link);
    c.sync.request_timeout_secs = 10;
    c
}

/// An edge configuration with no sensors and no shore, for tests of the
/// API and the pages alone.
pub fn standalone_edge_config(dir: &std::path::Path) -> EdgeConfig {
    let unused: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let mut config = edge_config(dir, unused, unused);
    config.ingest.modbus.clear();
    config.sync.enabled = false;
    config
}

/// Starts an edge agent with users `chief` (chief engineer), `engineer`,
/// `crew` and `master`, each with the password of its name.
pub async fn start_edge(
    dir: tempfile::TempDir,
    config: EdgeConfig,
    cancel: &CancellationToken,
) -> TestEdge {
    std::fs::create_dir_all(&config.storage.data_dir).unwrap();
    {
        let db =
            keelson_store::Db::open(&config.storage.data_dir, keelson_store::Site::Edge).unwrap();
        keelson_edge::add_user(&db, "chief", Role::ChiefEngineer, "chief").unwrap();
        keelson_edge::add_user(&db, "crew", Role::Crew, "crew").unwrap();
        keelson_edge::add_user(&db, "master", Role::Master, "master").unwrap();
        keelson_edge::add_user(&db, "engineer", Role::Engineer, "engineer").unwrap();
    }
    let edge = keelson_edge::start(config, cancel.clone()).await.unwrap();
    TestEdge {
        url: format!("http://{}", edge.addr),
        edge,
        dir,
    }
}

/// Works the work order at `path` (its API path) as `engineer`: starts it,
/// records one entry of `text` and `hours`, and marks it done, ready for
/// the chief engineer's sign-off.
pub async fn work_work_order(engineer: &Api, path: &str, text: &str, hours: f64) {
    engineer
        .patch(path, serde_json::json!({"status": "in_progress"}), 200)
        .await;
    engineer
        .post(
            &format!("{path}/entries"),
            serde_json::json!({"text": text, "hours": hours}),
            201,
        )
        .await;
    engineer
        .patch(path, serde_json::json!({"status": "done"}), 200)
        .await;
}

/// Starts an edge agent with no sensors, registered at `shore` and syncing
/// straight to it, for the tests of records on their way ashore.
pub async fn start_synced_edge(shore: &TestShore, cancel: &CancellationToken) -> TestEdge {
    let dir = tempfile::tempdir().unwrap();
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut config = edge_config(dir.path(), unused, shore.addr);
    config.ingest.modbus.clear();
    register_vessel(shore, &config);
    start_edge(dir, config, cancel).await
}

/// Starts an edge agent with neither sensors nor a shore, for the tests of
/// its records, API and pages alone.
pub async fn start_records_edge(cancel: &CancellationToken) -> TestEdge {
    let dir = tempfile::tempdir().unwrap();
    let config = standalone_edge_config(dir.path());
    start_edge(dir, config, cancel).await
}

/// A small JSON API client.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// An anonymous client.
    pub fn anonymous(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    /// Logs in and returns a client with the bearer token.
    pub async fn login(base: &str, username: &str, password: &str) -> Api {
        let api = Api::anonymous(base);
        let (status, body) = api
            .send(
                reqwest::Method::POST,
                "/api/v1/session",
                Some(serde_json::json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login as {username}: {body}");
        Api {
            token: Some(body["token"].as_str().unwrap().to_owned()),
            ..api
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token, when logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request and returns the status and the JSON body (Null when
    /// the body is not JSON).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::answer(req).await
    }

    /// Sends a `multipart/form-data` body and returns the status and the
    /// JSON body (Null when the body is not JSON).
    pub async fn send_form(
        &self,
        method: reqwest::Method,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> (u16, Value) {
        Self::answer(self.request(method, path).multipart(form)).await
    }

    /// A request to `path`, with the bearer token when logged in.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST, expecting `expect`.
    pub async fn post(&self, path: &str, body: Value, expect: u16) -> Value {
        let (status, resp) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, expect, "POST {path}: {resp}");
        resp
    }

    /// GETs a page as this client's user, expecting 200, and returns its
    /// text.
    pub async fn page(&self, path: &str) -> String {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.text().await.unwrap()
    }

    /// PATCH, expecting `expect`.
    pub async fn patch(&self, path: &str, body: Value, expect: u16) -> Value {
        let (status, resp) = self.send(reqwest::Method::PATCH, path, Some(body)).await;
        assert_eq!(status, expect, "PATCH {path}: {resp}");
        resp
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing the test
/// with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a sync session on board through `ship` (an engineer or above)
/// and waits until a session that started after the request has finished;
/// returns the sync status then.
pub async fn sync_and_wait(ship: &Api, timeout: Duration) -> Value {
    // Session start times are kept to the millisecond.
    let asked = chrono::Utc::now().timestamp_millis();
    ship.post("/api/v1/sync/now", serde_json::json!({}), 202)
        .await;
    wait_for("a finished sync session", timeout, || async {
        let st = ship.get("/api/v1/sync/status").await;
        let started = st["last_started"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let done = st["running"] == false && started.is_some_and(|t| t.timestamp_millis() >= asked);
        done.then_some(st)
    })
    .await
}

/// Sends only the head of a `POST` to `path` that announces a body of
/// `content_length` bytes, and returns the answer's status and JSON body.
/// A server that refuses an oversized body answers without reading any of
/// it; sending the body as well would race its close against the client's
/// last writes, and the client could see a broken pipe instead of the
/// answer.
pub async fn post_head_only(
    base: &str,
    path: &str,
    headers: &[(&str, String)],
    content_length: usize,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer before any of the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// A browser-less client of the pages: plain form posts, no JavaScript,
/// redirects left for the test to see.
pub struct Pages {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Pages {
    /// Logs in as `user`, whose password is its name.
    pub async fn login(base: &str, user: &str) -> Pages {
        let api = Api::login(base, user, user).await;
        Pages {
            base: base.to_owned(),
            token: api.token().unwrap().to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// GETs a page: its status and its text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// Posts a form and returns the status and where it redirects to.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        (status, location.unwrap_or(text))
    }
}
