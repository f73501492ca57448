//! The vessel's side of sync: it always initiates, over HTTP(S), with every
//! request signed by the vessel key.
//!
//! A session states cursors in one round trip, then pushes the records lane
//! in chunks (each made durable and acknowledged by the shore before the
//! cursor moves), then pulls the shore's outbound lane the same way. A
//! dropped link simply ends the session; the next one starts from the last
//! acknowledged chunk, so at most one chunk is sent twice, and re-sent
//! changes are harmless because they are content-addressed.

use crate::EdgeState;
use keelson_records::{IncomingChange, apply_remote};
use keelson_sync::protocol::{self, ChunkAck, PullRequest, SessionRequest, SessionResponse};
use keelson_sync::signing::{VesselKey, sign_request};
use keelson_sync::wire::{self, ChangeEntry, Chunk, Lane};
use keelson_web::metrics::{Counter, Metrics};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The records lane's name in the sync state table.
pub const RECORDS_LANE: &str = "records";

/// Errors of one sync session.
#[derive(Debug, thiserror::Error)]
pub enum SyncClientError {
    /// The shore could not be reached or the link dropped.
    #[error("link: {0}")]
    Link(String),
    /// The shore refused a request.
    #[error("shore refused {path}: {status} {detail}")]
    Refused {
        /// The endpoint.
        path: &'static str,
        /// HTTP status.
        status: u16,
        /// The shore's explanation.
        detail: String,
    },
    /// The shore's answer made no sense.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Local storage failed.
    #[error("local store: {0}")]
    Local(String),
}

/// What one session did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Changes the shore acknowledged in this session.
    pub sent: u64,
    /// Chunks pushed.
    pub chunks_sent: u64,
    /// Changes received from the shore.
    pub received: u64,
}

/// A cheap handle to trigger sync and see whether it is running.
#[derive(Clone)]
pub struct SyncHandle {
    wake: Arc<Notify>,
    running: Arc<AtomicBool>,
    sessions_ok: Counter,
    sessions_failed: Counter,
    bytes_sent: Counter,
    bytes_received: Counter,
}

impl SyncHandle {
    /// A handle with its metrics registered.
    pub fn new(m: &Metrics) -> SyncHandle {
        SyncHandle {
            wake: Arc::new(Notify::new()),
            running: Arc::new(AtomicBool::new(false)),
            sessions_ok: m.counter("sync_sessions_ok", "Sync sessions completed"),
            sessions_failed: m.counter("sync_sessions_failed", "Sync sessions that failed"),
            bytes_sent: m.counter("sync_bytes_sent", "Bytes of sync request bodies sent"),
            bytes_received: m.counter(
                "sync_bytes_received",
                "Bytes of sync response bodies received",
            ),
        }
    }

    /// Asks the sync client to start a session now.
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    /// Whether a session is under way.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// The sync client task.
pub struct SyncClient {
    state: EdgeState,
    key: VesselKey,
    http: reqwest::Client,
    base: String,
}

impl SyncClient {
    /// Builds the client for the configured shore.
    pub fn new(state: EdgeState, key: VesselKey) -> Result<SyncClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(state.config.sync.request_timeout_secs))
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("keelson-edge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base = state.config.sync.shore_url.trim_end_matches('/').to_owned();
        Ok(SyncClient {
            state,
            key,
            http,
            base,
        })
    }

