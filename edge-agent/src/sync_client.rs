//! The vessel's side of sync: it always initiates, over HTTP(S), with every
//! request signed by the vessel key.
//!
//! A session states cursors in one round trip, then pushes the records lane
//! in chunks (each made durable and acknowledged by the shore before the
//! cursor moves), then pulls the shore's outbound lane the same way, then
//! pushes the alarms lane (the alarm history, from its own cursor), then
//! pushes the rollups lane: hourly rollups always, 1-minute ones when
//! `retention.minute_rollups_synced` is set and less than half the day's
//! budget is spent, then pushes the files lane: the bytes of attachment
//! files, whose metadata went with the records, in runs the shore makes
//! durable and acknowledges, resuming from the shore's count. A
//! dropped link simply ends the session; the next one starts from the last
//! acknowledged chunk, so at most one chunk is sent twice, and re-sent
//! changes are harmless because they are content-addressed.

use crate::EdgeState;
use keelson_records::{IncomingChange, Sender, apply_remote, records_chunk};
use keelson_store::{AlarmEventRow, Resolution};
use keelson_sync::protocol::{
    self, ChunkAck, FileAck, PullRequest, SessionRequest, SessionResponse,
};
use keelson_sync::signing::{VesselKey, sign_request};
use keelson_sync::wire::{
    self, AlarmChunk, AlarmEntry, FileChunk, Lane, RollupChunk, RollupEntry, RollupWidth,
};
use keelson_web::metrics::{Counter, Metrics};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The records lane's name in the sync state table.
pub const RECORDS_LANE: &str = "records";
/// The alarms lane's name in the sync state table.
pub const ALARMS_LANE: &str = "alarms";

/// Errors of one sync session.
#[derive(Debug, thiserror::Error)]
pub enum SyncClientError {
    /// The shore could not be reached or the link dropped.
    #[error("link: {0}")]
    Link(String),
    /// The shore's HTTPS certificate was refused; the text says why in
    /// words fleet IT can act on.
    #[error("shore certificate refused: {0}")]
    Certificate(String),
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

/// Why the sync client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configured trust in the shore's certificate cannot be set up.
    #[error(transparent)]
    Trust(#[from] crate::shore_tls::TrustError),
    /// The HTTP client cannot be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
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
    /// Alarm history entries the shore acknowledged in this session.
    pub alarm_events_sent: u64,
    /// Sensor rollups the shore acknowledged in this session.
    pub rollups_sent: u64,
    /// Attachment files the shore stored whole in this session.
    pub files_sent: u64,
    /// Bytes of attachment files the shore acknowledged in this session.
    pub file_bytes_sent: u64,
    /// Bytes moved over the link, both ways.
    pub link_bytes: u64,
    /// Set when the session stopped early because a byte budget was reached.
    pub budget_reached: Option<&'static str>,
}

/// What the client has measured of the link, to size chunks and estimate
/// how long the backlog takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkEstimate {
    /// Round-trip time, seconds, from the last session request.
    pub rtt_secs: Option<f64>,
    /// Wire throughput while sending, bytes per second (moving average).
    pub rate: Option<f64>,
    /// Compressed size over raw size of recent chunks (moving average).
    pub ratio: Option<f64>,
    /// A ceiling on the raw chunk size after chunks were cut by the link:
    /// halved on every cut, doubled on every success, so a link that drops
    /// often still gets whole chunks through.
    pub cap: Option<usize>,
}

/// The first retry after a failed session.
const RETRY_FIRST: Duration = Duration::from_secs(2);

/// Largest alarms chunk before compression: about 2,500 history entries,
/// which compress many-fold since few alarms repeat their names.
const MAX_ALARM_CHUNK_RAW: usize = 128 * 1024;
/// Largest rollups chunk before compression: about 3,500 rollups.
const MAX_ROLLUP_CHUNK_RAW: usize = 200 * 1024;
/// Largest run of a file in one chunk. Photos hardly compress, so a run
/// must fit the wire's chunk limit as it is.
const MAX_FILE_CHUNK_RAW: usize = 192 * 1024;
/// Smallest run of a file worth a request of its own, unless it is the
/// file's last.
const MIN_FILE_RUN: usize = 1024;
/// Files looked at per session; the rest wait for the next one.
const FILES_PER_SESSION: usize = 1000;
/// Smallest chunk the client sends, before compression.
const MIN_CHUNK_RAW: usize = 4 * 1024;
/// Largest chunk before compression; the receiver accepts 4 MiB decoded.
const MAX_CHUNK_RAW: usize = 3 * 1024 * 1024;
/// A chunk should keep the link busy for this long, or six round trips if
/// that is longer, so the round trip's idle time is a small share.
const CHUNK_SECS: f64 = 2.0;

