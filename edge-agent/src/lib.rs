//! The Keelson edge agent: one per vessel, on the onboard server.
//!
//! It polls sensors into SQLite, keeps the maintenance records (faults for
//! now) as automerge documents, serves the ship LAN UI and REST API, and
//! syncs with the shore whenever the link is up.
//!
//! Architecture invariant: nothing on board waits for the shore link. Ingest
//! writes to the local database, users write records locally, and the sync
//! client catches up in the background from the change log.

pub mod alarms;
pub mod alarms_ui;
pub mod api;
pub mod attachments;
pub mod config;
pub mod counters_api;
pub mod demo;
pub mod keys;
pub mod maintenance_api;
pub mod maintenance_ui;
pub mod openapi;
pub mod parts_api;
pub mod parts_ui;
pub mod plans_api;
pub mod plans_ui;
pub mod running_hours;
pub mod shore_tls;
pub mod simulate;
pub mod storage;
pub mod sync_client;
pub mod trend;
pub mod ui;
pub mod users;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use keelson_ingest::{LatestValues, SampleSink, SinkError};
use keelson_model::{Role, Sample};
use keelson_records::Actor;
use keelson_store::{Db, Site};
use keelson_web::metrics::Metrics;
use keelson_web::{AppError, CurrentUser, HasDb, layout};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_CONFIG, EdgeConfig};

/// Shared state of the edge agent's handlers and tasks.
#[derive(Clone)]
pub struct EdgeState {
    /// The vessel database.
    pub db: Db,
    /// The configuration in force.
    pub config: Arc<EdgeConfig>,
    /// Latest value of every tag.
    pub latest: LatestValues,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The sync client's trigger and status.
    pub sync: sync_client::SyncHandle,
    /// The page shell's settings.
    pub site: layout::Site,
    /// Disk use per tier, from the last upkeep pass.
    pub storage: storage::StorageStatus,
    /// The alarm engine and its list.
    pub alarms: alarms::Alarms,
    /// The attachment files, beside the database.
    pub files: keelson_store::files::FileStore,
}

impl HasDb for EdgeState {
    fn db(&self) -> &Db {
        &self.db
    }
}

impl FromRef<EdgeState> for Metrics {
    fn from_ref(s: &EdgeState) -> Metrics {
        s.metrics.clone()
    }
}

impl keelson_web::session::WebState for EdgeState {
    fn site(&self) -> &layout::Site {
        &self.site
    }
    fn secure_cookies(&self) -> bool {
        self.config.http.secure_cookies
    }
}

/// The role of an authenticated user on board.
pub fn role_of(user: &CurrentUser) -> Result<Role, AppError> {
    user.role
        .parse()
        .map_err(|_| AppError::Forbidden(format!("role `{}` is not a ship role", user.role)))
}

/// What a user may do to records, from their role.
pub fn actor_of(user: &CurrentUser) -> Result<Actor, AppError> {
    let role = role_of(user)?;
    Ok(Actor {
        name: user.username.clone(),
        role,
    })
}

/// One record write as `user`, the shape every write of the ship's API and
/// pages takes. The user's role is checked first, so a request the role
/// cannot make is refused the same way whatever it names; `op` then loads,
/// changes and stores the record in one transaction, off the async
/// workers, with the vessel's id and the user as actor; once it has
/// committed, the sync client is told there is something to send.
pub async fn write_record<T, F>(state: &EdgeState, user: &CurrentUser, op: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Db, &str, &Actor) -> Result<T, keelson_records::RecordError> + Send + 'static,
{
    let actor = actor_of(user)?;
    let s = state.clone();
    let out = keelson_web::blocking(move || Ok(op(&s.db, &s.config.vessel.id, &actor)?)).await?;
    state.sync.trigger();
    Ok(out)
}

/// Every route of the edge agent, testable without a socket.
pub fn router(state: EdgeState) -> Router {
    // Uploads have their own, larger body limit; every other route keeps
    // the 1 MiB one, which is why they are merged after its layer.
    let uploads = attachments::upload_router(&state);
    Router::new()
        .merge(api::router())
        .merge(attachments::router())
        .merge(alarms::router())
        .merge(alarms_ui::router())
        .merge(maintenance_api::router())
        .merge(counters_api::router())
        .merge(plans_api::router())
        .merge(openapi::router())
        .merge(users::router())
        .merge(plans_ui::router())
        .merge(parts_api::router())
        .merge(parts_ui::router())
        .merge(ui::router())
        .merge(maintenance_ui::router())
        .merge(trend::router())
        .merge(keelson_web::assets::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(keelson_web::metrics::handler))
        .fallback(|| async { AppError::NotFound("no such page or endpoint".into()) })
        // The limit answers a request that announces an oversized body at
        // once, without reading it; its plain-text answer becomes the API's
        // JSON error.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .merge(uploads)
        .layer(axum::middleware::map_response(json_payload_too_large))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            keelson_web::metrics::track,
        ))
        .with_state(state)
}

