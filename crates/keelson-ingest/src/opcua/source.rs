//! The OPC-UA source task: one per server.
//!
//! The task first makes sure the agent has its own certificate (created once,
//! on first start, in the PKI directory), then asks the server for its
//! endpoints and opens a session on the one that matches the configured
//! security. async-opcua's session event loop runs in a task of its own: it
//! carries every request, reconnects with back-off when the connection drops,
//! and after a server restart opens a new session and re-creates the
//! subscription with the same monitored items (the same client handles), so
//! the values keep flowing to the same tags. This task watches the loop's
//! events to log them, count them and mark the tags bad while the server is
//! away.
//!
//! In subscription mode each tag is one monitored item. Tags the server will
//! not monitor (an unknown node, a deadband it cannot apply), and every tag
//! when it refuses the subscription itself, are polled with Read instead. In
//! poll mode every tag is read each poll interval.

use std::{
    path::{Path, PathBuf},
    str::FromStr as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ::opcua::{
    client::{
        Client, ClientBuilder, DataChangeCallback, IdentityToken, MonitoredItem, Session,
        SessionConnectMode, SessionEventLoop, SessionPollResult, transport::TcpConnector,
    },
    core::config::Config as _,
    crypto::{CertificateStore, SecurityPolicy as UaSecurityPolicy, X509Data},
    types::{
        DataChangeFilter, DataChangeTrigger, DataValue, DeadbandType as UaDeadbandType,
        ExtensionObject, MessageSecurityMode, MonitoredItemCreateRequest, MonitoringMode,
        MonitoringParameters, NodeId, ReadValueId, StatusCode, TimestampsToReturn,
    },
};
use chrono::Utc;
use futures::StreamExt as _;
use keelson_model::{Quality, Sample};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    config::{DeadbandType, OpcuaServerConfig, ReadMode, SecurityMode, SecurityPolicy},
    decode,
};
use crate::{metrics::IngestMetrics, modbus::source::send, ratelog::RateLimitedLog};

/// The first reconnection delay; it doubles after each failure.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The name the agent gives itself towards OPC-UA servers.
const APPLICATION_NAME: &str = "Keelson edge agent";

/// The agent's application URI. It is written into the agent's certificate,
/// and servers check that the two agree, so it never changes.
pub const APPLICATION_URI: &str = "urn:keelson:edge-agent";

/// The product URI the agent reports.
const PRODUCT_URI: &str = "urn:keelson";

/// How long the agent's own certificate is valid. A vessel may go months
/// without anyone at hand to renew it, so it is long-lived.
const CERTIFICATE_DAYS: u32 = 10 * 365;

/// How many data changes may wait between the session's callback and this
/// task. Beyond that, changes are dropped and counted, because the callback
/// runs inside the session's event loop and must never block it.
const DATA_QUEUE: usize = 8192;

/// The most data changes turned into one group of samples.
const MAX_GROUP: usize = 1024;

/// The most values queued per monitored item between two publishes.
const MAX_ITEM_QUEUE: u32 = 100;

/// The PKI directory used when neither the configuration nor the agent set
/// one.
pub(crate) fn default_pki_dir() -> PathBuf {
    PathBuf::from("opcua-pki")
}

/// Serialises the creation of the agent's own certificate: several servers
/// share one PKI directory, and their tasks start at the same moment.
static PKI_LOCK: Mutex<()> = Mutex::new(());

/// Why the agent's own certificate could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The PKI directory or one of its folders could not be created.
    #[error("cannot create the OPC-UA PKI directory {path}: {message}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        message: String,
    },
    /// The certificate and key could not be created.
    #[error("cannot create the agent's OPC-UA certificate in {path}: {message}")]
    Create {
        /// The PKI directory.
        path: String,
        /// Why.
        message: String,
    },
    /// The private key's permissions could not be restricted.
    #[error("cannot restrict the permissions of {path}: {error}")]
    Permissions {
        /// The key file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The OPC-UA client refused its configuration.
    #[error("invalid OPC-UA client configuration: {0}")]
    Client(String),
}

