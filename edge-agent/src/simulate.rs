//! `keelson-edge simulate`: days of realistic sensor data written in
//! simulated time through the real write path (`Db::insert_samples`, in
//! ingest-sized batches) and the real upkeep (`storage::maintain`, once per
//! simulated hour), as fast as the machine allows. It reports disk use and
//! bytes per sample.
//!
//! Every value is quantized the way Modbus ingest produces it, a 16-bit
//! register times a scale plus an offset, because that is what the codec
//! sees on a real vessel.

use crate::storage::{self, RetentionConfig};
use keelson_model::{Quality, Sample};
use keelson_store::{Db, Site, StorageUsage};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const HOUR_S: i64 = 3600;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Simulated hours (days × 24 unless set otherwise).
    pub hours: u32,
    /// Tags, each sampled at 1 Hz.
    pub tags: u32,
    /// Where the database goes (created when missing).
    pub data_dir: PathBuf,
    /// The retention configuration in force.
    pub retention: RetentionConfig,
    /// The simulated start, ms since the epoch (a whole hour).
    pub start_ms: i64,
    /// Seconds of samples written per transaction (a divisor of an hour);
    /// `None` picks about 100,000 samples per transaction.
    pub batch_secs: Option<u32>,
}

impl SimulateOptions {
    /// Defaults for `days` × `tags` into `data_dir`.
    pub fn new(days: u32, tags: u32, data_dir: PathBuf) -> SimulateOptions {
        SimulateOptions {
            hours: days * 24,
            tags,
            data_dir,
            retention: RetentionConfig {
                budget_bytes: u64::MAX,
                ..RetentionConfig::default()
            },
            // 2026-01-01T00:00:00Z.
            start_ms: 1_767_225_600_000,
            batch_secs: None,
        }
    }
}

/// What a simulation measured.
#[derive(Debug, Clone)]
pub struct SimulateReport {
    /// Samples written.
    pub samples: u64,
    /// Samples stored at the end (fewer than written only if retention dropped some).
    pub stored: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Wall time spent writing rows.
    pub write_time: Duration,
    /// Wall time spent in compaction and retention.
    pub compaction_time: Duration,
    /// Rows compacted into blocks.
    pub compacted: u64,
    /// Disk use at the end.
    pub usage: StorageUsage,
}

impl SimulateReport {
    /// Database bytes in use per sample written.
    pub fn bytes_per_sample(&self) -> f64 {
        self.usage.used_bytes as f64 / self.samples.max(1) as f64
    }

    /// Compressed raw-block bytes per sample they hold.
    pub fn block_bytes_per_sample(&self) -> f64 {
        self.usage.raw_block_bytes as f64 / self.usage.block_samples.max(1) as f64
    }

    /// Rows compacted per second of compaction time.
    pub fn compaction_per_s(&self) -> f64 {
        self.compacted as f64 / self.compaction_time.as_secs_f64().max(1e-9)
    }
}

/// A small deterministic generator for the simulated noise (xorshift64*),
/// so runs are repeatable.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0 and deviation 1 (sum of four uniforms).
    fn normal(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
}

/// The kinds of signal a vessel's tags carry.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A pressure or flow: noisy, drifting, scale 0.01.
    Analog,
    /// A speed or load following a set point that steps now and then.
    Steps,
    /// A pump or valve: 0 or 1, changing rarely.
    OnOff,
    /// A temperature: slow, smooth, scale 0.1.
    Temperature,
    /// A running-hours or energy counter: only ever grows.
    Counter,
}

struct Signal {
    kind: Kind,
    noise: Noise,
    scale: f64,
    offset: f64,
    level: f64,
    target: f64,
    phase: f64,
}

