//! The endpoint vessels sync with (`/sync/v1/...`).
//!
//! Every request is signed with the vessel's Ed25519 key. The shore checks,
//! in this order: the vessel is registered, the signature covers this
//! method, path and body, the timestamp is within the allowed skew, and the
//! nonce was never used before (nonces are kept in the database, so a
//! replay is refused even after a restart). Only then is the body decoded.

use crate::ShoreState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keelson_records::{IncomingChange, RecordError, Sender, apply_remote};
use keelson_store::block::Rollup;
use keelson_store::{AlarmEventRow, NonceOutcome, Resolution, VesselRow};
use keelson_sync::SyncError;
use keelson_sync::protocol::{
    self, ChunkAck, FileAck, PullRequest, SessionRequest, SessionResponse,
};
use keelson_sync::signing::{RequestSignature, verify_request};
use keelson_sync::wire::{self, Lane, RollupWidth};
use keelson_web::metrics::Counter;
use keelson_web::metrics::Metrics;
use keelson_web::{AppError, blocking};

/// Counters of the sync endpoint.
#[derive(Clone, Debug)]
pub struct SyncMetrics {
    /// Changes applied from vessels.
    pub changes_applied: Counter,
    /// Sync requests refused (bad signature, replay, malformed, foreign records).
    pub requests_refused: Counter,
    /// Bytes of sync request bodies received.
    pub bytes_received: Counter,
    /// Bytes of chunks sent to vessels.
    pub bytes_sent: Counter,
    /// Chunks that repeated data already acknowledged (a resend after a
    /// lost acknowledgement).
    pub chunks_resent: Counter,
    /// Bytes of chunks that brought new data.
    pub chunk_bytes_new: Counter,
    /// Alarm history entries stored from vessels (re-sent ones not counted).
    pub alarm_events_stored: Counter,
    /// Sensor rollups stored from vessels.
    pub rollups_stored: Counter,
    /// Attachment files stored whole from vessels.
    pub files_stored: Counter,
}

impl SyncMetrics {
    /// Registers the counters.
    pub fn register(m: &Metrics) -> SyncMetrics {
        SyncMetrics {
            changes_applied: m.counter(
                "sync_changes_applied",
                "Record changes applied from vessels",
            ),
            requests_refused: m.counter("sync_requests_refused", "Sync requests refused"),
            bytes_received: m.counter(
                "sync_bytes_received",
                "Bytes of sync request bodies received",
            ),
            bytes_sent: m.counter("sync_bytes_sent", "Bytes of sync chunks sent to vessels"),
            chunks_resent: m.counter(
                "sync_chunks_resent",
                "Vessel chunks that repeated data already acknowledged",
            ),
            chunk_bytes_new: m.counter(
                "sync_chunk_bytes_new",
                "Bytes of vessel chunks that brought new data",
            ),
            alarm_events_stored: m.counter(
                "sync_alarm_events_stored",
                "Alarm history entries stored from vessels",
            ),
            rollups_stored: m.counter("sync_rollups_stored", "Sensor rollups stored from vessels"),
            files_stored: m.counter(
                "sync_files_stored",
                "Attachment files verified and stored whole from vessels",
            ),
        }
    }
}

/// The sync routes, with the body limit from the configuration.
pub fn router(state: &ShoreState) -> Router<ShoreState> {
    Router::new()
        .route(protocol::SESSION_PATH, post(session))
        .route(protocol::RECORDS_CHUNKS_PATH, post(records_chunk))
        .route(protocol::RECORDS_PULL_PATH, post(records_pull))
        .route(protocol::ALARMS_CHUNKS_PATH, post(alarms_chunk))
        .route(protocol::ROLLUPS_CHUNKS_PATH, post(rollups_chunk))
        .route(protocol::FILES_CHUNKS_PATH, post(files_chunk))
        .layer(DefaultBodyLimit::max(state.config.sync.max_request_bytes))
}