impl LinkEstimate {
    fn observe_cut(&mut self, raw: usize) {
        self.cap = Some((raw / 2).max(MIN_CHUNK_RAW));
    }

    fn observe_chunk(&mut self, wire: usize, raw: usize, elapsed: Duration) {
        if let Some(cap) = self.cap {
            self.cap = (cap < MAX_CHUNK_RAW / 2).then_some(cap * 2);
        }
        let rtt = self.rtt_secs.unwrap_or(0.0);
        let busy = (elapsed.as_secs_f64() - rtt).max(0.02);
        let rate = wire as f64 / busy;
        self.rate = Some(match self.rate {
            Some(r) => 0.7 * r + 0.3 * rate,
            None => rate,
        });
        if raw > 0 {
            let ratio = wire as f64 / raw as f64;
            self.ratio = Some(match self.ratio {
                Some(r) => 0.7 * r + 0.3 * ratio,
                None => ratio,
            });
        }
    }

    /// The next chunk's size before compression.
    fn chunk_raw(&self, initial: usize) -> usize {
        let wanted = match (self.rate, self.ratio) {
            (Some(rate), Some(ratio)) => {
                let secs = CHUNK_SECS.max(6.0 * self.rtt_secs.unwrap_or(0.0));
                let wire_target = (rate * secs).min(wire::MAX_CHUNK_BYTES as f64 * 0.9);
                ((wire_target / ratio.max(0.01)) as usize).clamp(MIN_CHUNK_RAW, MAX_CHUNK_RAW)
            }
            _ => initial,
        };
        self.cap.map_or(wanted, |cap| wanted.min(cap))
    }

    /// Seconds to send `raw_bytes` at the measured rate, if measured.
    pub fn eta_secs(&self, raw_bytes: u64) -> Option<u64> {
        if raw_bytes == 0 {
            return Some(0);
        }
        let rate = self.rate?;
        let ratio = self.ratio.unwrap_or(0.5);
        Some((raw_bytes as f64 * ratio / rate.max(1.0)).ceil() as u64)
    }
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
    estimate: Arc<Mutex<LinkEstimate>>,
    /// When the current or last session started (ms since the epoch; 0 for
    /// never), so a caller can tell a session that began after its trigger.
    started_ms: Arc<AtomicI64>,
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
            estimate: Arc::new(Mutex::new(LinkEstimate::default())),
            started_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// What the client has measured of the link so far.
    pub fn estimate(&self) -> LinkEstimate {
        self.estimate.lock().map(|e| *e).unwrap_or_default()
    }

    fn update_estimate(&self, f: impl FnOnce(&mut LinkEstimate)) {
        if let Ok(mut e) = self.estimate.lock() {
            f(&mut e);
        }
    }