/// The client configuration shared by every server: who the agent is and
/// where its certificates live. `server` adds its trust and timing settings.
fn client_builder(server: &OpcuaServerConfig, pki: &Path) -> ClientBuilder {
    ClientBuilder::new()
        .application_name(APPLICATION_NAME)
        .application_uri(APPLICATION_URI)
        .product_uri(PRODUCT_URI)
        .pki_dir(pki)
        // The certificate is made by `ensure_own_certificate` with a longer
        // life and a private key only the agent can read.
        .create_sample_keypair(false)
        .trust_server_certs(server.trust_server_certs)
        .session_name(format!("keelson {}", server.name))
        // Never give up: a ship's server may be down for days.
        .session_retry_limit(-1)
        .session_retry_initial(BACKOFF_INITIAL)
        .session_retry_max(BACKOFF_MAX)
        .request_timeout(server.timeout())
}

/// Makes sure the agent's own certificate and private key exist under `pki`
/// (`own/cert.der`, `private/private.pem`), creating them and the `trusted/`
/// and `rejected/` folders on first start. The key file is made readable by
/// the agent only. Returns the certificate's path.
///
/// This generates an RSA key on first start, so it blocks for a moment.
pub fn ensure_own_certificate(pki: &Path) -> Result<PathBuf, PkiError> {
    let _guard = match PKI_LOCK.lock() {
        Ok(guard) => guard,
        // The lock guards files, not memory; a panic elsewhere leaves
        // nothing half-done that the checks below would not see.
        Err(poisoned) => poisoned.into_inner(),
    };
    let store = CertificateStore::new(pki);
    store
        .ensure_pki_path()
        .map_err(|message| PkiError::Directory {
            path: pki.display().to_string(),
            message,
        })?;
    let cert_path = store.own_certificate_path();
    let key_path = store.own_private_key_path();
    if store.read_own_cert().is_err() || store.read_own_pkey().is_err() {
        let description = ClientBuilder::new()
            .application_name(APPLICATION_NAME)
            .application_uri(APPLICATION_URI)
            .product_uri(PRODUCT_URI)
            .config()
            .application_description();
        let mut data = X509Data::from(description);
        data.certificate_duration_days = CERTIFICATE_DAYS;
        CertificateStore::create_certificate_and_key(&data, true, &cert_path, &key_path).map_err(
            |message| PkiError::Create {
                path: pki.display().to_string(),
                message,
            },
        )?;
        tracing::info!(certificate = %cert_path.display(), "created the agent's OPC-UA certificate");
    }
    restrict(&key_path)?;
    if let Some(private_dir) = key_path.parent() {
        restrict_dir(private_dir)?;
    }
    Ok(cert_path)
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    set_mode(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(unix)]
fn restrict_dir(path: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    set_mode(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(unix)]
fn set_mode(path: &Path, permissions: std::fs::Permissions) -> Result<(), PkiError> {
    std::fs::set_permissions(path, permissions).map_err(|error| PkiError::Permissions {
        path: path.display().to_string(),
        error,
    })
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> Result<(), PkiError> {
    Ok(())
}

#[cfg(not(unix))]
fn restrict_dir(_path: &Path) -> Result<(), PkiError> {
    Ok(())
}

fn security(server: &OpcuaServerConfig) -> (UaSecurityPolicy, MessageSecurityMode) {
    let policy = match server.security_policy {
        SecurityPolicy::None => UaSecurityPolicy::None,
        SecurityPolicy::Basic256Sha256 => UaSecurityPolicy::Basic256Sha256,
    };
    let mode = match server.security_mode {
        SecurityMode::None => MessageSecurityMode::None,
        SecurityMode::Sign => MessageSecurityMode::Sign,
        SecurityMode::SignAndEncrypt => MessageSecurityMode::SignAndEncrypt,
    };
    (policy, mode)
}

fn identity(server: &OpcuaServerConfig) -> IdentityToken {
    match (&server.username, &server.password) {
        (Some(user), Some(password)) => IdentityToken::new_user_name(user, password.as_str()),
        _ => IdentityToken::Anonymous,
    }
}

/// The monitored item for tag `index`. Its client handle is `index + 1`
/// (0 would let the library pick one), which maps each data change back to
/// its tag, also after the library re-created the item on a new session.
fn monitored_item(
    server: &OpcuaServerConfig,
    index: usize,
    node_id: &NodeId,
) -> MonitoredItemCreateRequest {
    let tag = &server.tags[index];
    let sampling_ms = tag.sampling_interval_ms;
    // Sampling faster than publishing only helps if the server may queue the
    // values in between; keep one slot per sample plus one.
    let queue_size = sampling_ms.map_or(1, |sampling| {
        let per_publish = server.publishing_interval_ms.div_ceil(sampling.max(1));
        u32::try_from(per_publish)
            .unwrap_or(MAX_ITEM_QUEUE)
            .saturating_add(1)
            .min(MAX_ITEM_QUEUE)
    });
    let filter = match tag.deadband {
        Some(value) => ExtensionObject::from_message(DataChangeFilter {
            trigger: DataChangeTrigger::StatusValue,
            deadband_type: match tag.deadband_type {
                DeadbandType::Absolute => UaDeadbandType::Absolute as u32,
                DeadbandType::Percent => UaDeadbandType::Percent as u32,
            },
            deadband_value: value,
        }),
        None => ExtensionObject::null(),
    };
    MonitoredItemCreateRequest::new(
        ReadValueId::from(node_id.clone()),
        MonitoringMode::Reporting,
        MonitoringParameters {
            client_handle: handle_of(index),
            // A negative interval asks for the publishing interval.
            sampling_interval: sampling_ms.map_or(-1.0, |ms| ms as f64),
            filter,
            queue_size,
            discard_oldest: true,
        },
    )
}

fn handle_of(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// What the session's event loop reports to the source task.
#[derive(Debug)]
enum SessionEvent {
    /// A session is active: new, or the old one reactivated.
    Connected { new_session: bool },
    /// The connection dropped; the loop is reconnecting.
    Lost(StatusCode),
    /// One reconnection attempt failed.
    ConnectFailed(StatusCode),
    /// The loop ended: the session was closed, or reconnecting gave up.
    Ended(Option<StatusCode>),
}

/// Runs the session's event loop until it ends, forwarding what matters.
async fn drive(
    event_loop: SessionEventLoop<TcpConnector>,
    events: mpsc::UnboundedSender<SessionEvent>,
) {
    let stream = event_loop.enter();
    tokio::pin!(stream);
    loop {
        let event = match stream.next().await {
            Some(Ok(SessionPollResult::Reconnected(mode))) => SessionEvent::Connected {
                new_session: matches!(mode, SessionConnectMode::NewSession(_)),
            },
            Some(Ok(SessionPollResult::ConnectionLost(status))) => SessionEvent::Lost(status),
            Some(Ok(SessionPollResult::ReconnectFailed(status))) => {
                SessionEvent::ConnectFailed(status)
            }
            Some(Ok(_)) => continue,
            Some(Err(status)) => SessionEvent::Ended(Some(status)),
            None => SessionEvent::Ended(None),
        };
        let ended = matches!(event, SessionEvent::Ended(_));
        if events.send(event).is_err() || ended {
            return;
        }
    }
}

/// Whether a status says the server's certificate was refused.
fn is_certificate_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BadCertificateUntrusted
            | StatusCode::BadSecurityChecksFailed
            | StatusCode::BadCertificateInvalid
            | StatusCode::BadCertificateHostNameInvalid
            | StatusCode::BadCertificateUriInvalid
            | StatusCode::BadCertificateTimeInvalid
    )
}

/// What to do about a refused server certificate.
fn certificate_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BadCertificateUntrusted | StatusCode::BadSecurityChecksFailed => {
            "it is not trusted; if it is the right server, move its certificate from the \
             rejected folder to the trusted folder (or set trust_server_certs = true)"
        }
        StatusCode::BadCertificateHostNameInvalid => {
            "it does not name the host of endpoint_url; use a host name or address the \
             certificate lists"
        }
        StatusCode::BadCertificateUriInvalid => {
            "its application URI differs from the one the server announces"
        }
        StatusCode::BadCertificateTimeInvalid => {
            "it has expired or is not valid yet; check the certificate and both clocks"
        }
        _ => "it is malformed or does not match the server's announced certificate",
    }
}

