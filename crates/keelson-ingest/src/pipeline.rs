//! The ingest pipeline: sources, the batching writer and the live view.
//!
//! Every source task sends its samples into one bounded channel. A single
//! writer task gathers them into batches (up to [`MAX_BATCH`] samples, or
//! whatever arrived within [`MAX_BATCH_DELAY`] of the first one) and hands each
//! batch to the [`SampleSink`] on the blocking thread pool, because sinks such
//! as SQLite block, and gathers the next batch meanwhile. After the write it
//! updates [`LatestValues`].
//!
//! The channel is bounded so a stalled sink slows the sources down instead of
//! growing memory without limit. A failing sink does not stop the pipeline: the
//! failure is logged, that batch is lost, and the next batch is tried as usual.
//! The live view is updated even when the write failed, because on a ship the
//! current engine values matter more than their history; it never shows a value
//! before the write of that value was at least attempted.
//!
//! Shutdown: cancelling the token stops the sources; the writer then drains the
//! channel, writes the last batch and ends, so nothing accepted is dropped.

use std::{
    collections::BTreeMap,
    error::Error as StdError,
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use keelson_model::{Quality, Sample, TagValue};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{IngestConfig, IngestError, metrics::IngestMetrics, modbus, mqtt, opcua};

/// The most samples written in one batch. Large batches amortise the cost of
/// a SQLite commit; the delay below bounds how long a sample waits when
/// traffic is light.
pub const MAX_BATCH: usize = 10_000;

/// The longest a sample waits in the writer before its batch is written.
pub const MAX_BATCH_DELAY: Duration = Duration::from_millis(250);

/// How many per-poll sample groups may wait in the channel.
const CHANNEL_CAPACITY: usize = 256;

/// While a sink keeps failing, how often its failures are logged again.
const SINK_FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Where ingested samples are stored.
///
/// `write_batch` is blocking: the pipeline calls it from
/// `tokio::task::spawn_blocking`, one batch at a time, so implementations may do
/// synchronous disk I/O and need no internal queueing.
pub trait SampleSink: Send + Sync + 'static {
    /// Stores `samples` (a batch from one or more devices, in arrival order).
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError>;
}

/// A sink's failure to store a batch.
///
/// It wraps any error (or a plain message) so sinks need not share an error
/// type with ingest; the pipeline only logs it.
pub struct SinkError(Box<dyn StdError + Send + Sync + 'static>);

impl SinkError {
    /// Wraps an error or a message (`&str` and `String` work too).
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> SinkError {
        SinkError(error.into())
    }

    /// The wrapped error.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl fmt::Debug for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // The wrapped error's own text is already this error's message, so the
        // chain continues from its cause.
        self.0.source()
    }
}

/// The latest value of every configured tag, shared with the UI.
///
/// Cloning is cheap: clones share the same values. Tags are fixed when the
/// value is created; samples for unknown tags are ignored. Until its first
/// sample a tag has no value, bad quality and no timestamp.
#[derive(Clone)]
pub struct LatestValues {
    inner: Arc<LatestInner>,
}

struct LatestInner {
    values: RwLock<BTreeMap<String, TagValue>>,
    changes: watch::Sender<u64>,
}

impl fmt::Debug for LatestValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatestValues")
            .field("tags", &self.read().len())
            .field("changes", &*self.inner.changes.borrow())
            .finish()
    }
}

impl LatestValues {
    /// Holds the given `(tag, unit)` pairs.
    pub fn new<I, N, U>(tags: I) -> LatestValues
    where
        I: IntoIterator<Item = (N, U)>,
        N: Into<String>,
        U: Into<String>,
    {
        let values = tags
            .into_iter()
            .map(|(name, unit)| {
                let name = name.into();
                let value = TagValue {
                    name: name.clone(),
                    value: None,
                    unit: unit.into(),
                    quality: Quality::Bad,
                    ts: None,
                    text: None,
                };
                (name, value)
            })
            .collect();
        let (changes, _) = watch::channel(0);
        LatestValues {
            inner: Arc::new(LatestInner {
                values: RwLock::new(values),
                changes,
            }),
        }
    }

    /// Holds every tag of `config` with its configured unit.
    pub fn from_config(config: &IngestConfig) -> LatestValues {
        LatestValues::new(config.tags())
    }

    /// Every tag's latest value, sorted by name.
    pub fn snapshot(&self) -> Vec<TagValue> {
        self.read().values().cloned().collect()
    }

    /// One tag's latest value.
    pub fn get(&self, name: &str) -> Option<TagValue> {
        self.read().get(name).cloned()
    }

