//! `shore-load`: 200 simulated vessels sync with one shore at once, on this
//! machine. Each vessel opens a session and pushes its backlog of fault
//! changes (faults logged, then commented on) in signed chunks over HTTP,
//! exactly as the edge agent does; the shore checks each signature and
//! nonce, decodes and checks every change, applies the chunk in one
//! transaction and acknowledges it. The vessels' changes are made before the
//! clock starts, so the figure is the shore's: changes applied per second
//! over the whole run, and the 99th percentile of one chunk's round trip.

use anyhow::{Context, Result, bail};
use chrono::Utc;
use keelson_model::{NewFault, Severity};
use keelson_shore::{ShoreConfig, ShoreState};
use keelson_store::FaultFilter;
use keelson_sync::RecordDoc;
use keelson_sync::protocol::{self, ChunkAck, SessionRequest, SessionResponse};
use keelson_sync::signing::{VesselKey, sign_request};
use keelson_sync::wire::{self, ChangeEntry, Chunk, Lane};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const VESSELS: usize = 200;
const FAULTS_PER_VESSEL: usize = 30;
const COMMENTS_PER_FAULT: usize = 4;
/// Changes per chunk: a few kilobytes, as over a satellite link.
const CHANGES_PER_CHUNK: usize = 50;

/// One simulated vessel: its key and its encoded chunks, in order.
struct Vessel {
    id: String,
    key: VesselKey,
    chunks: Vec<(Vec<u8>, u64)>,
    changes: u64,
}

fn backlog(index: usize) -> Result<Vessel> {
    let id = format!("load-{index:03}");
    let (key, _) = VesselKey::generate()?;
    let now = Utc::now();
    let mut entries = Vec::new();
    for f in 0..FAULTS_PER_VESSEL {
        let record_id = format!("{id}-f{f:02}");
        let new = NewFault {
            title: format!("Fault {f} on {id}"),
            description: format!("Seen on round {f}: pressure drops under load."),
            equipment: "Main engine".into(),
            severity: Severity::Medium,
        };
        let (mut doc, created) = RecordDoc::create_fault(&record_id, &id, &new, "chief", now)?;
        entries.push((record_id.clone(), created));
        for c in 0..COMMENTS_PER_FAULT {
            let change = doc.add_comment(
                &format!("c{c}"),
                "second",
                &format!("Checked again, reading {c}"),
                now,
            )?;
            entries.push((record_id.clone(), change));
        }
    }
    let changes = entries.len() as u64;
    let mut chunks = Vec::new();
    for (n, group) in entries.chunks(CHANGES_PER_CHUNK).enumerate() {
        let first = (n * CHANGES_PER_CHUNK) as u64 + 1;
        let chunk = Chunk {
            lane: Lane::Records,
            vessel_id: id.clone(),
            entries: group
                .iter()
                .zip(first..)
                .map(|((record_id, change), seq)| ChangeEntry {
                    seq,
                    record_id: record_id.clone(),
                    change: change.clone(),
                })
                .collect(),
        };
        let last = chunk.last_seq().unwrap_or(0);
        chunks.push((wire::encode_chunk(&chunk)?, last));
    }
    Ok(Vessel {
        id,
        key,
        chunks,
        changes,
    })
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    vessel: &Vessel,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>> {
    let sig = sign_request(
        &vessel.key,
        &vessel.id,
        "POST",
        path,
        &body,
        Utc::now().timestamp(),
    )?;
    let mut req = http.post(format!("{base}{path}"));
    for (name, value) in sig.to_headers() {
        req = req.header(name, value);
    }
    let resp = req.body(body).send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "{path} for {}: {status} {}",
            vessel.id,
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes.to_vec())
}