    /// Asks the sync client to start a session now.
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    /// Whether a session is under way.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
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
    /// Builds the client for the configured shore, trusting its
    /// certificate as `[sync]` says (see [`crate::shore_tls`]).
    pub fn new(state: EdgeState, key: VesselKey) -> Result<SyncClient, SetupError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(state.config.sync.request_timeout_secs))
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("keelson-edge/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = crate::shore_tls::client_config(&state.config.sync)? {
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder.build()?;
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
        // After a failure the next attempt comes sooner than the interval,
        // backing off from a few seconds, so a short outage costs little
        // time and a long one few attempts.
        let mut retry = RETRY_FIRST;
        loop {
            // Running is set before the start time, and status reads them in
            // the other order, so a reader who sees this session's start also
            // sees it running until it ends.
            handle.running.store(true, Ordering::SeqCst);
            handle
                .started_ms
                .store(chrono::Utc::now().timestamp_millis(), Ordering::SeqCst);
            let outcome = tokio::select! {
                r = self.session() => Some(r),
                () = cancel.cancelled() => None,
            };
            let Some(outcome) = outcome else {
                handle.running.store(false, Ordering::SeqCst);
                return;
            };
            let wait = if outcome.is_ok() {
                retry = RETRY_FIRST;
                interval
            } else {
                let wait = retry.min(interval);
                retry = (retry * 2).min(interval);
                wait
            };
            let error = match &outcome {
                Ok(report) => {
                    handle.sessions_ok.inc();
                    if let Some(which) = report.budget_reached {
                        tracing::info!(
                            budget = which,
                            "sync stopped at the byte budget; the rest waits"
                        );
                    }
                    tracing::info!(
                        sent = report.sent,
                        chunks = report.chunks_sent,
                        received = report.received,
                        alarm_events = report.alarm_events_sent,
                        rollups = report.rollups_sent,
                        files = report.files_sent,
                        file_bytes = report.file_bytes_sent,
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
            // The session counts as running until its outcome is recorded,
            // so whoever sees it finished also sees how it ended.
            handle.running.store(false, Ordering::SeqCst);
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = handle.wake.notified() => {},
                () = cancel.cancelled() => return,
            }
        }
    }

    /// One full session: cursors, push, pull. It stops early, without an
    /// error, when the daily budget or the session cap is reached.
    pub async fn session(&self) -> Result<SyncReport, SyncClientError> {
        let vessel = self.state.config.vessel.id.clone();
        let cfg = &self.state.config.sync;
        let local = self.local(|db| db.sync_state(RECORDS_LANE)).await?;
        let v = vessel.clone();
        let sent_acked = local.sent_acked;
        let (_, record_bytes) = self
            .local(move |db| db.outbound_pending(&v, sent_acked))
            .await?;
        let v = vessel.clone();
        let (_, file_bytes) = self.local(move |db| db.pending_file_totals(&v)).await?;
        let (alarm_events, alarm_bytes) = self
            .local(|db| db.alarm_events_pending(db.sync_state(ALARMS_LANE)?.sent_acked))
            .await?;
        let pending_bytes = record_bytes + alarm_bytes + file_bytes;
        let epoch = self.local(|db| db.epoch()).await?;
        let req = SessionRequest {
            vessel_id: vessel.clone(),
            records_sent: local.sent_acked,
            records_received: local.received,
            pending_bytes,
            pending_alarm_events: alarm_events,
            eta_secs: self.state.sync.estimate().eta_secs(pending_bytes),
            epoch,
        };
        let mut budget = Budget::new(self, cfg.daily_budget_bytes, cfg.session_cap_bytes).await?;
        let started = Instant::now();
        let resp: SessionResponse = self
            .post_json(protocol::SESSION_PATH, &req, &mut budget)
            .await?;
        let rtt = started.elapsed().as_secs_f64();
        self.state.sync.update_estimate(|e| {
            e.rtt_secs = Some(match e.rtt_secs {
                Some(r) => 0.7 * r + 0.3 * rtt,
                None => rtt,
            })
        });
        let mut report = SyncReport::default();
        // A shore restored from a backup numbers its outbound changes again;
        // then the lane is pulled from the start (re-applied changes are
        // harmless).
        let mut received = local.received;
        if !resp.epoch.is_empty() {
            let epoch = resp.epoch.clone();
            if self
                .local(move |db| db.note_shore_epoch(RECORDS_LANE, &epoch))
                .await?
            {
                tracing::warn!(
                    received_before = received,
                    "shore database restored from a backup; pulling its changes again"
                );
                received = 0;
            }
        }

        // Push from what the shore says it holds: after a shore restore that
        // may be behind our own cursor, and resending is harmless.
        let mut from = resp.records_acked;
        if from > local.sent_acked {
            self.local(move |db| db.set_sent_acked(RECORDS_LANE, from))
                .await?;
        }
        loop {
            let v = vessel.clone();
            let target = self.state.sync.estimate().chunk_raw(cfg.chunk_bytes);
            let rows = self
                .local(move |db| db.outbound_changes(&v, from, target))
                .await?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                break;
            };
            let raw: usize = rows.iter().map(|r| r.change.len()).sum();
            let chunk = records_chunk(&vessel, rows);
            let n = chunk.entries.len() as u64;
            let body =
                wire::encode_chunk(&chunk).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let sent = self
                .push_chunk(
                    protocol::RECORDS_CHUNKS_PATH,
                    Lane::Records,
                    (body, Some(raw), last),
                    &mut budget,
                    &mut report,
                )
                .await?;
            if !sent {
                break;
            }
            self.local(move |db| db.set_sent_acked(RECORDS_LANE, last))
                .await?;
            from = last;
            report.sent += n;
        }

        // Pull the shore's outbound lane for this vessel.
        let mut after = received;
        while report.budget_reached.is_none() && after < resp.records_available {
            let pull = PullRequest {
                lane: Lane::Records,
                after,
                max_bytes: wire::MAX_CHUNK_BYTES as u64,
            };
            let body =
                serde_json::to_vec(&pull).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let bytes = self
                .post(protocol::RECORDS_PULL_PATH, body, &mut budget)
                .await?;
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
                apply_remote(db, &v, Sender::Shore, &incoming, |tx| {
                    tx.set_received(RECORDS_LANE, last)
                })
                .map_err(|e| keelson_store::StoreError::Corrupt(e.to_string()))
            })
            .await?;
            after = last;
            report.received += n;
        }

        // The alarm history follows the records, ahead of the sensor data: a
        // superintendent wants to know what is alarming on board first.
        if report.budget_reached.is_none() {
            self.push_alarms(resp.alarms_held, &mut budget, &mut report)
                .await?;
        }

        // Sensor history goes last: it is the least urgent and the largest.
        let mut widths = vec![RollupWidth::Hour];
        if self.state.config.retention.minute_rollups_synced && budget.allows_extras() {
            widths.push(RollupWidth::Minute);
        }
        for width in widths {
            if report.budget_reached.is_some() {
                break;
            }
            self.push_rollups(width, &mut budget, &mut report).await?;
        }
        // Files go after everything else: their metadata has gone with the
        // records above, and a few photos can outweigh a day of rollups.
        if report.budget_reached.is_none() {
            self.push_files(&mut budget, &mut report).await?;
        }
        report.link_bytes = budget.session;
        Ok(report)
    }

    /// Sends the attachment files the shore does not hold whole, oldest
    /// first, each from where the shore's last acknowledgement left it.
    async fn push_files(
        &self,
        budget: &mut Budget,
        report: &mut SyncReport,
    ) -> Result<(), SyncClientError> {
        let vessel = self.state.config.vessel.id.clone();
        let v = vessel.clone();
        let pending = self
            .local(move |db| db.pending_files(&v, FILES_PER_SESSION))
            .await?;
        for file in pending {
            let mut offset = file.acked.min(file.size);
            // A shore that verified a file and found it wrong asks for it
            // again from the start; once per session is enough.
            let mut restarted = false;
            loop {
                let target = self.chunk_target(MAX_FILE_CHUNK_RAW);
                // A run shrinks to what the budget has left, so a file
                // creeps ashore across sessions rather than waiting for a
                // budget that never has room for a whole run.
                let room = budget
                    .room()
                    .map_or(usize::MAX, |r| usize::try_from(r).unwrap_or(usize::MAX));
                let len = usize::try_from(file.size - offset)
                    .unwrap_or(usize::MAX)
                    .min(target)
                    .min(room);
                if len < MIN_FILE_RUN && (len as u64) < file.size - offset {
                    report.budget_reached = budget.refuses(MIN_FILE_RUN).or(Some("session cap"));
                    return Ok(());
                }
                let (files, sha) = (self.state.files.clone(), file.sha256.clone());
                let data = tokio::task::spawn_blocking(move || files.read_range(&sha, offset, len))
                    .await
                    .map_err(|e| SyncClientError::Local(e.to_string()))?
                    .map_err(|e| SyncClientError::Local(e.to_string()))?;
                let data = match data {
                    Some(d) if !d.is_empty() => d,
                    _ => {
                        tracing::warn!(sha256 = %file.sha256, "an attached file is missing or short on board; it cannot go ashore");
                        break;
                    }
                };
                let sent = data.len();
                let body = wire::encode_file_chunk(&FileChunk {
                    vessel_id: vessel.clone(),
                    sha256: file.sha256.clone(),
                    size: file.size,
                    offset,
                    data,
                })
                .map_err(|e| SyncClientError::Protocol(e.to_string()))?;
                if let Some(which) = budget.refuses(body.len()) {
                    report.budget_reached = Some(which);
                    return Ok(());
                }
                let answer = self
                    .post_measured(protocol::FILES_CHUNKS_PATH, body, sent, budget)
                    .await?;
                let ack: FileAck = serde_json::from_slice(&answer)
                    .map_err(|e| SyncClientError::Protocol(format!("bad files ack: {e}")))?;
                if ack.lane != Lane::Files || ack.sha256 != file.sha256 || ack.received > file.size
                {
                    return Err(SyncClientError::Protocol(format!(
                        "shore acknowledged {} {} up to {} for file {}",
                        ack.lane, ack.sha256, ack.received, file.sha256
                    )));
                }
                let (sha, received, complete) = (file.sha256.clone(), ack.received, ack.complete);
                self.local(move |db| db.ack_file(&sha, received, complete))
                    .await?;
                report.chunks_sent += 1;
                report.file_bytes_sent += ack.received.saturating_sub(offset);
                if ack.complete {
                    report.files_sent += 1;
                    break;
                }
                if ack.received <= offset {
                    if ack.received < offset && !restarted {
                        restarted = true;
                    } else {
                        return Err(SyncClientError::Protocol(format!(
                            "shore made no progress on file {} at {offset}",
                            file.sha256
                        )));
                    }
                }
                offset = ack.received;
            }
        }
        Ok(())
    }

    /// Sends the rollups of one width the shore has not acknowledged, in
    /// chunks, moving the tier's cursor after each acknowledgement.
    async fn push_rollups(
        &self,
        width: RollupWidth,
        budget: &mut Budget,
        report: &mut SyncReport,
    ) -> Result<(), SyncClientError> {
        let tier = match width {
            RollupWidth::Minute => Resolution::Minute,
            RollupWidth::Hour => Resolution::Hour,
        };
        let vessel = self.state.config.vessel.id.clone();
        let mut after = self.local(move |db| db.rollup_cursor(tier)).await?.acked;
        loop {
            // Rollups compress less than record changes, so their chunks
            // stay under the wire limit before compression already.
            let target = self.chunk_target(MAX_ROLLUP_CHUNK_RAW);
            let batch = self
                .local(move |db| db.rollups_after(tier, after, target))
                .await?;
            let Some(last) = batch.rollups.last().map(|r| r.seq) else {
                return Ok(());
            };
            let chunk = RollupChunk {
                vessel_id: vessel.clone(),
                width,
                entries: batch
                    .rollups
                    .into_iter()
                    .map(|r| RollupEntry {
                        seq: r.seq,
                        tag: r.tag,
                        start_ms: r.rollup.start_ms,
                        min: r.rollup.min,
                        max: r.rollup.max,
                        mean: r.rollup.mean,
                        last: r.rollup.last,
                        count: r.rollup.count,
                        good: r.rollup.good,
                    })
                    .collect(),
            };
            let n = chunk.entries.len() as u64;
            let body = wire::encode_rollup_chunk(&chunk)
                .map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let sent = self
                .push_chunk(
                    protocol::ROLLUPS_CHUNKS_PATH,
                    Lane::Rollups,
                    (body, None, last),
                    budget,
                    report,
                )
                .await?;
            if !sent {
                return Ok(());
            }
            self.local(move |db| db.ack_rollups(tier, last)).await?;
            after = last;
            report.rollups_sent += n;
        }
    }

    /// Sends the alarm history the shore has not acknowledged, oldest
    /// first, in chunks, moving the lane's cursor after each
    /// acknowledgement. `held` is what the shore says it holds: below the
    /// cursor only when the shore was restored from a backup, and then the
    /// lane goes again from there (what it still holds is stored once).
    async fn push_alarms(
        &self,
        held: u64,
        budget: &mut Budget,
        report: &mut SyncReport,
    ) -> Result<(), SyncClientError> {
        let vessel = self.state.config.vessel.id.clone();
        let mut after = self
            .local(|db| db.sync_state(ALARMS_LANE))
            .await?
            .sent_acked;
        if held < after {
            tracing::warn!(
                held,
                acknowledged = after,
                "the shore holds less of the alarm history than it acknowledged; sending it again from there"
            );
            self.local(move |db| db.rewind_sent_acked(ALARMS_LANE, held))
                .await?;
            after = held;
        }
        loop {
            let target = self.chunk_target(MAX_ALARM_CHUNK_RAW);
            let rows = self
                .local(move |db| db.alarm_events_after(after, target))
                .await?;
            let Some(last) = rows.last().map(|r| u64::try_from(r.id).unwrap_or(0)) else {
                return Ok(());
            };
            let raw = rows.iter().map(AlarmEventRow::wire_size).sum();
            let chunk = AlarmChunk {
                vessel_id: vessel.clone(),
                entries: rows.into_iter().map(alarm_entry).collect(),
            };
            let n = chunk.entries.len() as u64;
            let body = wire::encode_alarm_chunk(&chunk)
                .map_err(|e| SyncClientError::Protocol(e.to_string()))?;
            let sent = self
                .push_chunk(
                    protocol::ALARMS_CHUNKS_PATH,
                    Lane::Alarms,
                    (body, Some(raw), last),
                    budget,
                    report,
                )
                .await?;
            if !sent {
                return Ok(());
            }
            self.local(move |db| db.set_sent_acked(ALARMS_LANE, last))
                .await?;
            after = last;
            report.alarm_events_sent += n;
        }
    }

    /// Sends one encoded chunk of `lane` whose last entry is `last`, unless
    /// a budget refuses it (then noted in the report), and checks that the
    /// shore acknowledged all of it. `raw`, the chunk's size before
    /// compression, makes the chunk a measurement of the link. Returns
    /// whether it was sent.
    async fn push_chunk(
        &self,
        path: &'static str,
        lane: Lane,
        (body, raw, last): (Vec<u8>, Option<usize>, u64),
        budget: &mut Budget,
        report: &mut SyncReport,
    ) -> Result<bool, SyncClientError> {
        if let Some(which) = budget.refuses(body.len()) {
            report.budget_reached = Some(which);
            return Ok(false);
        }
        let answer = match raw {
            Some(raw) => self.post_measured(path, body, raw, budget).await?,
            None => self.post(path, body, budget).await?,
        };
        let ack: ChunkAck = serde_json::from_slice(&answer)
            .map_err(|e| SyncClientError::Protocol(format!("bad {lane} ack: {e}")))?;
        if ack.lane != lane || ack.acked_seq < last {
            return Err(SyncClientError::Protocol(format!(
                "shore acknowledged {} {} of a {lane} chunk ending at {last}",
                ack.lane, ack.acked_seq
            )));
        }
        report.chunks_sent += 1;
        Ok(true)
    }

    /// The next chunk's size before compression, from what was measured of
    /// the link, at most `cap`.
    fn chunk_target(&self, cap: usize) -> usize {
        self.state
            .sync
            .estimate()
            .chunk_raw(self.state.config.sync.chunk_bytes)
            .min(cap)
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

    /// Posts a chunk of `raw` bytes before compression and learns from how
    /// it went: its time sizes the next chunks, and a cut halves them.
    async fn post_measured(
        &self,
        path: &'static str,
        body: Vec<u8>,
        raw: usize,
        budget: &mut Budget,
    ) -> Result<Vec<u8>, SyncClientError> {
        let wire_len = body.len();
        let sent_at = Instant::now();
        match self.post(path, body, budget).await {
            Ok(answer) => {
                self.state
                    .sync
                    .update_estimate(|e| e.observe_chunk(wire_len, raw, sent_at.elapsed()));
                Ok(answer)
            }
            Err(e @ SyncClientError::Link(_)) => {
                self.state.sync.update_estimate(|est| est.observe_cut(raw));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn post_json<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        req: &Req,
        budget: &mut Budget,
    ) -> Result<Resp, SyncClientError> {
        let body = serde_json::to_vec(req).map_err(|e| SyncClientError::Protocol(e.to_string()))?;
        let bytes = self.post(path, body, budget).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SyncClientError::Protocol(format!("bad answer from {path}: {e}")))
    }

    /// A failed request as a session error: the shore's certificate refused,
    /// or else the link.
    fn send_error(&self, e: &reqwest::Error) -> SyncClientError {
        match crate::shore_tls::refusal(e, &self.state.config.sync) {
            Some(why) => SyncClientError::Certificate(why),
            None => SyncClientError::Link(link_error(e)),
        }
    }

    /// Signs and posts a body; returns the answer's body. Both bodies count
    /// against the budget, the request's even when the link then fails,
    /// since it was paid for.
    async fn post(
        &self,
        path: &'static str,
        body: Vec<u8>,
        budget: &mut Budget,
    ) -> Result<Vec<u8>, SyncClientError> {
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
        budget.spend(self, body.len() + REQUEST_OVERHEAD).await;
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.send_error(&e))?;
        self.state.sync.bytes_received.inc_by(bytes.len() as u64);
        budget.spend(self, bytes.len() + REQUEST_OVERHEAD).await;
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

/// An entry of the alarm history as the alarms lane carries it.
fn alarm_entry(e: AlarmEventRow) -> AlarmEntry {
    AlarmEntry {
        seq: u64::try_from(e.id).unwrap_or(0),
        alarm_id: e.alarm_id.and_then(|id| u64::try_from(id).ok()),
        tag: e.tag,
        kind: e.kind,
        event: e.event,
        at_ms: e.at_ms,
        // A device can report a float that is no number; the history keeps
        // it, but the lane carries only numbers, so the entry goes without.
        value: e.value.filter(|v| v.is_finite()),
        by: e.by,
        fault_id: e.fault_id,
    }
}

/// Bytes of HTTP and signature headers around each body, counted against
/// the budget so small requests are not free.
const REQUEST_OVERHEAD: usize = 400;

/// The byte budgets of one session: the day's budget (shared with the day's
/// other sessions, kept in the database) and the session cap.
struct Budget {
    day: String,
    today: u64,
    daily: u64,
    session: u64,
    cap: u64,
}

impl Budget {
    async fn new(client: &SyncClient, daily: u64, cap: u64) -> Result<Budget, SyncClientError> {
        let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let d = day.clone();
        let today = client.local(move |db| db.sync_usage(&d)).await?;
        Ok(Budget {
            day,
            today,
            daily,
            session: 0,
            cap,
        })
    }

    /// Whether the day leaves room for what may wait, such as 1-minute
    /// rollups: no daily budget, or less than half of it spent.
    fn allows_extras(&self) -> bool {
        self.daily == 0 || self.today < self.daily / 2
    }

    /// Which budget, if any, sending `bytes` more would break (0 = no limit).
    fn refuses(&self, bytes: usize) -> Option<&'static str> {
        let bytes = (bytes + REQUEST_OVERHEAD) as u64;
        if self.daily > 0 && self.today + bytes > self.daily {
            Some("daily budget")
        } else if self.cap > 0 && self.session + bytes > self.cap {
            Some("session cap")
        } else {
            None
        }
    }

    /// Bytes a request body may still have within both budgets, leaving
    /// room for its headers and its answer; `None` when there is no limit.
    fn room(&self) -> Option<u64> {
        let daily = (self.daily > 0).then(|| self.daily.saturating_sub(self.today));
        let session = (self.cap > 0).then(|| self.cap.saturating_sub(self.session));
        let left = match (daily, session) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        left.map(|l| l.saturating_sub(3 * REQUEST_OVERHEAD as u64))
    }

    async fn spend(&mut self, client: &SyncClient, bytes: usize) {
        let bytes = bytes as u64;
        self.today += bytes;
        self.session += bytes;
        let day = self.day.clone();
        if let Err(e) = client.local(move |db| db.add_sync_usage(&day, bytes)).await {
            tracing::error!(error = %e, "cannot record sync usage");
        }
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
    /// When the current or last session started, RFC 3339.
    pub last_started: Option<String>,
    /// Last attempt, RFC 3339.
    pub last_attempt: Option<String>,
    /// Last completed session, RFC 3339.
    pub last_success: Option<String>,
    /// The last failed attempt's error, when the last attempt failed.
    pub last_error: Option<String>,
    /// The records lane.
    pub records: LaneStatus,
    /// The alarms lane.
    pub alarms: AlarmsLaneStatus,
    /// The files lane.
    pub files: FilesLaneStatus,
    /// Bytes moved over the link today (UTC), both ways.
    pub today_bytes: u64,
    /// The daily budget in bytes; 0 means none.
    pub daily_budget_bytes: u64,
    /// Estimated seconds to send what is pending, at the measured rate.
    pub eta_secs: Option<u64>,
    /// The last measured round trip, in milliseconds.
    pub rtt_ms: Option<u64>,
    /// The last measured sending rate, in bytes per second.
    pub rate_bytes_per_sec: Option<u64>,
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

/// The alarms lane's backlog and cursor.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmsLaneStatus {
    /// Alarm history entries the shore has not acknowledged.
    pub pending_events: u64,
    /// Their size in bytes, before compression.
    pub pending_bytes: u64,
    /// Highest alarm history entry the shore acknowledged.
    pub sent_acked: u64,
}

/// The files lane's backlog.
#[derive(Debug, Clone, Serialize)]
pub struct FilesLaneStatus {
    /// Attached files the shore does not hold whole yet.
    pub pending_files: u64,
    /// Their bytes the shore has not acknowledged.
    pub pending_bytes: u64,
}

/// Reads the sync status from the database.
pub fn status(state: &EdgeState) -> Result<SyncStatus, keelson_store::StoreError> {
    let started_ms = state.sync.started_ms.load(Ordering::SeqCst);
    let running = state.sync.is_running();
    let s = state.db.sync_state(RECORDS_LANE)?;
    let (pending_changes, pending_bytes) = state
        .db
        .outbound_pending(&state.config.vessel.id, s.sent_acked)?;
    let (pending_files, pending_file_bytes) =
        state.db.pending_file_totals(&state.config.vessel.id)?;
    let alarms_acked = state.db.sync_state(ALARMS_LANE)?.sent_acked;
    let (pending_events, pending_alarm_bytes) = state.db.alarm_events_pending(alarms_acked)?;
    let estimate = state.sync.estimate();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let today_bytes = state.db.sync_usage(&today)?;
    let rfc = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
    };
    Ok(SyncStatus {
        enabled: state.config.sync.enabled,
        shore_url: state.config.sync.shore_url.clone(),
        running,
        last_started: rfc(Some(started_ms).filter(|ms| *ms > 0)),
        last_attempt: rfc(s.last_attempt_ms),
        last_success: rfc(s.last_success_ms),
        last_error: s.last_error,
        records: LaneStatus {
            pending_changes,
            pending_bytes,
            sent_acked: s.sent_acked,
            received: s.received,
        },
        alarms: AlarmsLaneStatus {
            pending_events,
            pending_bytes: pending_alarm_bytes,
            sent_acked: alarms_acked,
        },
        files: FilesLaneStatus {
            pending_files,
            pending_bytes: pending_file_bytes,
        },
        today_bytes,
        daily_budget_bytes: state.config.sync.daily_budget_bytes,
        eta_secs: estimate.eta_secs(pending_bytes + pending_alarm_bytes + pending_file_bytes),
        rtt_ms: estimate.rtt_secs.map(|r| (r * 1000.0).round() as u64),
        rate_bytes_per_sec: estimate.rate.map(|r| r.round() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_a_few_seconds_of_the_measured_link() {
        let mut e = LinkEstimate::default();
        assert_eq!(
            e.chunk_raw(32 * 1024),
            32 * 1024,
            "the configured size until measured"
        );
        assert_eq!(e.eta_secs(1000), None, "no estimate before a measurement");
        e.rtt_secs = Some(0.6);
        // 32 kB/s on the wire, chunks compressing to half.
        e.observe_chunk(32_000, 64_000, Duration::from_millis(1600));
        // Six round trips (3.6 s) of 32 kB/s, at half the size on the wire.
        let raw = e.chunk_raw(32 * 1024);
        assert!((220_000..=240_000).contains(&raw), "{raw}");
        assert_eq!(e.eta_secs(640_000), Some(10));
    }

    #[test]
    fn a_cut_chunk_halves_the_next_and_success_grows_it_back() {
        let mut e = LinkEstimate::default();
        e.observe_cut(64 * 1024);
        assert_eq!(e.chunk_raw(64 * 1024), 32 * 1024);
        e.observe_cut(8 * 1024);
        assert_eq!(
            e.chunk_raw(64 * 1024),
            MIN_CHUNK_RAW,
            "never below the floor"
        );
        e.observe_chunk(2_000, 4_000, Duration::from_millis(100));
        assert_eq!(e.cap, Some(2 * MIN_CHUNK_RAW));
    }
}
