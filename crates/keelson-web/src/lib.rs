//! HTTP pieces the ship and shore servers share: the error type every
//! handler returns, authentication (argon2id passwords, session tokens,
//! cookies), the page layout, embedded assets and the metrics registry.
//!
//! Architecture invariant: this crate knows HTTP and HTML, the store only
//! through its user and session tables and the rows its shared views show
//! (sample series, alarm history), and the records layer only through
//! its error type. It knows nothing of sensors,
//! automerge or the sync protocol; every asset it serves is compiled into
//! the binary, so no page ever makes an external request.

pub mod alarms;
pub mod assets;
pub mod attachments;
pub mod auth;
pub mod chart;
pub mod error;
pub mod extract;
pub mod form;
pub mod layout;
pub mod metrics;
pub mod session;
pub mod views;

pub use auth::{CurrentUser, HasDb, PageUser};
pub use error::AppError;
pub use extract::{ApiJson, ApiPath, ApiQuery};

/// Runs blocking work (SQLite, password hashing) off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, AppError>
where
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(format!("blocking task failed: {e}")))?
}
