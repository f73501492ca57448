//! The MQTT source task: one per broker.
//!
//! The task drives rumqttc's event loop. Each incoming publish is matched
//! against every tag's topic filter and decoded into samples. For QoS 1 the
//! acknowledgement is sent only after the samples were accepted by the
//! pipeline's channel (manual acks), so a message is never acknowledged and
//! then lost. When the connection drops, the event loop reconnects with
//! back-off; the persistent session brings back the subscriptions and the
//! messages queued meanwhile. If the broker lost the session (it restarted
//! without persistence), the subscriptions are made again.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use keelson_model::{Quality, Sample};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeFilter, TlsConfiguration,
    Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    config::{MqttBrokerConfig, MqttTagConfig, PayloadFormat, Qos},
    decode::{self, PayloadError},
    sparkplug,
};
use crate::{metrics::IngestMetrics, modbus::source::send, ratelog::RateLimitedLog};

/// The first reconnection delay; it doubles after each failure.
const BACKOFF_INITIAL: Duration = Duration::from_millis(200);

/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why the broker's options could not be built.
/// Why a broker's connection options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The CA file could not be read.
    #[error("reading the CA file {path}: {error}")]
    CaFile {
        /// The file.
        path: String,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The CA file has no PEM certificate.
    #[error("the CA file {0} holds no usable certificate")]
    NoCertificate(String),
    /// rustls refused the configuration.
    #[error("building the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// The rumqttc options for `broker`.
pub(crate) fn options(broker: &MqttBrokerConfig) -> Result<MqttOptions, OptionsError> {
    let mut options = MqttOptions::new(&broker.client_id, &broker.host, broker.port);
    options
        .set_keep_alive(broker.keep_alive())
        .set_clean_session(!broker.persistent_session)
        .set_manual_acks(true)
        // Acks are queued on the request channel while this task is the one
        // polling the event loop, so it must be roomy.
        .set_request_channel_capacity(4096);
    if let Some(user) = &broker.username {
        options.set_credentials(user, broker.password.clone().unwrap_or_default());
    }
    if broker.tls {
        let pem = match &broker.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|error| OptionsError::CaFile {
                path: path.display().to_string(),
                error,
            })?),
            None => None,
        };
        let config = tls_config(pem.as_deref()).map_err(|e| match e {
            OptionsError::NoCertificate(_) => OptionsError::NoCertificate(
                broker
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            other => other,
        })?;
        options.set_transport(Transport::tls_with_config(config));
    }
    Ok(options)
}