/// Whether a status says the server refused the user name and password
/// (or an anonymous session).
fn is_login_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BadUserAccessDenied
            | StatusCode::BadIdentityTokenInvalid
            | StatusCode::BadIdentityTokenRejected
    )
}

/// How a session ended.
enum SessionEnd {
    /// The agent is stopping (or the pipeline closed).
    Stop,
    /// The session's event loop ended; start over with a new session.
    Restart,
}

/// A server's reading state.
struct OpcuaSource {
    server: OpcuaServerConfig,
    pki: PathBuf,
    /// The parsed node id of every tag, in configuration order.
    node_ids: Vec<NodeId>,
    tx: mpsc::Sender<Vec<Sample>>,
    metrics: IngestMetrics,
    cancel: CancellationToken,
    decode_log: RateLimitedLog,
    /// Whether the last connection problem was already logged as a warning,
    /// so a server that stays away is not logged at every attempt.
    down_logged: bool,
    /// The last reconnection status logged, so a change of reason is logged.
    last_failure: Option<StatusCode>,
    /// Whether a failed poll was logged since the last good one.
    poll_failure_logged: bool,
}

impl OpcuaSource {
    fn name(&self) -> &str {
        &self.server.name
    }

    /// Sends `samples` to the pipeline; false when the task should stop.
    async fn send(&self, samples: Vec<Sample>) -> bool {
        self.metrics.produced(&self.server.name, samples.len());
        send(&self.tx, samples, &self.cancel).await
    }

