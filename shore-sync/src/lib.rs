//! The Keelson shore: the endpoint vessels sync with, and the shore
//! office's UI and REST API.
//!
//! Architecture invariant: the shore never dials a vessel; everything it
//! sends back (comments, approvals, planned work) waits in the vessel's
//! outbound lane until the vessel pulls it. Every incoming change is decoded
//! and checked before it is applied, and a batch is applied whole or not at
//! all.

pub mod api;
pub mod config;
pub mod files;
pub mod sync_api;
pub mod tls;
pub mod ui;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use keelson_model::ShoreRole;
use keelson_store::{Db, Site};
use keelson_web::metrics::Metrics;
use keelson_web::{AppError, CurrentUser, HasDb, layout};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_CONFIG, ShoreConfig};

/// Shared state of the shore's handlers.
#[derive(Clone)]
pub struct ShoreState {
    /// The fleet database.
    pub db: Db,
    /// The configuration in force.
    pub config: Arc<ShoreConfig>,
    /// The metrics registry.
    pub metrics: Metrics,
    /// Sync counters.
    pub sync_metrics: sync_api::SyncMetrics,
    /// The page shell's settings.
    pub site: layout::Site,
}

impl HasDb for ShoreState {
    fn db(&self) -> &Db {
        &self.db
    }
}

impl FromRef<ShoreState> for Metrics {
    fn from_ref(s: &ShoreState) -> Metrics {
        s.metrics.clone()
    }
}

impl ShoreState {
    /// Opens the database and builds the state.
    pub fn open(config: ShoreConfig) -> Result<ShoreState, keelson_store::StoreError> {
        std::fs::create_dir_all(&config.storage.data_dir).map_err(|e| {
            keelson_store::StoreError::Corrupt(format!(
                "cannot create data directory {}: {e}",
                config.storage.data_dir.display()
            ))
        })?;
        let db = Db::open(&config.storage.data_dir, Site::Shore)?;
        let metrics = Metrics::new();
        let sync_metrics = sync_api::SyncMetrics::register(&metrics);
        register_scrape_metrics(&metrics, &db);
        Ok(ShoreState {
            db,
            config: Arc::new(config),
            metrics,
            sync_metrics,
            site: layout::Site {
                title: "Keelson Shore".into(),
                nav: vec![("/", "Fleet"), ("/quarantine", "Quarantine")],
            },
        })
    }
}

/// Registers the gauges read at scrape time: the database's size and, per
/// vessel, the age of its last sync and its quarantined batches.
fn register_scrape_metrics(metrics: &Metrics, db: &Db) {
    let db_bytes = metrics.gauge("database_bytes", "Bytes of the shore database and its WAL");
    let vessels = metrics.gauge("vessels_registered", "Vessels registered at this shore");
    let age = metrics.gauge_family(
        "vessel_last_sync_age_seconds",
        "Seconds since each vessel last synced (-1: never)",
    );
    let quarantined = metrics.gauge_family(
        "vessel_quarantined_batches",
        "Sync batches refused and kept in quarantine, per vessel",
    );
    let db = db.clone();
    metrics.on_scrape(move || {
        db_bytes.set(i64::try_from(db.size_bytes()).unwrap_or(i64::MAX));
        let rows = match db.vessels(None) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading vessels for metrics");
                return;
            }
        };
        vessels.set(rows.len() as i64);
        let now = keelson_store::now_ms();
        for v in rows {
            let labels = vec![("vessel".to_owned(), v.id.clone())];
            age.get_or_create(&labels)
                .set(v.last_sync_ms.map_or(-1, |ms| (now - ms).max(0) / 1000));
            if let Ok(n) = db.quarantine_count(&v.id) {
                quarantined.get_or_create(&labels).set(n as i64);
            }
        }
    });
}

/// The role of an authenticated shore user.
pub fn role_of(user: &CurrentUser) -> Result<ShoreRole, AppError> {
    user.role
        .parse()
        .map_err(|_| AppError::Forbidden(format!("role `{}` is not a shore role", user.role)))
}