    /// Records one sample and notifies subscribers.
    pub fn update(&self, sample: &Sample) {
        self.update_batch(std::slice::from_ref(sample));
    }

    /// Records a batch of samples and notifies subscribers once.
    ///
    /// A sample older than the value already held is ignored, so a late batch
    /// cannot roll the live view back.
    pub fn update_batch(&self, samples: &[Sample]) {
        let mut changed = false;
        {
            let mut values = match self.inner.values.write() {
                Ok(guard) => guard,
                // The map holds plain data that is never left half-updated, so
                // a panic elsewhere while holding the lock does not corrupt it.
                Err(poisoned) => poisoned.into_inner(),
            };
            for sample in samples {
                let Some(current) = values.get_mut(&sample.tag) else {
                    continue;
                };
                if current.ts.is_some_and(|ts| ts > sample.ts) {
                    continue;
                }
                current.value = sample.value;
                current.text.clone_from(&sample.text);
                current.quality = sample.quality;
                current.ts = Some(sample.ts);
                changed = true;
            }
        }
        if changed {
            self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Marks tags whose value is older than `max_age` (wall clock) as
    /// uncertain, keeping the value, and notifies subscribers if any changed.
    /// Returns how many tags turned stale.
    pub fn mark_stale(&self, max_age: Duration) -> usize {
        let Ok(max_age) = chrono::Duration::from_std(max_age) else {
            return 0;
        };
        let cutoff = chrono::Utc::now() - max_age;
        let mut turned = 0;
        {
            let mut values = match self.inner.values.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            for value in values.values_mut() {
                if value.quality == Quality::Good && value.ts.is_some_and(|ts| ts < cutoff) {
                    value.quality = Quality::Uncertain;
                    turned += 1;
                }
            }
        }
        if turned > 0 {
            self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        turned
    }

    /// A counter that increases whenever any value changes. The UI waits on
    /// `changed()` and then takes a [`LatestValues::snapshot`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, TagValue>> {
        match self.inner.values.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running ingest pipeline.
#[derive(Debug)]
pub struct IngestHandle {
    /// The latest value of every configured tag.
    pub latest: LatestValues,
    /// Ingest's metrics, for the agent to register on `/metrics`.
    pub metrics: IngestMetrics,
    tasks: Vec<JoinHandle<()>>,
}

impl IngestHandle {
    /// Waits for every source and the writer to finish. They finish after the
    /// cancellation token passed to [`start`] is cancelled and the writer has
    /// written what was still queued.
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "ingest task ended abnormally");
            }
        }
    }
}

/// Validates `config` and starts one source task per device and the writer.
///
/// Must be called from within a Tokio runtime. Samples go to `sink`; the latest
/// values are in the returned handle. Cancel `cancel` to stop, then
/// [`IngestHandle::join`].
pub fn start(
    config: &IngestConfig,
    sink: Arc<dyn SampleSink>,
    cancel: CancellationToken,
) -> Result<IngestHandle, IngestError> {
    config.validate()?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| IngestError::NoRuntime)?;

    let latest = LatestValues::from_config(config);
    let metrics = IngestMetrics::new();
    let (tx, writer) = spawn_writer(&runtime, sink, latest.clone(), metrics.clone());
    let mut tasks =
        Vec::with_capacity(config.modbus.len() + config.mqtt.len() + config.opcua.len() + 2);
    let buses = modbus::source::rtu_buses(&config.modbus);
    for device in &config.modbus {
        let bus = match device.transport {
            modbus::Transport::Rtu => buses.get(&device.serial_port).cloned(),
            modbus::Transport::Tcp => None,
        };
        tasks.push(runtime.spawn(modbus::source::run(
            device.clone(),
            bus,
            tx.clone(),
            metrics.clone(),
            cancel.clone(),
        )));
    }
    for broker in &config.mqtt {
        tasks.push(runtime.spawn(mqtt::source::run(
            broker.clone(),
            tx.clone(),
            metrics.clone(),
            cancel.clone(),
        )));
    }
    for server in &config.opcua {
        tasks.push(runtime.spawn(opcua::source::run(
            server.clone(),
            tx.clone(),
            metrics.clone(),
            cancel.clone(),
        )));
    }
    // The writer ends when every source has dropped its sender, so the
    // original must not outlive this function.
    drop(tx);
    tasks.push(writer);
    if config.stale_after_ms > 0 {
        tasks.push(runtime.spawn(stale_loop(
            latest.clone(),
            Duration::from_millis(config.stale_after_ms),
            cancel.clone(),
        )));
    }
    tracing::info!(
        modbus_devices = config.modbus.len(),
        mqtt_brokers = config.mqtt.len(),
        opcua_servers = config.opcua.len(),
        tags = config.tags().count(),
        "ingest started"
    );
    Ok(IngestHandle {
        latest,
        metrics,
        tasks,
    })
}