    /// A bad sample for every tag in `indices`, stamped now.
    fn bad_samples(&self, indices: impl IntoIterator<Item = usize>) -> Vec<Sample> {
        let now = Utc::now();
        indices
            .into_iter()
            .map(|i| Sample {
                tag: self.server.tags[i].tag.clone(),
                ts: now,
                value: None,
                quality: Quality::Bad,
                text: None,
            })
            .collect()
    }

    /// The sample of tag `index` from one data value. `read_at` is the time
    /// of a poll: a polled value is stamped with it, as a Modbus read is, so
    /// a value that has not changed for hours still counts as fresh.
    fn sample(
        &mut self,
        index: usize,
        data: &DataValue,
        read_at: Option<chrono::DateTime<Utc>>,
    ) -> Sample {
        let tag = &self.server.tags[index];
        let reading = decode::reading(data, tag.scale, tag.offset);
        if let Some(problem) = &reading.problem {
            let reason = format!("{problem} (node {})", tag.node_id);
            match problem {
                decode::Problem::Status(_) => {
                    self.metrics.error(&self.server.name, "status");
                    self.decode_log
                        .bad_status(&self.server.name, &tag.tag, &reason);
                }
                decode::Problem::Value(_) => {
                    self.metrics.error(&self.server.name, "decode");
                    self.decode_log
                        .decode_failed(&self.server.name, &tag.tag, &reason);
                }
            }
        }
        Sample {
            tag: tag.tag.clone(),
            ts: read_at.or(reading.ts).unwrap_or_else(Utc::now),
            value: reading.value,
            quality: reading.quality,
            text: reading.text,
        }
    }

