//! Ingest's Prometheus metrics.
//!
//! The metrics are plain prometheus-client values that count as ingest runs;
//! the agent registers them in its `/metrics` registry with
//! [`IngestMetrics::register`]. Every series is labelled with the source (the
//! device or broker name) so one misbehaving device stands out.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels naming a source.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The device or broker name from the configuration.
    pub source: String,
}

/// Labels naming a source and a kind of error.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The device or broker name from the configuration.
    pub source: String,
    /// What went wrong: `connect`, `timeout`, `transport`, `exception`,
    /// `decode`, `sink`; for OPC-UA also `certificate` (the server's or the
    /// agent's own), `login` (user name and password refused), `status`
    /// (the server reported a bad value),
    /// `subscription` (a subscription or monitored item the server refused)
    /// and `read` (a failed poll).
    pub kind: String,
}

/// Every ingest metric; clones share the same values.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// Samples produced, by source; `rate()` of it is samples/s per source.
    pub samples: Family<SourceLabels, Counter>,
    /// How long one poll of a device took, in seconds.
    pub poll_latency: Family<SourceLabels, Histogram>,
    /// Errors by source and kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Sample groups waiting in the channel to the writer.
    pub queue_depth: Gauge,
    /// Samples lost: a failed write, or a full queue for sources that cannot
    /// wait (MQTT QoS 0, OPC-UA data changes).
    pub dropped: Counter,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics::new()
    }
}

impl IngestMetrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> IngestMetrics {
        IngestMetrics {
            samples: Family::default(),
            // 1 ms to about 16 s.
            poll_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            errors: Family::default(),
            queue_depth: Gauge::default(),
            dropped: Counter::default(),
        }
    }

    /// Registers every metric in `registry` under `ingest_…` names.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ingest_samples",
            "Samples produced by each source",
            self.samples.clone(),
        );
        registry.register(
            "ingest_poll_latency_seconds",
            "Duration of one poll of a device",
            self.poll_latency.clone(),
        );
        registry.register(
            "ingest_errors",
            "Ingest errors by source and kind",
            self.errors.clone(),
        );
        registry.register(
            "ingest_queue_depth",
            "Sample groups waiting for the writer",
            self.queue_depth.clone(),
        );
        registry.register(
            "ingest_dropped_samples",
            "Samples lost before reaching storage",
            self.dropped.clone(),
        );
    }

    /// Counts `n` samples from `source`.
    pub fn produced(&self, source: &str, n: usize) {
        self.samples
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc_by(n as u64);
    }

    /// Counts one error of `kind` at `source`.
    pub fn error(&self, source: &str, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                source: source.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Records one poll's duration.
    pub fn poll_took(&self, source: &str, seconds: f64) {
        self.poll_latency
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .observe(seconds);
    }
}