    /// Runs sessions every interval, or at once when triggered, until
    /// `cancel` fires. A failed session is retried at the next interval.
    pub async fn run(self, cancel: CancellationToken) {
        let interval = Duration::from_secs(self.state.config.sync.interval_secs);
        let handle = self.state.sync.clone();
        loop {
            handle.running.store(true, Ordering::Relaxed);
            let outcome = tokio::select! {
                r = self.session() => Some(r),
                () = cancel.cancelled() => None,
            };
            handle.running.store(false, Ordering::Relaxed);
            let Some(outcome) = outcome else { return };
            let error = match &outcome {
                Ok(report) => {
                    handle.sessions_ok.inc();
                    tracing::info!(
                        sent = report.sent,
                        chunks = report.chunks_sent,
                        received = report.received,
                        "sync session done"
                    );
                    None
                }
                Err(e) => {
                    handle.sessions_failed.inc();
                    tracing::warn!(error = %e, "sync session failed; retrying later");
                    Some(e.to_string())
                }
            };
            let db = self.state.db.clone();
            let recorded = tokio::task::spawn_blocking(move || {
                db.record_sync_attempt(RECORDS_LANE, error.as_deref())
            })
            .await;
            if let Ok(Err(e)) = recorded {
                tracing::error!(error = %e, "cannot record the sync outcome");
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {},
                () = handle.wake.notified() => {},
                () = cancel.cancelled() => return,
            }
        }
    }

    /// One full session: cursors, push, pull.
    pub async fn session(&self) -> Result<SyncReport, SyncClientError> {
        let vessel = self.state.config.vessel.id.clone();
        let local = self.local(|db| db.sync_state(RECORDS_LANE)).await?;
        let req = SessionRequest {
            vessel_id: vessel.clone(),
            records_sent: local.sent_acked,
            records_received: local.received,
        };
        let resp: SessionResponse = self.post_json(protocol::SESSION_PATH, &req).await?;
        let mut report = SyncReport::default();

        // Push from what the shore says it holds: after a shore restore that
        // may be behind our own cursor, and resending is harmless.
        let mut from = resp.records_acked;
        if from > local.sent_acked {
            self.local(move |db| db.set_sent_acked(RECORDS_LANE, from))
                .await?;
        }
        let chunk_bytes = self.state.config.sync.chunk_bytes;
        loop {
            let v = vessel.clone();
            let rows = self
                .local(move |db| db.outbound_changes(&v, from, chunk_bytes))
                .await?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            let chunk = Chunk {
                lane: Lane::Records,
                vessel_id: vessel.clone(),
                entries: rows
                    .into_iter()
                    .map(|r| ChangeEntry {
                        seq: r.seq,
                        record_id: r.record_id,
                        change: r.change,
                    })
                    .collect(),
            };
            let n = chunk.entries.len() as u64;
            let body =
                wire::encode_chunk(&chunk).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let ack: ChunkAck =
                serde_json::from_slice(&self.post(protocol::RECORDS_CHUNKS_PATH, body).await?)
                    .map_err(|e| SyncClientError::Protocol(format!("bad chunk ack: {e}")))?;
            if ack.acked_seq < last {
                return Err(SyncClientError::Protocol(format!(
                    "shore acknowledged {} of a chunk ending at {last}",
                    ack.acked_seq
                )));
            }
            self.local(move |db| db.set_sent_acked(RECORDS_LANE, last))
                .await?;
            from = last;
            report.sent += n;
            report.chunks_sent += 1;
        }

        // Pull the shore's outbound lane for this vessel.
        let mut after = local.received;
        while after < resp.records_available {
            let pull = PullRequest {
                lane: Lane::Records,
                after,
                max_bytes: chunk_bytes as u64,
            };
            let body =
                serde_json::to_vec(&pull).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let bytes = self.post(protocol::RECORDS_PULL_PATH, body).await?;
            let chunk = wire::decode_chunk(&bytes, wire::MAX_DECODED_BYTES)
                .map_err(|e| SyncClientError::Protocol(format!("bad chunk from shore: {e}")))?;
            let Some(last) = chunk.entries.last().map(|e| e.seq) else {
                break;
            };
            if chunk.vessel_id != vessel || chunk.entries.first().is_some_and(|e| e.seq <= after) {
                return Err(SyncClientError::Protocol(
                    "shore sent a chunk for another vessel or cursor".into(),
                ));
            }
            let n = chunk.entries.len() as u64;
            let incoming: Vec<IncomingChange> = chunk
                .entries
                .into_iter()
                .map(IncomingChange::from)
                .collect();
            let v = vessel.clone();
            // The cursor moves in the transaction that stores the changes.
            self.local(move |db| {
                apply_remote(db, &v, &incoming, |tx| tx.set_received(RECORDS_LANE, last))
                    .map_err(|e| keelson_store::StoreError::Corrupt(e.to_string()))
            })
            .await?;
            after = last;
            report.received += n;
        }
        Ok(report)
    }