/// Checks a request's signature and nonce; returns the vessel.
async fn authenticate(
    state: &ShoreState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<VesselRow, AppError> {
    state.sync_metrics.bytes_received.inc_by(body.len() as u64);
    let refuse = |detail: String| {
        state.sync_metrics.requests_refused.inc();
        tracing::warn!(path = %uri.path(), reason = %detail, "sync request refused");
        AppError::Unauthenticated(detail)
    };
    let sig = RequestSignature::from_header_lookup(|name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    })
    .map_err(|e| refuse(format!("missing or malformed signature headers: {e}")))?;
    let db = state.db.clone();
    let vessel_id = sig.vessel_id.clone();
    let vessel = blocking(move || Ok(db.vessel(&vessel_id)?))
        .await?
        .ok_or_else(|| refuse(format!("vessel `{}` is not registered", sig.vessel_id)))?;
    let now = chrono::Utc::now().timestamp();
    let skew = state.config.sync.max_clock_skew_secs;
    verify_request(
        &vessel.public_key,
        &sig,
        method.as_str(),
        uri.path(),
        body,
        now,
        skew,
    )
    .map_err(|e| refuse(format!("signature refused: {e}")))?;
    let db = state.db.clone();
    let expires = (sig.timestamp + skew + 1) * 1000;
    let (vid, nonce) = (vessel.id.clone(), sig.nonce.clone());
    let outcome = blocking(move || Ok(db.use_nonce(&vid, &nonce, expires)?)).await?;
    if outcome == NonceOutcome::Replayed {
        return Err(refuse(
            "replayed request: this nonce was used before".into(),
        ));
    }
    Ok(vessel)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("malformed request body: {e}")))
}

async fn session(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<SessionResponse>, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: SessionRequest = json_body(&body)?;
    if req.vessel_id != vessel.id {
        return Err(AppError::Forbidden(
            "the body names another vessel than the signature".into(),
        ));
    }
    let db = state.db.clone();
    let id = vessel.id.clone();
    let (pending, eta, epoch) = (req.pending_bytes, req.eta_secs, req.epoch.clone());
    let alarms_pending = req.pending_alarm_events;
    let (available, alarms_held, restored, shore_epoch) = blocking(move || {
        db.touch_vessel_sync(&id)?;
        db.set_vessel_progress(&id, pending, eta, alarms_pending)?;
        // A peer too old to send its epoch sends none; it is taken as is.
        let restored = !epoch.is_empty() && db.note_vessel_epoch(&id, &epoch)?;
        Ok((
            db.last_outbound_seq(&id)?,
            db.vessel_alarms_held(&id)?,
            restored,
            db.epoch()?,
        ))
    })
    .await?;
    let records_acked = if restored {
        tracing::warn!(
            vessel = %vessel.id,
            acked_before = vessel.records_acked,
            "vessel database restored from a backup; it sends its changes again"
        );
        0
    } else {
        vessel.records_acked
    };
    tracing::info!(
        vessel = %vessel.id,
        vessel_sent = req.records_sent,
        shore_acked = vessel.records_acked,
        "sync session opened"
    );
    Ok(axum::Json(SessionResponse {
        records_acked,
        records_available: available,
        alarms_held,
        epoch: shore_epoch,
    }))
}