/// Starts only the batching writer on `runtime`: what is sent on the returned
/// channel is written to `sink` in batches and then shown in `latest`. The
/// writer ends after every clone of the sender is dropped and the last batch
/// is written. [`start`] uses it for the sources; benchmarks and tests use it
/// to push samples directly.
pub fn spawn_writer(
    runtime: &tokio::runtime::Handle,
    sink: Arc<dyn SampleSink>,
    latest: LatestValues,
    metrics: IngestMetrics,
) -> (mpsc::Sender<Vec<Sample>>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = runtime.spawn(write_loop(rx, sink, latest, metrics));
    (tx, task)
}

/// Applies the stale rule until cancelled.
async fn stale_loop(latest: LatestValues, max_age: Duration, cancel: CancellationToken) {
    // Checking ten times per stale period keeps the flag within 10 % of the
    // configured age without measurable cost.
    let period = (max_age / 10).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let turned = latest.mark_stale(max_age);
        if turned > 0 {
            tracing::debug!(tags = turned, "tags turned stale");
        }
    }
}

/// What a write on the blocking pool hands back: the batch and its outcome.
type Write = JoinHandle<(Vec<Sample>, Result<(), SinkError>)>;

/// Gathers samples into batches and writes them until every source is gone.
///
/// One batch is written while the next one gathers, so the sink never waits
/// for the channel and the channel never waits for the sink, and batches
/// still reach the sink one at a time, in order.
async fn write_loop(
    mut rx: mpsc::Receiver<Vec<Sample>>,
    sink: Arc<dyn SampleSink>,
    latest: LatestValues,
    metrics: IngestMetrics,
) {
    let mut batch: Vec<Sample> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut writing: Option<Write> = None;
    let mut failures = SinkFailures::default();
    let mut open = true;
    let mut written = None;
    loop {
        let due = !batch.is_empty()
            && (batch.len() >= MAX_BATCH
                || !open
                || deadline.is_some_and(|at| at <= Instant::now()));
        if due && writing.is_none() {
            let samples = std::mem::take(&mut batch);
            let sink = Arc::clone(&sink);
            writing = Some(tokio::task::spawn_blocking(move || {
                let result = sink.write_batch(&samples);
                (samples, result)
            }));
            deadline = None;
        }
        // The live view catches up while the next batch is being written.
        if let Some(done) = written.take() {
            finish(done, &latest, &metrics, &mut failures);
        }
        if !open && writing.is_none() && batch.is_empty() {
            break;
        }
        tokio::select! {
            done = async {
                match writing.as_mut() {
                    Some(write) => write.await,
                    None => std::future::pending().await,
                }
            }, if writing.is_some() => {
                writing = None;
                written = Some(done);
            }
            // A full batch pauses receiving until the write before it ends,
            // which slows the sources through the bounded channel.
            received = rx.recv(), if open && batch.len() < MAX_BATCH => match received {
                Some(samples) => {
                    metrics.queue_depth.set(rx.len() as i64);
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + MAX_BATCH_DELAY);
                    }
                    batch.extend(samples);
                }
                None => open = false,
            },
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }, if deadline.is_some() && writing.is_none() => {}
        }
    }
    tracing::debug!("ingest writer finished");
}

/// Takes note of a finished write, then updates the live view.
fn finish(
    written: Result<(Vec<Sample>, Result<(), SinkError>), tokio::task::JoinError>,
    latest: &LatestValues,
    metrics: &IngestMetrics,
    failures: &mut SinkFailures,
) {
    match written {
        Ok((samples, Ok(()))) => {
            failures.succeeded();
            latest.update_batch(&samples);
        }
        Ok((samples, Err(e))) => {
            metrics.dropped.inc_by(samples.len() as u64);
            metrics.error("writer", "sink");
            failures.failed(samples.len(), &e);
            latest.update_batch(&samples);
        }
        Err(e) => {
            // The sink panicked (or the runtime is shutting down); the batch
            // is gone with the blocking task.
            tracing::error!(error = %e, "sample sink panicked; batch lost");
        }
    }
}

/// Tracks a run of sink failures so a persistent fault is logged at a steady
/// pace instead of once per batch.
#[derive(Default)]
struct SinkFailures {
    /// Failed batches and samples since the last log line.
    unlogged_batches: u64,
    unlogged_samples: u64,
    /// When the current run of failures was last logged.
    last_logged: Option<Instant>,
}