/// Every route of the shore, testable without a socket.
pub fn router(state: ShoreState) -> Router {
    Router::new()
        .merge(sync_api::router(&state))
        .merge(api::router())
        .merge(files::router())
        .merge(ui::router())
        .merge(keelson_web::assets::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(keelson_web::metrics::handler))
        .fallback(|| async { AppError::NotFound("no such page or endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            keelson_web::metrics::track,
        ))
        .with_state(state)
}

/// Serves the shore on `listener` until `cancel` fires, holding the data
/// directory's run lock meanwhile (so `keelson-shore restore` refuses to
/// run); fails at once when another shore holds it. With a certificate in
/// `[http]` it speaks HTTPS, otherwise plain HTTP; a certificate or key
/// that cannot be used fails it at once too, naming the file.
pub async fn serve(
    state: ShoreState,
    listener: TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let tls = tls::server_config(&state.config.http).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{}`: {e}", e.key()),
        )
    })?;
    // Held while serving, so a restore cannot run under the shore.
    let _run_lock = keelson_store::backup::RunLock::acquire(&state.config.storage.data_dir)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::WouldBlock, e.to_string()))?;
    let app = router(state);
    match tls {
        Some(config) => serve_on(tls::TlsListener::new(listener, config), app, cancel).await,
        None => serve_on(listener, app, cancel).await,
    }
}

/// Serves `app` on any listener until `cancel` fires, letting requests
/// under way finish.
async fn serve_on<L>(listener: L, app: Router, cancel: CancellationToken) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

/// Adds or updates a shore user in organization `org`; the password must
/// be at least [`keelson_web::auth::MIN_PASSWORD_LEN`] characters.
pub fn add_user(
    db: &Db,
    username: &str,
    role: ShoreRole,
    password: &str,
    org: &str,
) -> Result<(), AppError> {
    keelson_model::validate_username(username)?;
    if password.chars().count() < keelson_web::auth::MIN_PASSWORD_LEN {
        return Err(AppError::BadRequest(format!(
            "password must be at least {} characters",
            keelson_web::auth::MIN_PASSWORD_LEN
        )));
    }
    if !db.orgs()?.iter().any(|o| o.id == org) {
        return Err(AppError::BadRequest(format!(
            "no organization `{org}`; add it with `keelson-shore org add`"
        )));
    }
    let hash = keelson_web::auth::hash_password(password)?;
    db.upsert_user(username, &hash, role.as_str())?;
    db.set_user_org(username, org)?;
    Ok(())
}

/// Adds an organization, or renames one.
pub fn add_org(db: &Db, id: &str, name: &str) -> Result<(), AppError> {
    keelson_model::validate_vessel_id(id).map_err(|_| {
        AppError::BadRequest("organization ids are 1-64 characters of a-z, 0-9, '-' or '_'".into())
    })?;
    if name.trim().is_empty() {
        return Err(AppError::BadRequest(
            "organization name must not be empty".into(),
        ));
    }
    db.upsert_org(id, name.trim())?;
    Ok(())
}

/// Registers a vessel in organization `org` (or rotates its key, or moves
/// it) after checking the id and key.
pub fn add_vessel(
    db: &Db,
    id: &str,
    name: &str,
    public_key_b64: &str,
    org: &str,
) -> Result<(), AppError> {
    keelson_model::validate_vessel_id(id)?;
    if name.trim().is_empty() {
        return Err(AppError::BadRequest("vessel name must not be empty".into()));
    }
    keelson_sync::signing::check_public_key(public_key_b64)
        .map_err(|e| AppError::BadRequest(format!("public key: {e}")))?;
    if !db.orgs()?.iter().any(|o| o.id == org) {
        return Err(AppError::BadRequest(format!(
            "no organization `{org}`; add it with `keelson-shore org add`"
        )));
    }
    db.upsert_vessel(id, name.trim(), public_key_b64)?;
    db.set_vessel_org(id, org)?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
