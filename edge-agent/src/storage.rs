//! Background upkeep of the sample tiers: compaction of closed hours,
//! retention within the disk budget, and the storage status shown on the
//! dashboard and on `/metrics`.

use keelson_store::{
    CompactionReport, Db, RetentionPolicy, RetentionReport, StorageUsage, StoreError,
};
use keelson_web::metrics::{Gauge, Metrics};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DAY_MS: f64 = 86_400_000.0;

/// Disk budget, retention and compaction of sensor data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Bytes the vessel database may use. When it is reached the oldest raw
    /// blocks go first, then the oldest 1-minute rollups.
    #[serde(default = "default_budget")]
    pub budget_bytes: u64,
    /// Days raw samples are kept; unset keeps them until the budget needs room.
    #[serde(default)]
    pub raw_max_age_days: Option<f64>,
    /// Days 1-minute rollups are kept; unset keeps them until the budget needs room.
    #[serde(default)]
    pub minute_max_age_days: Option<f64>,
    /// Days hourly rollups are kept; unset keeps them for good. Rollups the
    /// shore has not acknowledged are kept whatever their age.
    #[serde(default)]
    pub hour_max_age_days: Option<f64>,
    /// Whether the rollups lane sends 1-minute rollups as well as hourly
    /// ones (on days when less than half the sync budget is spent), so that
    /// those the shore has not acknowledged must be kept.
    #[serde(default)]
    pub minute_rollups_synced: bool,
    /// Seconds between compaction and retention passes.
    #[serde(default = "default_every")]
    pub compact_every_secs: u64,
    /// Seconds after an hour ends before it is compacted, so samples that
    /// arrive a little late still land as rows.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
}

fn default_budget() -> u64 {
    64 * 1024 * 1024 * 1024
}

fn default_every() -> u64 {
    60
}

fn default_grace() -> u64 {
    120
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            budget_bytes: default_budget(),
            raw_max_age_days: None,
            minute_max_age_days: None,
            hour_max_age_days: None,
            minute_rollups_synced: false,
            compact_every_secs: default_every(),
            grace_secs: default_grace(),
        }
    }
}

impl RetentionConfig {
    /// The store's retention policy.
    pub fn policy(&self) -> RetentionPolicy {
        let ms = |days: Option<f64>| days.map(|d| (d * DAY_MS) as i64);
        RetentionPolicy {
            budget_bytes: self.budget_bytes,
            raw_max_age_ms: ms(self.raw_max_age_days),
            minute_max_age_ms: ms(self.minute_max_age_days),
            hour_max_age_ms: ms(self.hour_max_age_days),
            minute_rollups_synced: self.minute_rollups_synced,
        }
    }
}

/// Rows moved per compaction transaction: small enough that ingest waits
/// at most a fraction of a second, large enough to amortize the commit.
pub const ROWS_PER_TX: usize = 50_000;

/// One upkeep pass at `now_ms`: compacts every hour closed `grace_ms` ago,
/// then applies retention. Both the agent's background task and
/// `keelson-edge simulate` run exactly this.
pub fn maintain(
    db: &Db,
    policy: &RetentionPolicy,
    grace_ms: i64,
    now_ms: i64,
) -> Result<(CompactionReport, RetentionReport), StoreError> {
    let compacted = db.compact(now_ms - grace_ms, ROWS_PER_TX)?;
    let retained = db.enforce_retention(policy, now_ms)?;
    Ok((compacted, retained))
}

/// The last storage status, shared by the upkeep task and the pages.
#[derive(Clone)]
pub struct StorageStatus {
    last: Arc<Mutex<Option<StorageUsage>>>,
    gauges: Arc<Gauges>,
}

struct Gauges {
    used: Gauge,
    budget: Gauge,
    rows: Gauge,
    raw_blocks: Gauge,
    minute: Gauge,
    hour: Gauge,
    other: Gauge,
    headroom_days: Gauge,
}

impl StorageStatus {
    /// Registers the storage gauges.
    pub fn new(metrics: &Metrics) -> StorageStatus {
        StorageStatus {
            last: Arc::new(Mutex::new(None)),
            gauges: Arc::new(Gauges {
                used: metrics.gauge("storage_used_bytes", "Database pages in use, in bytes"),
                budget: metrics.gauge("storage_budget_bytes", "The disk budget, in bytes"),
                rows: metrics.gauge("storage_rows_bytes", "Hot sample rows, in bytes"),
                raw_blocks: metrics.gauge(
                    "storage_raw_block_bytes",
                    "Compressed raw sample blocks, in bytes",
                ),
                minute: metrics.gauge("storage_minute_rollup_bytes", "1-minute rollups, in bytes"),
                hour: metrics.gauge("storage_hour_rollup_bytes", "Hourly rollups, in bytes"),
                other: metrics.gauge(
                    "storage_other_bytes",
                    "Records, change log and page overhead, in bytes",
                ),
                headroom_days: metrics.gauge(
                    "storage_headroom_days",
                    "Whole days until the budget is reached at the recent growth (-1 unknown)",
                ),
            }),
        }
    }

    /// The last measured usage, if a pass has run.
    pub fn last(&self) -> Option<StorageUsage> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Publishes a new measurement.
    pub fn set(&self, u: StorageUsage) {
        let g = &self.gauges;
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        g.used.set(i(u.used_bytes));
        g.budget.set(i(u.budget_bytes));
        g.rows.set(i(u.rows_bytes));
        g.raw_blocks.set(i(u.raw_block_bytes));
        g.minute.set(i(u.minute_bytes));
        g.hour.set(i(u.hour_bytes));
        g.other.set(i(u.other_bytes));
        g.headroom_days
            .set(u.headroom_days.map_or(-1, |d| d.min(1e9) as i64));
        if let Ok(mut last) = self.last.lock() {
            *last = Some(u);
        }
    }
}

/// Runs upkeep passes every `compact_every_secs` until `cancel` fires. The
/// first pass runs at once, so the status is known soon after start.
pub async fn run(
    db: Db,
    config: RetentionConfig,
    status: StorageStatus,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.compact_every_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let policy = config.policy();
    let grace_ms = (config.grace_secs * 1000) as i64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let db = db.clone();
        let policy = policy.clone();
        let pass = tokio::task::spawn_blocking(move || {
            maintain(&db, &policy, grace_ms, keelson_store::now_ms())?;
            db.storage_usage(policy.budget_bytes)
        })
        .await;
        match pass {
            Ok(Ok(usage)) => status.set(usage),
            Ok(Err(e)) => tracing::error!(error = %e, "sample compaction or retention failed"),
            Err(e) => tracing::error!(error = %e, "sample upkeep task panicked"),
        }
    }
}
