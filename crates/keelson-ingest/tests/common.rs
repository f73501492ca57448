//! Helpers shared by the ingest tests against real peers.

#![allow(clippy::unwrap_used, dead_code)]

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use keelson_ingest::{LatestValues, SampleSink, SinkError, metrics::ErrorLabels};
use keelson_model::{Sample, TagValue};

/// How long any condition may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A sink that keeps everything it is given.
#[derive(Default)]
pub struct VecSink {
    samples: Mutex<Vec<Sample>>,
}

impl VecSink {
    /// A copy of everything stored so far.
    pub fn stored(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }
}

impl SampleSink for VecSink {
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError> {
        self.samples.lock().unwrap().extend_from_slice(samples);
        Ok(())
    }
}

/// Waits until `ready` holds for the latest values, re-checking on each change.
pub async fn wait_until(
    latest: &LatestValues,
    what: &str,
    ready: impl Fn(&[TagValue]) -> bool,
) -> Vec<TagValue> {
    let mut changes = latest.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let snapshot = latest.snapshot();
        if ready(&snapshot) {
            return snapshot;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!("timed out waiting for {what}; last values: {snapshot:#?}"),
        }
    }
}

/// Polls `ready` every 20 ms until it holds.
pub async fn poll_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of tag `name` in a snapshot.
pub fn value_of(values: &[TagValue], name: &str) -> TagValue {
    values
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no tag {name}"))
        .clone()
}

/// The count of errors of `kind` at `source`.
pub fn errors(metrics: &keelson_ingest::IngestMetrics, source: &str, kind: &str) -> u64 {
    metrics
        .errors
        .get_or_create(&ErrorLabels {
            source: source.into(),
            kind: kind.into(),
        })
        .get()
}