/// Turns the body limit's plain-text 413 into the API's JSON error (a
/// page's own 413, in HTML, stays as it is).
async fn json_payload_too_large(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && plain {
        AppError::PayloadTooLarge.into_response()
    } else {
        response
    }
}

/// Writes ingested samples into the vessel database.
struct DbSink {
    db: Db,
    written: keelson_web::metrics::Counter,
    batches: keelson_web::metrics::Counter,
    failed: keelson_web::metrics::Counter,
}

impl SampleSink for DbSink {
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError> {
        self.db.insert_samples(samples).map_err(|e| {
            self.failed.inc();
            SinkError::new(e.to_string())
        })?;
        self.written.inc_by(samples.len() as u64);
        self.batches.inc();
        Ok(())
    }
}

/// Registers the gauges read at scrape time: the database's size, the sync
/// backlog and the age of the last completed sync.
fn register_scrape_metrics(state: &EdgeState) {
    let m = &state.metrics;
    let db_bytes = m.gauge("database_bytes", "Bytes of the vessel database and its WAL");
    let pending = m.gauge(
        "sync_pending_changes",
        "Local record changes the shore has not acknowledged",
    );
    let pending_bytes = m.gauge(
        "sync_pending_bytes",
        "Bytes of local record changes the shore has not acknowledged",
    );
    let age = m.gauge(
        "sync_last_success_age_seconds",
        "Seconds since the last completed sync session (-1: never)",
    );
    let tags = m.gauge("ingest_tags", "Tags configured for ingest");
    let alarms_listed = m.gauge(
        "alarms_listed",
        "Alarms in the alarm list: active, or returned and unacknowledged",
    );
    let alarms_unacked = m.gauge(
        "alarms_unacknowledged",
        "Alarms in the alarm list nobody has acknowledged",
    );
    let hook_state = state.clone();
    m.on_scrape(move || {
        let s = &hook_state;
        db_bytes.set(i64::try_from(s.db.size_bytes()).unwrap_or(i64::MAX));
        tags.set(s.latest.snapshot().len() as i64);
        match s.alarms.list() {
            Ok(list) => {
                alarms_listed.set(list.len() as i64);
                alarms_unacked.set(
                    list.iter()
                        .filter(|a| a.state != "active_acknowledged")
                        .count() as i64,
                );
            }
            Err(e) => tracing::warn!(error = %e, "reading the alarm list for metrics"),
        }
        match sync_client::status(s) {
            Ok(status) => {
                pending.set(status.records.pending_changes as i64);
                pending_bytes.set(status.records.pending_bytes as i64);
            }
            Err(e) => tracing::warn!(error = %e, "reading the sync backlog for metrics"),
        }
        let last =
            s.db.sync_state(sync_client::RECORDS_LANE)
                .ok()
                .and_then(|st| st.last_success_ms);
        age.set(last.map_or(-1, |ms| (keelson_store::now_ms() - ms).max(0) / 1000));
    });
}

/// A running edge agent.
pub struct RunningEdge {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// The agent's state, for tests and the demo.
    pub state: EdgeState,
    tasks: JoinSet<()>,
    ingest: keelson_ingest::IngestHandle,
    // Held until the agent has stopped, so a restore cannot run under it.
    run_lock: keelson_store::backup::RunLock,
}

impl RunningEdge {
    /// Waits until every task has ended (after the cancel token fired).
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.ingest.join().await;
        drop(self.run_lock);
    }
}

/// The OPC-UA PKI directory inside the data directory: the agent's own
/// certificate and key, and the trusted and rejected server certificates.
pub const OPCUA_PKI_DIR: &str = "opcua-pki";