/// One vessel's session: cursors, then every chunk in order. Returns the
/// round trip of each chunk.
async fn sync(http: reqwest::Client, base: String, vessel: Vessel) -> Result<Vec<Duration>> {
    let req = SessionRequest {
        vessel_id: vessel.id.clone(),
        records_sent: 0,
        records_received: 0,
        pending_bytes: vessel.chunks.iter().map(|(b, _)| b.len() as u64).sum(),
        pending_alarm_events: 0,
        eta_secs: None,
        epoch: format!("{}-epoch", vessel.id),
    };
    let answer = post(
        &http,
        &base,
        &vessel,
        protocol::SESSION_PATH,
        protocol::encode_message(&req)?,
    )
    .await?;
    let opened: SessionResponse = protocol::decode_message(&answer)?;
    if opened.records_acked != 0 {
        bail!(
            "{} starts with the shore holding {}",
            vessel.id,
            opened.records_acked
        );
    }
    let mut rounds = Vec::with_capacity(vessel.chunks.len());
    for (body, last) in &vessel.chunks {
        let sent = Instant::now();
        let answer = post(
            &http,
            &base,
            &vessel,
            protocol::RECORDS_CHUNKS_PATH,
            body.clone(),
        )
        .await?;
        rounds.push(sent.elapsed());
        let ack: ChunkAck = serde_json::from_slice(&answer)?;
        if ack.acked_seq != *last {
            bail!(
                "{} acked {} of a chunk ending at {last}",
                vessel.id,
                ack.acked_seq
            );
        }
    }
    Ok(rounds)
}

pub fn run() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run_async())
}

async fn run_async() -> Result<()> {
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir()?;
    let mut config =
        ShoreConfig::parse("bench", keelson_shore::DEFAULT_CONFIG).map_err(anyhow::Error::msg)?;
    config.storage.data_dir = dir.path().to_owned();
    let shore = ShoreState::open(config)?;

    let made = Instant::now();
    let mut vessels = Vec::with_capacity(VESSELS);
    for i in 0..VESSELS {
        let vessel = backlog(i)?;
        keelson_shore::add_vessel(
            &shore.db,
            &vessel.id,
            &vessel.id,
            &vessel.key.public_key_b64(),
            "default",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        vessels.push(vessel);
    }
    let changes: u64 = vessels.iter().map(|v| v.changes).sum();
    let chunks: usize = vessels.iter().map(|v| v.chunks.len()).sum();
    println!(
        "{VESSELS} vessels, {changes} changes in {chunks} chunks made in {:.1} s",
        made.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(keelson_shore::serve(
        shore.clone(),
        listener,
        cancel.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(VESSELS)
        .build()?;

    let started = Instant::now();
    let tasks: Vec<_> = vessels
        .into_iter()
        .map(|v| tokio::spawn(sync(http.clone(), base.clone(), v)))
        .collect();
    let mut rounds = Vec::with_capacity(chunks);
    for task in tasks {
        rounds.extend(task.await.context("a vessel task failed")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    cancel.cancel();

    // Everything arrived: every fault, with every comment.
    let faults = shore.db.list_faults(&FaultFilter {
        limit: u32::MAX,
        ..FaultFilter::default()
    })?;
    let comments: u64 = faults.iter().map(|f| f.comments.len() as u64).sum();
    let expected_faults = VESSELS * FAULTS_PER_VESSEL;
    if faults.len() != expected_faults || comments != (expected_faults * COMMENTS_PER_FAULT) as u64
    {
        bail!(
            "the shore holds {} faults and {comments} comments, not {expected_faults} and {}",
            faults.len(),
            expected_faults * COMMENTS_PER_FAULT
        );
    }
    rounds.sort();
    let p99 = rounds[(rounds.len() * 99 / 100).min(rounds.len() - 1)];
    let per_s = changes as f64 / elapsed;
    println!(
        "{changes} changes from {VESSELS} vessels applied in {elapsed:.2} s; chunk round trip p50 {:.0} ms, p99 {:.0} ms",
        rounds[rounds.len() / 2].as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    println!(
        "shore-load: vessels={VESSELS} changes_per_s={per_s:.0} p99_round_ms={:.0} changes={changes} chunks={chunks} elapsed_s={elapsed:.2}",
        p99.as_secs_f64() * 1000.0
    );
    Ok(())
}
