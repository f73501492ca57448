//! The `ingest` scenario.
//!
//! 1. Throughput: decoded samples for 1,000 tags (one group per simulated
//!    poll) go through the real pipeline (bounded channel, batching writer,
//!    latest-value cache) into the real vessel database, and the clock stops
//!    when the writer has committed the last batch. The reference, timed in
//!    the same run, inserts the same number of rows into a plain rowid table
//!    `(tag_id INTEGER, ts INTEGER, value REAL)` with WAL,
//!    `synchronous=NORMAL`, 10,000-row transactions and one prepared
//!    statement. Each rate is the median of three runs taken in turns.
//! 2. Polling cost: one simulated Modbus TCP device with 1,000 registers,
//!    polled at 1 Hz into the vessel database. The CPU time of the ingest
//!    runtime's threads (named `ingest`; the simulator runs on its own
//!    threads) over the measuring window, as a share of one core.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};
use keelson_ingest::{
    IngestConfig, IngestMetrics, LatestValues, ModbusDeviceConfig, RegisterConfig, SampleSink,
    SinkError, pipeline::spawn_writer,
};
use keelson_model::{Quality, Sample};
use keelson_store::{Db, Site};
use keelson_testkit::{DeviceMemory, ModbusTcpDevice, Table};
use tokio_util::sync::CancellationToken;

const TAGS: usize = 1_000;
const ROUNDS: usize = 1_000;
/// Each rate is the median of this many runs, pipeline and reference taking
/// turns, so a burst of other work on the machine does not decide the ratio.
const RUNS: usize = 3;
const REFERENCE_TX_ROWS: usize = 10_000;
const POLL_WARMUP: Duration = Duration::from_secs(3);
const POLL_WINDOW: Duration = Duration::from_secs(20);

/// The vessel database as the edge agent writes it.
struct DbSink(Db);

impl SampleSink for DbSink {
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError> {
        self.0
            .insert_samples(samples)
            .map_err(|e| SinkError::new(e.to_string()))
    }
}

fn tag_names() -> Vec<(String, String)> {
    (0..TAGS)
        .map(|i| (format!("bench.tag{i:04}"), "u".to_owned()))
        .collect()
}

/// One group of decoded samples per poll round, a second apart.
fn rounds(names: &[(String, String)]) -> Vec<Vec<Sample>> {
    (0..ROUNDS)
        .map(|round| {
            let ts = Utc
                .timestamp_opt(1_700_000_000 + round as i64, 0)
                .single()
                .unwrap_or_else(Utc::now);
            names
                .iter()
                .enumerate()
                .map(|(i, (tag, _))| Sample {
                    tag: tag.clone(),
                    ts,
                    value: Some((i * 7 + round) as f64 * 0.1),
                    quality: Quality::Good,
                    text: None,
                })
                .collect()
        })
        .collect()
}

fn pipeline_rate(runtime: &tokio::runtime::Runtime) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Site::Edge).context("opening the vessel database")?;
    let names = tag_names();
    db.register_tags(&names)?;
    let groups = rounds(&names);
    let total = groups.iter().map(Vec::len).sum::<usize>();
    let latest = LatestValues::new(names.iter().map(|(n, u)| (n.clone(), u.clone())));
    let started = Instant::now();
    runtime.block_on(async {
        let (tx, writer) = spawn_writer(
            runtime.handle(),
            Arc::new(DbSink(db.clone())),
            latest,
            IngestMetrics::new(),
        );
        for group in groups {
            tx.send(group).await.context("the writer stopped early")?;
        }
        drop(tx);
        writer.await.context("the writer failed")
    })?;
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "pipeline: {total} samples committed in {:.3} s ({rate:.0} samples/s)",
        elapsed.as_secs_f64()
    );
    Ok(rate)
}

/// The same samples written straight into the vessel database in
/// 10,000-sample batches, without the pipeline: separates the store's cost
/// from the pipeline's.
fn store_alone_rate() -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Site::Edge)?;
    let names = tag_names();
    db.register_tags(&names)?;
    let all: Vec<Sample> = rounds(&names).into_iter().flatten().collect();
    let started = Instant::now();
    for batch in all.chunks(REFERENCE_TX_ROWS) {
        db.insert_samples(batch)?;
    }
    let elapsed = started.elapsed();
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    println!(
        "store alone: {} samples committed in {:.3} s ({rate:.0} samples/s)",
        all.len(),
        elapsed.as_secs_f64()
    );
    Ok(rate)
}