/// Takes the data directory's run lock (refused when another agent holds
/// it), opens the database, starts ingest, the HTTP server and the sync
/// client.
/// Everything stops when `cancel` fires.
pub async fn start(config: EdgeConfig, cancel: CancellationToken) -> anyhow::Result<RunningEdge> {
    let data_dir = config.storage.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let run_lock =
        keelson_store::backup::RunLock::acquire(&data_dir).context("locking the data directory")?;
    let db = Db::open(&data_dir, Site::Edge).context("opening the vessel database")?;
    let metrics = Metrics::new();

    let tags: Vec<(String, String)> = config
        .ingest
        .tags()
        .map(|(tag, unit)| (tag.to_owned(), unit.to_owned()))
        .collect();
    db.register_tags(&tags).context("registering tags")?;
    let sink = Arc::new(DbSink {
        db: db.clone(),
        written: metrics.counter("samples_written", "Samples written to the database"),
        batches: metrics.counter("ingest_batches_written", "Sample batches written"),
        failed: metrics.counter(
            "ingest_write_failures",
            "Sample batches the database refused",
        ),
    });
    // OPC-UA servers share the agent's own certificate and trust store in
    // the data directory unless the configuration names another place.
    let mut ingest_config = config.ingest.clone();
    ingest_config.set_default_pki_dir(&data_dir.join(OPCUA_PKI_DIR));
    let ingest = keelson_ingest::start(&ingest_config, sink, cancel.child_token())
        .context("starting ingest")?;
    metrics.register_with(|registry| ingest.metrics.register(registry));

    let key = if config.sync.enabled {
        Some(keys::load(&config.sync.key_file).context("loading the vessel key")?)
    } else {
        None
    };
    let sync = sync_client::SyncHandle::new(&metrics);
    let storage = storage::StorageStatus::new(&metrics);
    let alarms =
        alarms::Alarms::restore(db.clone(), &config.alarms).context("restoring the alarm list")?;
    let files = keelson_store::files::FileStore::open(&data_dir.join(attachments::ATTACHMENTS_DIR))
        .context("opening the attachment files")?;
    files
        .remove_temporaries()
        .context("removing unfinished attachment files")?;
    let state = EdgeState {
        db,
        files,
        alarms,
        storage,
        latest: ingest.latest.clone(),
        metrics,
        sync: sync.clone(),
        site: layout::Site {
            title: format!("Keelson · {}", config.vessel.name),
            nav: vec![
                ("/", "Dashboard"),
                ("/alarms", "Alarms"),
                ("/faults", "Faults"),
                ("/faults/new", "Log a fault"),
                ("/equipment", "Equipment"),
                ("/work-orders", "Work orders"),
                ("/plans", "Plans"),
                ("/due", "Due"),
                ("/parts", "Spare parts"),
                ("/sync", "Sync"),
            ],
        },
        config: Arc::new(config),
    };

    register_scrape_metrics(&state);

    let listen = state.config.http.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("binding the ship UI to {listen} (is another program using the port?)")
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut tasks = JoinSet::new();
    let app = router(state.clone());
    let stop = cancel.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "ship UI server failed");
        }
    });
    tasks.spawn(storage::run(
        state.db.clone(),
        state.config.retention.clone(),
        state.storage.clone(),
        cancel.clone(),
    ));
    tasks.spawn(alarms::run(
        state.alarms.clone(),
        state.latest.clone(),
        cancel.clone(),
    ));
    tasks.spawn(plans_api::run_planner(state.clone(), cancel.clone()));
    tasks.spawn(running_hours::run(state.clone(), cancel.clone()));
    if let Some(key) = key {
        let client =
            sync_client::SyncClient::new(state.clone(), key).context("building the sync client")?;
        let stop = cancel.clone();
        tasks.spawn(async move { client.run(stop).await });
    }
    tracing::info!(%addr, vessel = %state.config.vessel.id, "edge agent started");
    Ok(RunningEdge {
        addr,
        state,
        tasks,
        ingest,
        run_lock,
    })
}

/// Adds or updates a user on board; the password must be at least
/// [`keelson_web::auth::MIN_PASSWORD_LEN`] characters.
pub fn add_user(db: &Db, username: &str, role: Role, password: &str) -> Result<(), AppError> {
    keelson_model::validate_username(username)?;
    if password.chars().count() < keelson_web::auth::MIN_PASSWORD_LEN {
        return Err(AppError::BadRequest(format!(
            "password must be at least {} characters",
            keelson_web::auth::MIN_PASSWORD_LEN
        )));
    }
    let hash = keelson_web::auth::hash_password(password)?;
    db.upsert_user(username, &hash, role.as_str())?;
    Ok(())
}