impl SinkFailures {
    fn failed(&mut self, samples: usize, error: &SinkError) {
        self.unlogged_batches += 1;
        self.unlogged_samples += samples as u64;
        let due = self
            .last_logged
            .is_none_or(|at| at.elapsed() >= SINK_FAILURE_LOG_EVERY);
        if due {
            tracing::warn!(
                error = %error,
                failed_batches = self.unlogged_batches,
                lost_samples = self.unlogged_samples,
                "sample sink failed; dropping batch and continuing"
            );
            self.unlogged_batches = 0;
            self.unlogged_samples = 0;
            self.last_logged = Some(Instant::now());
        }
    }

    fn succeeded(&mut self) {
        if self.last_logged.is_some() {
            tracing::info!(
                failed_batches = self.unlogged_batches,
                lost_samples = self.unlogged_samples,
                "sample sink is writing again"
            );
            *self = SinkFailures::default();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn sample(tag: &str, secs: i64, value: Option<f64>, quality: Quality) -> Sample {
        Sample {
            tag: tag.to_owned(),
            ts: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            value,
            quality,
            text: None,
        }
    }

    #[test]
    fn latest_values_start_bad_and_sorted() {
        let latest = LatestValues::new([("b", "bar"), ("a", "rpm")]);
        let snapshot = latest.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot[0].name, "a");
        assert_eq!(snapshot[0].unit, "rpm");
        assert_eq!(snapshot[0].quality, Quality::Bad);
        assert_eq!(snapshot[0].value, None);
        assert_eq!(snapshot[0].ts, None);
        assert_eq!(snapshot[1].name, "b");
    }

    #[test]
    fn latest_values_update_notify_and_ignore_stale() {
        let latest = LatestValues::new([("a", "rpm")]);
        let mut changes = latest.subscribe();
        assert!(!changes.has_changed().unwrap());

        latest.update(&sample("a", 10, Some(1.0), Quality::Good));
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        let a = latest.get("a").unwrap();
        assert_eq!((a.value, a.quality), (Some(1.0), Quality::Good));

        // Older than what is held: ignored, no notification.
        latest.update(&sample("a", 5, Some(2.0), Quality::Good));
        assert_eq!(latest.get("a").unwrap().value, Some(1.0));
        // Unknown tag: ignored.
        latest.update(&sample("zz", 20, Some(2.0), Quality::Good));
        assert!(latest.get("zz").is_none());
        assert!(!changes.has_changed().unwrap());

        latest.update(&sample("a", 11, None, Quality::Bad));
        let a = latest.get("a").unwrap();
        assert_eq!((a.value, a.quality), (None, Quality::Bad));
        assert!(changes.has_changed().unwrap());
    }

    #[test]
    fn stale_rule_marks_old_good_values_uncertain() {
        let latest = LatestValues::new([("old", ""), ("fresh", ""), ("bad", "")]);
        let now = Utc::now();
        latest.update_batch(&[
            Sample {
                tag: "old".into(),
                ts: now - chrono::Duration::seconds(30),
                value: Some(1.0),
                quality: Quality::Good,
                text: None,
            },
            Sample {
                tag: "fresh".into(),
                ts: now,
                value: Some(2.0),
                quality: Quality::Good,
                text: None,
            },
            sample("bad", 0, None, Quality::Bad),
        ]);
        let mut changes = latest.subscribe();
        changes.borrow_and_update();
        assert_eq!(latest.mark_stale(Duration::from_secs(10)), 1);
        assert!(changes.has_changed().unwrap());
        let old = latest.get("old").unwrap();
        // The value stays visible; only its quality says it is stale.
        assert_eq!((old.value, old.quality), (Some(1.0), Quality::Uncertain));
        assert_eq!(latest.get("fresh").unwrap().quality, Quality::Good);
        assert_eq!(latest.get("bad").unwrap().quality, Quality::Bad);
        // Already stale: nothing changes the second time.
        assert_eq!(latest.mark_stale(Duration::from_secs(10)), 0);
        // A new good sample clears it.
        latest.update(&Sample {
            tag: "old".into(),
            ts: Utc::now(),
            value: Some(3.0),
            quality: Quality::Good,
            text: None,
        });
        assert_eq!(latest.get("old").unwrap().quality, Quality::Good);
    }

    #[test]
    fn sink_error_wraps_messages_and_errors() {
        let e = SinkError::new("disk full");
        assert_eq!(e.to_string(), "disk full");
        let io = std::io::Error::other("database is locked");
        let e = SinkError::new(io);
        assert_eq!(e.to_string(), "database is locked");
        assert!(e.inner().is::<std::io::Error>());
    }
}