    /// Logs a failed connection attempt: a warning when the server goes
    /// away or the reason changes, then quietly until it is back. A refused
    /// server certificate says where it is and how to trust it.
    fn connect_failed(&mut self, status: StatusCode, detail: &str) {
        let certificate = is_certificate_refusal(status);
        let login = is_login_refusal(status);
        let kind = if certificate {
            "certificate"
        } else if login {
            "login"
        } else {
            "connect"
        };
        self.metrics.error(&self.server.name, kind);
        if self.down_logged && self.last_failure == Some(status) {
            tracing::debug!(server = %self.name(), status = %status, "opc-ua server still unreachable");
            return;
        }
        self.down_logged = true;
        self.last_failure = Some(status);
        if certificate {
            let rejected = self.pki.join("rejected");
            let trusted = self.pki.join("trusted");
            tracing::error!(
                server = %self.name(),
                status = %status,
                rejected = %rejected.display(),
                trusted = %trusted.display(),
                "opc-ua server certificate refused: {}; retrying with back-off",
                certificate_hint(status)
            );
        } else if login {
            tracing::error!(
                server = %self.name(),
                status = %status,
                user = self.server.username.as_deref().unwrap_or("(anonymous)"),
                "opc-ua server refused the login; check username and password \
                 (or whether it allows anonymous sessions); retrying with back-off"
            );
        } else {
            tracing::warn!(
                server = %self.name(),
                status = %status,
                error = %detail,
                "cannot connect to opc-ua server; retrying with back-off"
            );
        }
    }

    fn connected(&mut self, new_session: bool) {
        tracing::info!(server = %self.name(), new_session, "connected to opc-ua server");
        self.down_logged = false;
        self.last_failure = None;
    }

    /// Creates the subscription and one monitored item per tag. Returns the
    /// tags that must be polled instead: those the server would not monitor,
    /// or all of them when it refused the subscription. `None` means the
    /// session went away meanwhile and the subscription should be tried
    /// again on the next connection.
    async fn subscribe(
        &mut self,
        session: &Session,
        data: &mpsc::Sender<(u32, DataValue)>,
    ) -> Option<Vec<usize>> {
        let all: Vec<usize> = (0..self.server.tags.len()).collect();
        let queue = data.clone();
        let metrics = self.metrics.clone();
        let callback = DataChangeCallback::new(move |value: DataValue, item: &MonitoredItem| {
            if queue.try_send((item.client_handle(), value)).is_err() {
                metrics.dropped.inc();
            }
        });
        let subscription = session
            .create_subscription(
                self.server.publishing_interval(),
                // Lifetime and keep-alive counts in publishing intervals:
                // the server sends an empty publish after 10 quiet ones and
                // drops the subscription after 60 without the client.
                60,
                10,
                0,
                0,
                true,
                callback,
            )
            .await;
        let id = match subscription {
            Ok(id) => id,
            Err(e) if is_connection_status(e.status()) => return None,
            Err(e) => {
                self.metrics.error(&self.server.name, "subscription");
                tracing::warn!(
                    server = %self.name(),
                    error = %e,
                    "opc-ua server refused the subscription; polling every tag instead"
                );
                return Some(all);
            }
        };
        let items: Vec<MonitoredItemCreateRequest> = self
            .node_ids
            .iter()
            .enumerate()
            .map(|(index, node_id)| monitored_item(&self.server, index, node_id))
            .collect();
        let created = match session
            .create_monitored_items(id, TimestampsToReturn::Both, items)
            .await
        {
            Ok(created) => created,
            Err(e) if is_connection_status(e.status()) => return None,
            Err(e) => {
                self.metrics.error(&self.server.name, "subscription");
                tracing::warn!(
                    server = %self.name(),
                    error = %e,
                    "opc-ua server refused the monitored items; polling every tag instead"
                );
                let _ = session.delete_subscription(id).await;
                return Some(all);
            }
        };
        let mut polled = Vec::new();
        for (index, item) in created.iter().enumerate() {
            let status = item.result.status_code;
            if status.is_good() {
                continue;
            }
            self.metrics.error(&self.server.name, "subscription");
            let tag = &self.server.tags[index];
            tracing::warn!(
                server = %self.name(),
                tag = %tag.tag,
                node_id = %tag.node_id,
                status = %status,
                "opc-ua server will not monitor this node; polling it instead"
            );
            polled.push(index);
        }
        // The response lists one result per request; anything missing is
        // polled so no tag is silently left out.
        polled.extend(created.len()..self.server.tags.len());
        tracing::info!(
            server = %self.name(),
            monitored = self.server.tags.len() - polled.len(),
            polled = polled.len(),
            "opc-ua subscription created"
        );
        Some(polled)
    }