impl Signal {
    fn new(index: u32) -> Signal {
        let kind = match index % 5 {
            0 => Kind::Analog,
            1 => Kind::Steps,
            2 => Kind::OnOff,
            3 => Kind::Temperature,
            _ => Kind::Counter,
        };
        let mut noise = Noise(
            0x9e37_79b9_7f4a_7c15 ^ (u64::from(index) + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        );
        let (scale, offset, level) = match kind {
            Kind::Analog => (0.01, 0.0, 20_000.0 + noise.unit() * 10_000.0),
            Kind::Steps => (0.1, 0.0, 5_000.0),
            Kind::OnOff => (1.0, 0.0, 0.0),
            Kind::Temperature => (0.1, -50.0, 1_000.0 + noise.unit() * 2_000.0),
            Kind::Counter => (1.0, 0.0, noise.unit() * 1_000.0),
        };
        Signal {
            kind,
            scale,
            offset,
            level,
            target: level,
            phase: noise.unit() * std::f64::consts::TAU,
            noise,
        }
    }

    /// The register value at second `t`, or `None` when the device failed.
    fn step(&mut self, t: i64) -> Option<u16> {
        // One read in ten thousand fails, as a flaky device would.
        if self.noise.next().is_multiple_of(10_000) {
            return None;
        }
        let raw = match self.kind {
            Kind::Analog => {
                // A slow random walk (drift) plus a couple of counts of
                // sensor noise.
                self.level += self.noise.normal() * 0.5;
                self.level = self.level.clamp(1_000.0, 60_000.0);
                self.level + self.noise.normal() * 2.0
            }
            Kind::Steps => {
                if self.noise.next().is_multiple_of(900) {
                    self.target = 2_000.0 + self.noise.unit() * 6_000.0;
                }
                // The process follows its set point with a lag.
                self.level += (self.target - self.level) * 0.05;
                self.level + self.noise.normal()
            }
            Kind::OnOff => {
                if self.noise.next().is_multiple_of(1_800) {
                    self.level = 1.0 - self.level;
                }
                self.level
            }
            Kind::Temperature => {
                let day = (t as f64 / 86_400.0) * std::f64::consts::TAU + self.phase;
                self.level += self.noise.normal() * 0.02;
                self.level + day.sin() * 30.0 + self.noise.normal() * 0.3
            }
            Kind::Counter => {
                // Running hours in seconds, wrapping like a 16-bit register.
                self.level += 1.0;
                self.level % 65_536.0
            }
        };
        Some(raw.round().clamp(0.0, 65_535.0) as u16)
    }
}

/// Runs a simulation; `progress` is called after every simulated hour with
/// the hours done.
pub fn simulate(
    opts: &SimulateOptions,
    mut progress: impl FnMut(i64, &SimulateReport),
) -> anyhow::Result<SimulateReport> {
    use anyhow::Context;
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    let db = Db::open(&opts.data_dir, Site::Edge).context("opening the database")?;
    let names: Vec<String> = (0..opts.tags)
        .map(|i| {
            let kind = ["analog", "steps", "onoff", "temp", "counter"][(i % 5) as usize];
            format!("sim.{kind}.{i:05}")
        })
        .collect();
    db.register_tags(
        &names
            .iter()
            .map(|n| (n.clone(), String::new()))
            .collect::<Vec<_>>(),
    )
    .context("registering tags")?;
    let mut signals: Vec<Signal> = (0..opts.tags).map(Signal::new).collect();
    let policy = opts.retention.policy();
    let grace_ms = (opts.retention.grace_secs * 1000) as i64;

    let started = Instant::now();
    let mut report = SimulateReport {
        samples: 0,
        stored: 0,
        elapsed: Duration::ZERO,
        write_time: Duration::ZERO,
        compaction_time: Duration::ZERO,
        compacted: 0,
        usage: StorageUsage::default(),
    };
    let total_s = i64::from(opts.hours) * HOUR_S;
    // Hour boundaries must fall between batches, so a batch is a divisor
    // of an hour.
    let batch_s: i64 = match opts.batch_secs {
        Some(secs) => i64::from(secs.max(1)),
        None => [3600, 1800, 900, 600, 300, 120, 60, 30, 10, 5, 1]
            .into_iter()
            .find(|secs| secs * i64::from(opts.tags.max(1)) <= 100_000)
            .unwrap_or(1),
    };
    anyhow::ensure!(HOUR_S % batch_s == 0, "a batch must divide an hour");
    let mut batch: Vec<Sample> = Vec::with_capacity((batch_s * i64::from(opts.tags)) as usize);
    let mut t = 0;
    while t < total_s {
        let end = (t + batch_s).min(total_s);
        batch.clear();
        // Tag-major order, as a batching writer that groups by device would
        // hand them over; the store keys rows by tag, so this is also the
        // cheaper order to insert.
        for (name, signal) in names.iter().zip(signals.iter_mut()) {
            for s in t..end {
                let raw = signal.step(s);
                batch.push(Sample {
                    tag: name.clone(),
                    ts: chrono::DateTime::from_timestamp_millis(opts.start_ms + s * 1000)
                        .unwrap_or_default(),
                    value: raw.map(|r| f64::from(r) * signal.scale + signal.offset),
                    quality: if raw.is_some() {
                        Quality::Good
                    } else {
                        Quality::Bad
                    },
                    text: None,
                });
            }
        }
        let w = Instant::now();
        db.insert_samples(&batch).context("writing samples")?;
        report.write_time += w.elapsed();
        report.samples += batch.len() as u64;
        t = end;
        // The upkeep pass runs when the simulated clock passes an hour plus
        // the grace, as the agent's task would; at the end the clock runs
        // on past the grace so every hour is closed.
        let crossed = t % HOUR_S == 0 || t == total_s;
        if crossed {
            let now_ms = opts.start_ms + t * 1000 + if t == total_s { grace_ms } else { 0 };
            let c = Instant::now();
            let (compacted, _) =
                storage::maintain(&db, &policy, grace_ms, now_ms).context("compacting")?;
            report.compaction_time += c.elapsed();
            report.compacted += compacted.samples;
            report.elapsed = started.elapsed();
            progress(t / HOUR_S, &report);
        }
    }
    report.usage = db
        .storage_usage(policy.budget_bytes)
        .context("measuring disk use")?;
    report.stored = db.sample_count().context("counting samples")?;
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_run_compacts_everything_and_stays_within_its_budget() {
        // Unbounded first, to learn what two days of these tags take.
        let free = tempfile::tempdir().expect("tempdir");
        let opts = SimulateOptions::new(2, 3, free.path().to_owned());
        let r = simulate(&opts, |_, _| {}).expect("simulate");
        assert_eq!(r.samples, 2 * 86_400 * 3);
        assert_eq!(r.stored, r.samples, "nothing lost, nothing doubled");
        assert_eq!(
            r.usage.block_samples, r.samples,
            "every closed hour compacted"
        );
        assert!(
            r.bytes_per_sample() < 2.0,
            "{} bytes per sample",
            r.bytes_per_sample()
        );

        // Then with a budget well below that: raw blocks go, oldest first,
        // and the database ends within the budget with every hourly rollup.
        let tight = tempfile::tempdir().expect("tempdir");
        let mut opts = SimulateOptions::new(2, 3, tight.path().to_owned());
        opts.retention.budget_bytes = r.usage.used_bytes * 6 / 10;
        let b = simulate(&opts, |_, _| {}).expect("simulate");
        assert!(b.usage.used_bytes <= opts.retention.budget_bytes);
        assert!(
            b.stored < b.samples,
            "raw samples were dropped to make room"
        );
        assert!(b.usage.oldest_raw_ms > Some(opts.start_ms));
        assert_eq!(b.usage.oldest_hour_ms, Some(opts.start_ms));
        let db = Db::open(tight.path(), Site::Edge).expect("open");
        let hours = db
            .series(
                "sim.analog.00000",
                opts.start_ms,
                opts.start_ms + 2 * 86_400_000 - 1,
                Some(keelson_store::Resolution::Hour),
                1000,
            )
            .expect("hours");
        assert_eq!(hours.points.len(), 48);
        assert!(hours.points.iter().all(|p| p.count == 3600));
        assert_eq!(db.integrity_check().expect("check"), "ok");
    }
}