/// A TLS client configuration (rustls with the ring provider) trusting the
/// certificates in `ca_pem`. Without a CA file nothing is trusted, so the
/// broker's certificate must come from a configured CA: a ship's LAN has no
/// public certificate authority to fall back on.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<TlsConfiguration, OptionsError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(mut pem) = ca_pem {
        for cert in rustls_pemfile::certs(&mut pem).flatten() {
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(OptionsError::NoCertificate(String::new()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// A broker's decoding state.
struct MqttSource {
    broker: MqttBrokerConfig,
    metrics: IngestMetrics,
    decode_log: RateLimitedLog,
}

impl MqttSource {
    fn filters(&self) -> Vec<SubscribeFilter> {
        let mut topics: Vec<&str> = self.broker.tags.iter().map(|t| t.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
            .into_iter()
            .map(|t| SubscribeFilter::new(t.to_owned(), qos(self.broker.qos)))
            .collect()
    }

    /// Every sample the message carries: one per tag whose filter matches.
    fn decode(&mut self, publish: &Publish) -> Vec<Sample> {
        let arrived = Utc::now();
        let mut samples = Vec::new();
        // Parse a JSON or Sparkplug payload once for all its tags.
        let mut json: Option<Result<serde_json::Value, PayloadError>> = None;
        let mut spb: Option<Result<sparkplug::Payload, PayloadError>> = None;
        for tag in &self.broker.tags {
            if !rumqttc::matches(&publish.topic, &tag.topic) {
                continue;
            }
            let decoded = decode_tag(tag, &publish.payload, &mut json, &mut spb);
            let sample = match decoded.and_then(|(raw, ts)| {
                let value = raw * tag.scale + tag.offset;
                if value.is_finite() {
                    Ok((value, ts))
                } else {
                    Err(PayloadError::NotFinite)
                }
            }) {
                Ok((value, ts)) => Sample {
                    tag: tag.tag.clone(),
                    ts: ts.unwrap_or(arrived),
                    value: Some(value),
                    quality: Quality::Good,
                    text: None,
                },
                Err(e) => {
                    self.metrics.error(&self.broker.name, "decode");
                    let reason = format!("{e} (topic {})", publish.topic);
                    self.decode_log
                        .decode_failed(&self.broker.name, &tag.tag, &reason);
                    Sample {
                        tag: tag.tag.clone(),
                        ts: arrived,
                        value: None,
                        quality: Quality::Bad,
                        text: None,
                    }
                }
            };
            samples.push(sample);
        }
        samples
    }
}

type Decoded = Result<(f64, Option<chrono::DateTime<Utc>>), PayloadError>;

fn decode_tag(
    tag: &MqttTagConfig,
    payload: &[u8],
    json: &mut Option<Result<serde_json::Value, PayloadError>>,
    spb: &mut Option<Result<sparkplug::Payload, PayloadError>>,
) -> Decoded {
    match tag.format {
        PayloadFormat::Plain => decode::plain(payload).map(|v| (v, None)),
        PayloadFormat::Json => {
            let doc = json
                .get_or_insert_with(|| decode::parse_json(payload))
                .as_ref()
                .map_err(Clone::clone)?;
            let value = decode::json_value(doc, tag.pointer.as_deref().unwrap_or(""))?;
            let ts = match &tag.timestamp_pointer {
                Some(p) => Some(decode::json_timestamp(doc, p)?),
                None => None,
            };
            Ok((value, ts))
        }
        PayloadFormat::Sparkplug => {
            let decoded = spb
                .get_or_insert_with(|| sparkplug::decode(payload))
                .as_ref()
                .map_err(Clone::clone)?;
            sparkplug::metric_value(decoded, tag.metric.as_deref().unwrap_or(""))
        }
    }
}

/// Reads one broker until `cancel` fires or the pipeline closes.
pub(crate) async fn run(
    broker: MqttBrokerConfig,
    tx: mpsc::Sender<Vec<Sample>>,
    metrics: IngestMetrics,
    cancel: CancellationToken,
) {
    let options = match options(&broker) {
        Ok(options) => options,
        Err(e) => {
            metrics.error(&broker.name, "connect");
            tracing::error!(broker = %broker.name, error = %e, "cannot set up mqtt broker; not reading it");
            return;
        }
    };
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut source = MqttSource {
        broker,
        metrics,
        decode_log: RateLimitedLog::default(),
    };
    let filters = source.filters();
    let mut backoff = BACKOFF_INITIAL;
    let mut down_since_logged = false;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = BACKOFF_INITIAL;
                tracing::info!(
                    broker = %source.broker.name,
                    session_present = ack.session_present,
                    "connected to mqtt broker"
                );
                down_since_logged = false;
                // A kept session still has its subscriptions; subscribing again
                // anyway is harmless and covers a broker that lost its state.
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tracing::warn!(broker = %source.broker.name, error = %e, "cannot queue mqtt subscription");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let samples = source.decode(&publish);
                source.metrics.produced(&source.broker.name, samples.len());
                if publish.qos == QoS::AtMostOnce {
                    // QoS 0 promises nothing; never stall the event loop (and
                    // with it the keep-alive) on a full pipeline.
                    if let Err(e) = tx.try_send(samples) {
                        let n = match &e {
                            mpsc::error::TrySendError::Full(s)
                            | mpsc::error::TrySendError::Closed(s) => s.len(),
                        };
                        source.metrics.dropped.inc_by(n as u64);
                        if matches!(e, mpsc::error::TrySendError::Closed(_)) {
                            break;
                        }
                    }
                } else {
                    if !send(&tx, samples, &cancel).await {
                        break;
                    }
                    // Only now is the message safely in the pipeline.
                    if let Err(e) = client.try_ack(&publish) {
                        tracing::debug!(broker = %source.broker.name, error = %e, "cannot queue mqtt ack; the broker will resend");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                source.metrics.error(&source.broker.name, "connect");
                if down_since_logged {
                    tracing::debug!(broker = %source.broker.name, error = %e, "mqtt broker still unreachable");
                } else {
                    tracing::warn!(broker = %source.broker.name, error = %e, "lost mqtt broker; reconnecting with back-off");
                    down_since_logged = true;
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // A clean disconnect keeps the session on the broker for next time.
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
}