    /// Reads the tags in `indices` once.
    async fn poll(&mut self, session: &Session, indices: &[usize]) -> bool {
        let nodes: Vec<ReadValueId> = indices
            .iter()
            .map(|&i| ReadValueId::from(self.node_ids[i].clone()))
            .collect();
        let started = Instant::now();
        let read_at = Utc::now();
        let result = session.read(&nodes, TimestampsToReturn::Both, 0.0).await;
        self.metrics
            .poll_took(&self.server.name, started.elapsed().as_secs_f64());
        let samples = match result {
            Ok(values) => {
                if self.poll_failure_logged {
                    tracing::info!(server = %self.name(), "opc-ua reads work again");
                    self.poll_failure_logged = false;
                }
                let mut samples = Vec::with_capacity(indices.len());
                for (position, &index) in indices.iter().enumerate() {
                    match values.get(position) {
                        Some(value) => samples.push(self.sample(index, value, Some(read_at))),
                        None => {
                            self.metrics.error(&self.server.name, "decode");
                            let tag = self.server.tags[index].tag.clone();
                            self.decode_log.decode_failed(
                                &self.server.name,
                                &tag,
                                "the server's read response has no value for this node",
                            );
                            samples.extend(self.bad_samples([index]));
                        }
                    }
                }
                samples
            }
            Err(e) => {
                let kind = if e.status() == StatusCode::BadTimeout {
                    "timeout"
                } else {
                    "read"
                };
                self.metrics.error(&self.server.name, kind);
                if !self.poll_failure_logged {
                    tracing::warn!(server = %self.name(), error = %e, "opc-ua read failed; marking the polled tags bad");
                    self.poll_failure_logged = true;
                }
                self.bad_samples(indices.iter().copied())
            }
        };
        self.send(samples).await
    }

    /// Turns queued data changes into samples and sends them.
    async fn deliver(
        &mut self,
        first: (u32, DataValue),
        data: &mut mpsc::Receiver<(u32, DataValue)>,
    ) -> bool {
        let mut changes = vec![first];
        while changes.len() < MAX_GROUP {
            match data.try_recv() {
                Ok(change) => changes.push(change),
                Err(_) => break,
            }
        }
        let mut samples = Vec::with_capacity(changes.len());
        for (handle, value) in changes {
            let index = (handle as usize).wrapping_sub(1);
            if index < self.server.tags.len() {
                samples.push(self.sample(index, &value, None));
            } else {
                tracing::debug!(server = %self.name(), handle, "data change for an unknown monitored item");
            }
        }
        self.send(samples).await
    }