async fn records_chunk(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<ChunkAck>, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let chunk = match wire::decode_chunk(&body, wire::MAX_DECODED_BYTES) {
        Ok(c) => c,
        Err(e) => {
            return Err(
                quarantine(&state, &vessel.id, format!("undecodable chunk: {e}"), &body).await,
            );
        }
    };
    if chunk.vessel_id != vessel.id || chunk.lane != Lane::Records {
        let why = format!(
            "chunk for vessel `{}` lane {:?} sent by `{}`",
            chunk.vessel_id, chunk.lane, vessel.id
        );
        return Err(quarantine(&state, &vessel.id, why, &body).await);
    }
    let last = chunk.entries.last().map_or(0, |e| e.seq);
    let first = chunk.entries.first().map_or(0, |e| e.seq);
    if first <= vessel.records_acked {
        state.sync_metrics.chunks_resent.inc();
    } else {
        state.sync_metrics.chunk_bytes_new.inc_by(body.len() as u64);
    }
    let raw_bytes: u64 = chunk.entries.iter().map(|e| e.change.len() as u64).sum();
    let incoming: Vec<IncomingChange> = chunk
        .entries
        .into_iter()
        .map(IncomingChange::from)
        .collect();
    let db = state.db.clone();
    let vid = vessel.id.clone();
    let result = blocking(move || {
        let mut acked = 0;
        let outcome = apply_remote(&db, &vid, Sender::Vessel, &incoming, |tx| {
            acked = tx.set_vessel_acked(&vid, last)?;
            Ok(())
        });
        Ok(outcome.map(|o| (o, acked)))
    })
    .await?;
    match result {
        Ok((outcome, acked)) => {
            let (db, vid) = (state.db.clone(), vessel.id.clone());
            blocking(move || Ok(db.reduce_vessel_pending(&vid, raw_bytes, 0)?)).await?;
            state
                .sync_metrics
                .changes_applied
                .inc_by(outcome.applied as u64);
            tracing::info!(
                vessel = %vessel.id,
                applied = outcome.applied,
                duplicates = outcome.duplicates,
                acked,
                "records chunk applied"
            );
            Ok(axum::Json(ChunkAck {
                lane: Lane::Records,
                acked_seq: acked,
            }))
        }
        Err(RecordError::Store(e)) => Err(e.into()),
        Err(e) => Err(quarantine(&state, &vessel.id, format!("refused batch: {e}"), &body).await),
    }
}

/// Stores a chunk of a vessel's alarm history and acknowledges it. The
/// entries and the vessel's active alarms they move are written in one
/// transaction before the answer; an entry re-sent after a lost
/// acknowledgement is recognised and stored once.
async fn alarms_chunk(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<ChunkAck>, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let chunk = decode_own(
        &state,
        &vessel.id,
        &body,
        "alarms",
        wire::decode_alarm_chunk,
        |c| &c.vessel_id,
    )
    .await?;
    let last = chunk.last_seq().unwrap_or(0);
    let events: Vec<AlarmEventRow> = chunk
        .entries
        .into_iter()
        .map(|e| AlarmEventRow {
            // The decoder refused seqs and alarm ids beyond SQLite's
            // integers, so these conversions never fall back.
            id: i64::try_from(e.seq).unwrap_or(i64::MAX),
            alarm_id: e.alarm_id.map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
            tag: e.tag,
            kind: e.kind,
            event: e.event,
            at_ms: e.at_ms,
            value: e.value,
            by: e.by,
            fault_id: e.fault_id,
        })
        .collect();
    let n = events.len() as u64;
    let raw_bytes: u64 = events.iter().map(|e| e.wire_size() as u64).sum();
    let (db, vid) = (state.db.clone(), vessel.id.clone());
    let stored = blocking(move || {
        let stored = db.put_vessel_alarm_events(&vid, &events)?;
        db.reduce_vessel_pending(&vid, raw_bytes, n)?;
        Ok(stored)
    })
    .await?;
    if stored < n {
        state.sync_metrics.chunks_resent.inc();
    } else {
        state.sync_metrics.chunk_bytes_new.inc_by(body.len() as u64);
    }
    state.sync_metrics.alarm_events_stored.inc_by(stored);
    tracing::info!(vessel = %vessel.id, entries = n, stored, acked = last, "alarm history stored");
    Ok(axum::Json(ChunkAck {
        lane: Lane::Alarms,
        acked_seq: last,
    }))
}

