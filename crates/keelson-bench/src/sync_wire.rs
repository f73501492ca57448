//! `sync-wire`: what a vessel's 30-day backlog of record changes costs on the
//! wire, per change, against what automerge's own sync protocol sends for
//! the same changes.
//!
//! The reference backlog is a busy month on board, made through the real
//! record operations: every day four faults are logged, twelve are worked
//! (status, severity or equipment changes) and eight short comments are
//! written, by a crew of six, one agent session per day.

use anyhow::Result;
use keelson_model::{FaultPatch, NewFault, Severity, Status};
use keelson_records::{Actor, comment_fault, create_fault, patch_fault};
use keelson_store::{Db, Site};
use keelson_sync::reference::sync_protocol_bytes;
use keelson_sync::wire::{self, ChangeEntry, Chunk, Lane};
use std::collections::BTreeMap;

const DAYS: u64 = 30;
const VESSEL: &str = "imo9321483";
const CHUNK_BYTES: usize = 32 * 1024;

/// A small deterministic generator, so every run measures the same backlog.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const TITLES: &[&str] = &[
    "ME cyl 3 exhaust temperature high",
    "Bilge pump 2 noisy",
    "Purifier 1 sludge discharge fails",
    "Steering gear hydraulic leak",
    "Aux engine 2 lube oil pressure low",
    "Fresh water generator vacuum low",
    "Starting air compressor 1 trips",
    "Boiler burner flame failure",
];
const EQUIPMENT: &[&str] = &[
    "Main engine",
    "Bilge system",
    "Purifiers",
    "Steering gear",
    "Aux engine 2",
    "FWG",
    "Air system",
    "Boiler",
];
const COMMENTS: &[&str] = &[
    "Checked, no change",
    "Parts ordered",
    "Filter cleaned",
    "Running normally now",
    "Will check on next watch",
    "Spare fitted",
    "Leak stopped",
    "Awaiting shore advice",
];
const CREW: &[&str] = &["chief", "second", "third", "fitter", "oiler", "wiper"];

/// Makes the backlog in a fresh database and returns it.
fn backlog(dir: &std::path::Path) -> Result<Db> {
    let chief = Actor {
        name: "chief".into(),
        role: keelson_model::Role::ChiefEngineer,
    };
    let mut rng = Lcg(7);
    let mut open: Vec<String> = Vec::new();
    for _day in 0..DAYS {
        // One agent session per day: a restart gives a fresh actor.
        let db = Db::open(dir, Site::Edge)?;
        for _ in 0..4 {
            let t = rng.next(TITLES.len() as u64) as usize;
            let f = create_fault(
                &db,
                VESSEL,
                NewFault {
                    title: TITLES[t].into(),
                    description: format!("Seen on rounds at {:02}:00", rng.next(24)),
                    equipment: EQUIPMENT[t].into(),
                    severity: Severity::ALL[rng.next(4) as usize],
                },
                CREW[rng.next(CREW.len() as u64) as usize],
            )?;
            open.push(f.id);
        }
        for _ in 0..12 {
            let id = &open[rng.next(open.len() as u64) as usize];
            let current = db.fault(id)?.map(|f| f.status).unwrap_or(Status::Open);
            let patch = match rng.next(3) {
                0 => FaultPatch {
                    status: Status::ALL
                        .into_iter()
                        .find(|s| *s != current && current.may_become(*s)),
                    ..FaultPatch::default()
                },
                1 => FaultPatch {
                    severity: Some(Severity::ALL[rng.next(4) as usize]),
                    ..FaultPatch::default()
                },
                _ => FaultPatch {
                    equipment: Some(EQUIPMENT[rng.next(EQUIPMENT.len() as u64) as usize].into()),
                    ..FaultPatch::default()
                },
            };
            if !patch.is_empty() {
                patch_fault(&db, id, patch, &chief)?;
            }
        }
        for _ in 0..8 {
            let id = &open[rng.next(open.len() as u64) as usize];
            let author = CREW[rng.next(CREW.len() as u64) as usize];
            comment_fault(
                &db,
                id,
                author,
                COMMENTS[rng.next(COMMENTS.len() as u64) as usize],
            )?;
        }
    }
    Ok(Db::open(dir, Site::Edge)?)
}

pub fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = backlog(dir.path())?;
    let rows = db.outbound_changes(VESSEL, 0, usize::MAX)?;
    let changes = rows.len();

    // The chunks the records lane sends: the store's own byte-bounded reads
    // after a moving cursor.
    let mut chunks = Vec::new();
    let mut after = 0;
    loop {
        let chunk = db.outbound_changes(VESSEL, after, CHUNK_BYTES)?;
        let Some(last) = chunk.last().map(|r| r.seq) else {
            break;
        };
        after = last;
        chunks.push(chunk);
    }

    // One change per entry, as the records lane sends them today.
    let mut per_change = 0usize;
    for chunk in &chunks {
        per_change +=
            wire::encode_chunk(&keelson_records::records_chunk(VESSEL, chunk.clone()))?.len();
    }

    // The same chunks, with each record's changes in a chunk packed into one
    // automerge bundle.
    let mut bundled = 0usize;
    for chunk in &chunks {
        let mut groups: BTreeMap<&str, (u64, Vec<String>)> = BTreeMap::new();
        for r in chunk {
            let g = groups.entry(&r.record_id).or_default();
            g.0 = g.0.max(r.seq);
            g.1.push(keelson_sync::decode_change(&r.change)?.hash);
        }
        let mut entries = Vec::new();
        for (record, (seq, hashes)) in groups {
            let stored = db
                .transact(|tx| tx.load(record))?
                .ok_or_else(|| anyhow::anyhow!("record"))?;
            let doc = keelson_sync::RecordDoc::load(&stored.doc)?;
            entries.push(ChangeEntry {
                seq,
                record_id: record.to_owned(),
                change: doc.bundle(&hashes)?,
            });
        }
        entries.sort_by_key(|e| e.seq);
        bundled += wire::encode_chunk(&Chunk {
            lane: Lane::Records,
            vessel_id: VESSEL.into(),
            entries,
        })?
        .len();
    }
    println!(
        "bundled_bytes_per_change={:.1}",
        bundled as f64 / changes as f64
    );

    // automerge's own sync protocol, record by record, from nothing.
    let mut by_record: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for r in &rows {
        by_record
            .entry(&r.record_id)
            .or_default()
            .push(r.change.clone());
    }
    let mut reference = 0usize;
    for all in by_record.values() {
        reference += sync_protocol_bytes(&[], all)?.0;
    }

    let raw: usize = rows.iter().map(|r| r.change.len()).sum();
    println!(
        "records={} raw_bytes_per_change={:.1}",
        by_record.len(),
        raw as f64 / changes as f64
    );
    println!(
        "sync-wire: bytes_per_change={:.1} reference_bytes_per_change={:.1} changes={changes}",
        per_change as f64 / changes as f64,
        reference as f64 / changes as f64
    );
    Ok(())
}