    /// Runs one session until it ends or the task stops.
    async fn run_session(
        &mut self,
        session: Arc<Session>,
        event_loop: SessionEventLoop<TcpConnector>,
    ) -> SessionEnd {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(drive(event_loop, events_tx));
        let (data_tx, mut data) = mpsc::channel(DATA_QUEUE);
        let all: Vec<usize> = (0..self.server.tags.len()).collect();
        let subscribing = self.server.mode == ReadMode::Subscription;
        let mut subscribed = false;
        let mut polled: Vec<usize> = if subscribing { Vec::new() } else { all.clone() };
        let mut connected = false;
        // Whether the tags were marked bad since the server was last seen.
        let mut marked_bad = false;
        let mut ticker = tokio::time::interval(self.server.poll_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            tokio::select! {
                () = self.cancel.cancelled() => break SessionEnd::Stop,
                event = events.recv() => match event {
                    Some(SessionEvent::Connected { new_session }) => {
                        connected = true;
                        marked_bad = false;
                        self.connected(new_session);
                        if subscribed {
                            // The library moved or re-created the
                            // subscription while connecting, but its new
                            // publishing loop waits for a trigger before it
                            // asks the server for notifications; without
                            // this, values would never flow again.
                            session.trigger_publish_now();
                        } else if subscribing {
                            match self.subscribe(&session, &data_tx).await {
                                Some(rest) => {
                                    subscribed = true;
                                    polled = rest;
                                }
                                // Lost while subscribing: poll everything
                                // until the next connection tries again.
                                None => polled = all.clone(),
                            }
                        }
                    }
                    Some(SessionEvent::Lost(status)) => {
                        connected = false;
                        self.metrics.error(&self.server.name, "connect");
                        tracing::warn!(server = %self.name(), status = %status, "lost opc-ua server; reconnecting with back-off");
                        self.down_logged = true;
                        self.last_failure = Some(status);
                        marked_bad = true;
                        if !self.send(self.bad_samples(all.iter().copied())).await {
                            break SessionEnd::Stop;
                        }
                    }
                    Some(SessionEvent::ConnectFailed(status)) => {
                        self.connect_failed(status, "reconnection failed");
                        if !marked_bad {
                            marked_bad = true;
                            if !self.send(self.bad_samples(all.iter().copied())).await {
                                break SessionEnd::Stop;
                            }
                        }
                    }
                    Some(SessionEvent::Ended(status)) => {
                        tracing::warn!(
                            server = %self.name(),
                            status = %status.unwrap_or(StatusCode::Good),
                            "opc-ua session ended; starting a new one"
                        );
                        break SessionEnd::Restart;
                    }
                    None => break SessionEnd::Restart,
                },
                Some(change) = data.recv() => {
                    if !self.deliver(change, &mut data).await {
                        break SessionEnd::Stop;
                    }
                }
                _ = ticker.tick(), if connected && !polled.is_empty() => {
                    let indices = polled.clone();
                    if !self.poll(&session, &indices).await {
                        break SessionEnd::Stop;
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Stop) {
            // Close the session so the server frees it at once; never let a
            // silent server hold up the agent's shutdown.
            let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
        }
        driver.abort();
        let _ = driver.await;
        end
    }
}

/// Whether a request failed because the connection went away, rather than
/// because the server refused it.
fn is_connection_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BadConnectionClosed
            | StatusCode::BadNotConnected
            | StatusCode::BadSecureChannelClosed
            | StatusCode::BadSessionClosed
            | StatusCode::BadSessionIdInvalid
            | StatusCode::BadTimeout
            | StatusCode::BadCommunicationError
            | StatusCode::BadServerNotConnected
    )
}

/// Reads one server until `cancel` fires or the pipeline closes.
pub(crate) async fn run(
    server: OpcuaServerConfig,
    tx: mpsc::Sender<Vec<Sample>>,
    metrics: IngestMetrics,
    cancel: CancellationToken,
) {
    let pki = server.pki_dir.clone().unwrap_or_else(default_pki_dir);
    let mut client = match prepare_client(&server, &pki).await {
        Ok(client) => client,
        Err(e) => {
            metrics.error(&server.name, "certificate");
            tracing::error!(server = %server.name, error = %e, "cannot set up opc-ua client; not reading this server");
            return;
        }
    };
    // Validation has checked every node id already.
    let node_ids = server
        .tags
        .iter()
        .map(|tag| NodeId::from_str(&tag.node_id).unwrap_or_else(|_| NodeId::null()))
        .collect();
    let (policy, mode) = security(&server);
    let mut source = OpcuaSource {
        pki,
        node_ids,
        tx,
        metrics,
        cancel: cancel.clone(),
        decode_log: RateLimitedLog::default(),
        down_logged: false,
        last_failure: None,
        poll_failure_logged: false,
        server,
    };
    let mut backoff = BACKOFF_INITIAL;
    let mut marked_bad = false;
    loop {
        let endpoint = (source.server.endpoint_url.as_str(), policy.to_str(), mode);
        let connect = tokio::time::timeout(
            source.server.timeout(),
            client.connect_to_matching_endpoint(endpoint, identity(&source.server)),
        );
        let attempt = tokio::select! {
            () = cancel.cancelled() => break,
            attempt = connect => attempt,
        };
        match attempt {
            Ok(Ok((session, event_loop))) => {
                backoff = BACKOFF_INITIAL;
                marked_bad = false;
                match source.run_session(session, event_loop).await {
                    SessionEnd::Stop => break,
                    SessionEnd::Restart => {}
                }
            }
            Ok(Err(e)) => source.connect_failed(e.status(), &e.to_string()),
            Err(_) => source.connect_failed(StatusCode::BadTimeout, "no answer to GetEndpoints"),
        }
        if !marked_bad {
            // Until the server answers, its tags have no current value.
            let all = source.bad_samples(0..source.server.tags.len());
            if !source.send(all).await {
                break;
            }
            marked_bad = true;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Creates the agent's certificate if needed (off the async threads: RSA
/// key generation takes a moment) and builds the client.
async fn prepare_client(server: &OpcuaServerConfig, pki: &Path) -> Result<Client, PkiError> {
    let dir = pki.to_path_buf();
    tokio::task::spawn_blocking(move || ensure_own_certificate(&dir))
        .await
        .map_err(|e| PkiError::Create {
            path: pki.display().to_string(),
            message: e.to_string(),
        })??;
    client_builder(server, pki)
        .client()
        .map_err(|errors| PkiError::Client(errors.join("; ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_certificate_is_created_once_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let cert = ensure_own_certificate(&pki).unwrap();
        let der = std::fs::read(&cert).unwrap();
        assert!(pki.join("private/private.pem").is_file());
        assert!(pki.join("trusted").is_dir());
        assert!(pki.join("rejected").is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(pki.join("private/private.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second start keeps the same identity.
        ensure_own_certificate(&pki).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), der);
    }

    #[test]
    fn queue_size_covers_the_samples_of_one_publish() {
        let server: OpcuaServerConfig = toml::from_str(
            r#"
            name = "s"
            endpoint_url = "opc.tcp://127.0.0.1:4840/"
            publishing_interval_ms = 1000
            [[tags]]
            tag = "a"
            node_id = "ns=2;s=A"
            sampling_interval_ms = 100
            deadband = 0.5
            [[tags]]
            tag = "b"
            node_id = "ns=2;i=7"
            "#,
        )
        .unwrap();
        let node = NodeId::from_str("ns=2;s=A").unwrap();
        let a = monitored_item(&server, 0, &node);
        assert_eq!(a.requested_parameters.client_handle, 1);
        assert_eq!(a.requested_parameters.queue_size, 11);
        assert_eq!(a.requested_parameters.sampling_interval, 100.0);
        assert!(!a.requested_parameters.filter.is_null());
        let b = monitored_item(&server, 1, &node);
        assert_eq!(b.requested_parameters.client_handle, 2);
        assert_eq!(b.requested_parameters.queue_size, 1);
        assert_eq!(b.requested_parameters.sampling_interval, -1.0);
        assert!(b.requested_parameters.filter.is_null());
    }
}