fn reference_rate() -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = rusqlite::Connection::open(dir.path().join("reference.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute(
        "CREATE TABLE samples (tag_id INTEGER, ts INTEGER, value REAL)",
        [],
    )?;
    let total = TAGS * ROUNDS;
    let started = Instant::now();
    let mut row = 0usize;
    while row < total {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO samples VALUES (?1, ?2, ?3)")?;
            let end = (row + REFERENCE_TX_ROWS).min(total);
            for n in row..end {
                let (round, tag) = (n / TAGS, n % TAGS);
                insert.execute(rusqlite::params![
                    tag as i64,
                    1_700_000_000_000i64 + round as i64 * 1000,
                    (tag * 7 + round) as f64 * 0.1
                ])?;
            }
            row = end;
        }
        tx.commit()?;
    }
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "reference: {total} rows committed in {:.3} s ({rate:.0} rows/s)",
        elapsed.as_secs_f64()
    );
    Ok(rate)
}

/// CPU seconds used so far by this process's threads whose name is `name`.
fn thread_cpu_seconds(name: &str) -> Result<f64> {
    let ticks_per_s: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let stat = match std::fs::read_to_string(entry?.path().join("stat")) {
            Ok(stat) => stat,
            // The thread ended between listing and reading.
            Err(_) => continue,
        };
        // The name is in parentheses and may hold spaces; fields after it
        // are space-separated, utime and stime being the 12th and 13th.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(name) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    Ok(ticks as f64 / ticks_per_s)
}

fn polling_cpu_percent() -> Result<f64> {
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim")
        .enable_all()
        .build()?;
    let ingest_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ingest")
        .enable_all()
        .build()?;
    let memory = DeviceMemory::new();
    let words: Vec<u16> = (0..TAGS as u16).collect();
    memory.set_registers(Table::Holding, 0, &words);
    let device = sim_runtime.block_on(ModbusTcpDevice::start(
        "127.0.0.1:0".parse()?,
        memory.clone(),
    ))?;

    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Site::Edge)?;
    let config = IngestConfig {
        modbus: vec![ModbusDeviceConfig {
            name: "bench-plc".into(),
            address: device.local_addr().to_string(),
            poll_interval_ms: 1000,
            registers: (0..TAGS as u16)
                .map(|a| RegisterConfig {
                    tag: format!("plc.tag{a:04}"),
                    address: a,
                    ..RegisterConfig::default()
                })
                .collect(),
            ..ModbusDeviceConfig::default()
        }],
        ..IngestConfig::default()
    };
    let tags: Vec<(String, String)> = config
        .tags()
        .map(|(t, u)| (t.to_owned(), u.to_owned()))
        .collect();
    db.register_tags(&tags)?;
    let cancel = CancellationToken::new();
    let handle = {
        let _guard = ingest_runtime.enter();
        keelson_ingest::start(&config, Arc::new(DbSink(db)), cancel.clone())?
    };
    std::thread::sleep(POLL_WARMUP);
    let requests_before = memory.requests();
    let cpu_before = thread_cpu_seconds("ingest")?;
    std::thread::sleep(POLL_WINDOW);
    let cpu = thread_cpu_seconds("ingest")? - cpu_before;
    let requests = memory.requests() - requests_before;
    let percent = 100.0 * cpu / POLL_WINDOW.as_secs_f64();
    let good = handle
        .latest
        .snapshot()
        .iter()
        .filter(|v| v.quality == Quality::Good)
        .count();
    println!(
        "polling: {TAGS} tags at 1 Hz, {requests} requests in {} s, {good} tags good, \
         ingest threads used {cpu:.3} CPU s ({percent:.2}% of one core)",
        POLL_WINDOW.as_secs()
    );
    cancel.cancel();
    ingest_runtime.block_on(handle.join());
    sim_runtime.block_on(device.stop());
    Ok(percent)
}

/// Runs the scenario.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

pub fn run() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Warm the page cache and the allocator once so neither side pays it.
    let _ = reference_rate()?;
    let (mut pipeline, mut reference, mut store) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        pipeline.push(pipeline_rate(&runtime)?);
        reference.push(reference_rate()?);
        store.push(store_alone_rate()?);
    }
    let (samples_per_s, reference_per_s, store_per_s) =
        (median(pipeline), median(reference), median(store));
    let poll_cpu = polling_cpu_percent()?;
    println!(
        "ingest: samples_per_s={samples_per_s:.0} reference_per_s={reference_per_s:.0} ratio={:.2} \
         store_alone_per_s={store_per_s:.0} poll_cpu_percent={poll_cpu:.2}",
        samples_per_s / reference_per_s
    );
    Ok(())
}