    async fn local<T: Send + 'static>(
        &self,
        f: impl FnOnce(&keelson_store::Db) -> Result<T, keelson_store::StoreError> + Send + 'static,
    ) -> Result<T, SyncClientError> {
        let db = self.state.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| SyncClientError::Local(e.to_string()))?
            .map_err(|e| SyncClientError::Local(e.to_string()))
    }

    async fn post_json<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        req: &Req,
    ) -> Result<Resp, SyncClientError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
        let bytes = self.post(path, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SyncClientError::Protocol(format!("bad answer from {path}: {e}")))
    }

    /// Signs and posts a body; returns the answer's body.
    async fn post(&self, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, SyncClientError> {
        let now = chrono::Utc::now().timestamp();
        let sig = sign_request(
            &self.key,
            &self.state.config.vessel.id,
            "POST",
            path,
            &body,
            now,
        )
        .map_err(|e| SyncClientError::Protocol(e.to_string()))?;
        let mut req = self.http.post(format!("{}{path}", self.base));
        for (name, value) in sig.to_headers() {
            req = req.header(name, value);
        }
        self.state.sync.bytes_sent.inc_by(body.len() as u64);
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| SyncClientError::Link(link_error(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SyncClientError::Link(link_error(&e)))?;
        self.state.sync.bytes_received.inc_by(bytes.len() as u64);
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(SyncClientError::Refused {
                path,
                status: status.as_u16(),
                detail,
            });
        }
        Ok(bytes.to_vec())
    }
}

/// A reqwest error with its causes, on one line.
fn link_error(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The sync status as `GET /api/v1/sync/status` and the sync page show it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    /// Whether sync is configured.
    pub enabled: bool,
    /// The shore's URL.
    pub shore_url: String,
    /// Whether a session is under way.
    pub running: bool,
    /// Last attempt, RFC 3339.
    pub last_attempt: Option<String>,
    /// Last completed session, RFC 3339.
    pub last_success: Option<String>,
    /// The last failed attempt's error, when the last attempt failed.
    pub last_error: Option<String>,
    /// The records lane.
    pub records: LaneStatus,
}

/// One lane's backlog and cursors.
#[derive(Debug, Clone, Serialize)]
pub struct LaneStatus {
    /// Local changes the shore has not acknowledged.
    pub pending_changes: u64,
    /// Their size in bytes, before compression.
    pub pending_bytes: u64,
    /// Highest local change sequence number the shore acknowledged.
    pub sent_acked: u64,
    /// Highest shore sequence number received.
    pub received: u64,
}

/// Reads the sync status from the database.
pub fn status(state: &EdgeState) -> Result<SyncStatus, keelson_store::StoreError> {
    let s = state.db.sync_state(RECORDS_LANE)?;
    let (pending_changes, pending_bytes) = state
        .db
        .outbound_pending(&state.config.vessel.id, s.sent_acked)?;
    let rfc = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
    };
    Ok(SyncStatus {
        enabled: state.config.sync.enabled,
        shore_url: state.config.sync.shore_url.clone(),
        running: state.sync.is_running(),
        last_attempt: rfc(s.last_attempt_ms),
        last_success: rfc(s.last_success_ms),
        last_error: s.last_error,
        records: LaneStatus {
            pending_changes,
            pending_bytes,
            sent_acked: s.sent_acked,
            received: s.received,
        },
    })
}