/// Stores a chunk of a vessel's sensor rollups and acknowledges it. A
/// rollup re-sent after a lost acknowledgement replaces itself.
async fn rollups_chunk(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<ChunkAck>, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let chunk = decode_own(
        &state,
        &vessel.id,
        &body,
        "rollups",
        wire::decode_rollup_chunk,
        |c| &c.vessel_id,
    )
    .await?;
    let last = chunk.last_seq().unwrap_or(0);
    let width = match chunk.width {
        RollupWidth::Minute => Resolution::Minute,
        RollupWidth::Hour => Resolution::Hour,
    };
    let rollups: Vec<(String, Rollup)> = chunk
        .entries
        .into_iter()
        .map(|e| {
            (
                e.tag,
                Rollup {
                    start_ms: e.start_ms,
                    min: e.min,
                    max: e.max,
                    mean: e.mean,
                    last: e.last,
                    count: e.count,
                    good: e.good,
                },
            )
        })
        .collect();
    let n = rollups.len();
    let (db, vid) = (state.db.clone(), vessel.id.clone());
    blocking(move || Ok(db.put_vessel_rollups(&vid, width, &rollups)?)).await?;
    state.sync_metrics.rollups_stored.inc_by(n as u64);
    tracing::debug!(vessel = %vessel.id, width = chunk.width.as_str(), rollups = n, "rollups stored");
    Ok(axum::Json(ChunkAck {
        lane: Lane::Rollups,
        acked_seq: last,
    }))
}

/// Takes a run of an attachment file and says how much of the file the
/// shore holds (see [`crate::files::receive`]).
async fn files_chunk(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<FileAck>, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let chunk = decode_own(
        &state,
        &vessel.id,
        &body,
        "files",
        wire::decode_file_chunk,
        |c| &c.vessel_id,
    )
    .await?;
    let ack = blocking(move || crate::files::receive(&state, &chunk)).await?;
    Ok(axum::Json(ack))
}

/// Decodes a chunk of the `lane` lane sent by `vessel_id`. A chunk that
/// does not decode, or names another vessel, is quarantined and refused.
async fn decode_own<T>(
    state: &ShoreState,
    vessel_id: &str,
    body: &Bytes,
    lane: &str,
    decode: impl FnOnce(&[u8], usize) -> Result<T, SyncError>,
    named: impl FnOnce(&T) -> &String,
) -> Result<T, AppError> {
    let chunk = match decode(body, wire::MAX_DECODED_BYTES) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("undecodable {lane} chunk: {e}");
            return Err(quarantine(state, vessel_id, why, body).await);
        }
    };
    let named = named(&chunk);
    if named != vessel_id {
        let why = format!("{lane} chunk for vessel `{named}` sent by `{vessel_id}`");
        return Err(quarantine(state, vessel_id, why, body).await);
    }
    Ok(chunk)
}

/// Keeps a refused batch for inspection and answers 422-style as a 400
/// (or 403 for changes to another vessel's records).
async fn quarantine(state: &ShoreState, vessel_id: &str, reason: String, body: &Bytes) -> AppError {
    state.sync_metrics.requests_refused.inc();
    tracing::warn!(vessel = %vessel_id, reason = %reason, bytes = body.len(), "sync batch quarantined");
    let db = state.db.clone();
    let (vid, why, payload) = (vessel_id.to_owned(), reason.clone(), body.to_vec());
    if let Err(e) = blocking(move || Ok(db.quarantine(&vid, &why, &payload)?)).await {
        return e;
    }
    if reason.contains("belongs to vessel")
        || reason.contains("sent by")
        || reason.contains(" may not ")
    {
        AppError::Forbidden(reason)
    } else {
        AppError::BadRequest(reason)
    }
}

async fn records_pull(
    State(state): State<ShoreState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let vessel = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: PullRequest = json_body(&body)?;
    if req.lane != Lane::Records {
        return Err(AppError::BadRequest(
            "only the records lane can be pulled".into(),
        ));
    }
    let max_bytes = (req.max_bytes as usize).clamp(1024, wire::MAX_CHUNK_BYTES);
    let db = state.db.clone();
    let vid = vessel.id.clone();
    let rows = blocking(move || Ok(db.outbound_changes(&vid, req.after, max_bytes)?)).await?;
    let chunk = keelson_records::records_chunk(&vessel.id, rows);
    let bytes = wire::encode_chunk(&chunk).map_err(|e: SyncError| AppError::internal(e))?;
    state.sync_metrics.bytes_sent.inc_by(bytes.len() as u64);
    Ok(([(CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
