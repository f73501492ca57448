//! Sample tiers on the edge: hot rows, compressed blocks, rollups, and
//! retention within a disk budget.
//!
//! # Tiers and on-disk format
//!
//! - **Rows** (`samples`): what ingest writes, in time order. Each row's
//!   key is one integer that sorts by 10-second slot, then tag, then time
//!   (`slot * 2^32 + tag_id * 2^14 + offset in the slot`; see
//!   `schema/edge/0004_time_ordered_samples.sql`), so a batch of every tag's
//!   latest readings lands on the few pages of the current slot rather than
//!   on one page per tag, and one tag's rows are a key range per slot.
//! - **Raw blocks** (`sample_blocks`): one per tag and closed hour, holding
//!   every sample of that hour in the versioned format of [`crate::block`].
//! - **1-minute rollups** (`rollup_minute_blocks`): one block per tag and
//!   hour with up to 60 rollups (min, max, mean, last, count, good count).
//! - **Hourly rollups** (`rollups_hour`): one plain row per tag and hour.
//!
//! Every compacted table is keyed by (tag, start of the hour), so a bucket
//! written twice replaces itself.
//!
//! # Invariants
//!
//! - Compaction writes a tag-hour's block and rollups and deletes the rows
//!   they replace in one transaction. A crash at any moment leaves either
//!   the rows or the block, never both and never neither: no sample is lost
//!   or counted twice. A late sample for an hour already compacted is
//!   merged into that hour's block on the next pass (the row wins over a
//!   block sample with the same time, as a re-written row would).
//! - Queries read rows, blocks and rollups together, so a sample is visible
//!   at every moment of its life, whichever tier holds it.
//! - `tier_state.bytes` is each compacted tier's payload, changed in the
//!   same transaction as the tier itself, so disk use per tier needs no scan.
//! - Each (re)written rollup takes the next `seq` of its tier; the rollups
//!   sync lane sends them in seq order and records the shore's
//!   acknowledgement in `acked_seq`.
//!
//! # When the budget is reached
//!
//! Retention first drops whatever is past its tier's age limit, then, while
//! the pages in use exceed the budget, the oldest hour of raw blocks, then
//! the oldest hour of 1-minute rollups. Hourly rollups are dropped only by
//! age. A rollup the shore has not acknowledged is never dropped (1-minute
//! rollups only count as owed to the shore when the policy says the lane
//! carries them). Maintenance records and the change log live in other
//! tables that retention never touches. When nothing more may be dropped
//! the database stays over budget and retention says so; it never drops
//! owed data to make room.

use crate::block::{self, RawPoint, Rollup};
use crate::{Db, StoreError};
use keelson_model::Quality;
use rusqlite::{OptionalExtension, Transaction, params};

/// One hour in milliseconds: the bucket of blocks and rollups.
pub const HOUR_MS: i64 = 3_600_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// What an hourly rollup row costs on disk with its index entries, counted
/// in the hour tier's bytes in place of a payload length.
const HOUR_ROW_BYTES: i64 = 96;
/// [`HOUR_ROW_BYTES`] as an SQL literal, for summing what a drop frees.
const HOUR_ROW_BYTES_SQL: &str = "96";
/// A rollup's estimated size on the wire, before its tag name.
const WIRE_ROLLUP_BYTES: usize = 56;

/// The width of a hot row's slot, the first part of its key.
const SLOT_MS: i64 = 10_000;
/// A slot's share of the key: tag id and offset take the low 32 bits.
const SLOT_UNIT: i64 = 1 << 32;
/// A tag id's share of the key: the offset in the slot takes the low 14 bits.
const TAG_UNIT: i64 = 1 << 14;
/// The largest tag id a hot row key holds.
pub(crate) const MAX_TAG_ID: i64 = (1 << 18) - 1;
/// The range of slots a hot row key holds: the years 1290 to 2650.
const SLOTS: std::ops::RangeInclusive<i64> = -(1 << 31)..=(1 << 31) - 1;

fn floor(ms: i64, width: i64) -> i64 {
    ms.div_euclid(width) * width
}

/// The slot a sample taken at `ts_ms` is stored under.
fn slot(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(SLOT_MS)
}

/// The key of the row in `slot` for `tag_id` at `offset` ms into the slot;
/// the caller keeps every part in its range.
fn key_at(slot: i64, tag_id: i64, offset: i64) -> i64 {
    slot * SLOT_UNIT + tag_id * TAG_UNIT + offset
}

/// The hot row key of `tag_id`'s sample at `ts_ms`, or `None` when the tag
/// id or the time is outside what a key holds.
pub(crate) fn row_key(tag_id: i64, ts_ms: i64) -> Option<i64> {
    let slot = slot(ts_ms);
    ((0..=MAX_TAG_ID).contains(&tag_id) && SLOTS.contains(&slot))
        .then(|| key_at(slot, tag_id, ts_ms - slot * SLOT_MS))
}

/// The tag id and time a hot row key stands for.
fn split_key(key: i64) -> (i64, i64) {
    let slot = key.div_euclid(SLOT_UNIT);
    let rest = key.rem_euclid(SLOT_UNIT);
    (rest / TAG_UNIT, slot * SLOT_MS + rest % TAG_UNIT)
}

/// The rollup in a row's columns `first..first + 7`, selected in the order
/// bucket_ms, min, max, mean, last, count, good.
pub(crate) fn rollup_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Rollup> {
    Ok(Rollup {
        start_ms: r.get(first)?,
        min: r.get(first + 1)?,
        max: r.get(first + 2)?,
        mean: r.get(first + 3)?,
        last: r.get(first + 4)?,
        count: r.get(first + 5)?,
        good: r.get(first + 6)?,
    })
}

fn raw_point(key: i64, r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPoint> {
    Ok(RawPoint {
        ts_ms: split_key(key).1,
        value: r.get(1)?,
        quality: Quality::from_code(r.get::<_, u8>(2)?),
    })
}

/// The resolution a series is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Every sample.
    Raw,
    /// 1-minute rollups.
    Minute,
    /// Hourly rollups.
    Hour,
}

impl Resolution {
    /// The resolution a trend over `span_ms` reads: raw up to 6 hours, then
    /// 1-minute rollups up to a week, then hourly rollups. At 1 Hz that keeps
    /// every answer near ten thousand points or fewer.
    pub fn for_span(span_ms: i64) -> Resolution {
        if span_ms <= 6 * HOUR_MS {
            Resolution::Raw
        } else if span_ms <= 7 * DAY_MS {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }

    /// The resolution's name in the API and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        }
    }

    /// Parses a name given by [`Resolution::as_str`].
    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "raw" => Some(Resolution::Raw),
            "minute" => Some(Resolution::Minute),
            "hour" => Some(Resolution::Hour),
            _ => None,
        }
    }

    fn tier(self) -> &'static str {
        self.as_str()
    }
}

/// One point of a series: a sample, or a rollup over its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// The sample's time, or the start of the rollup's interval (ms).
    pub ts_ms: i64,
    /// The sample's value, or the rollup's mean.
    pub value: Option<f64>,
    /// Smallest value in the interval (the value itself for a sample).
    pub min: Option<f64>,
    /// Largest value in the interval.
    pub max: Option<f64>,
    /// The last value in the interval.
    pub last: Option<f64>,
    /// Samples in the interval (1 for a sample).
    pub count: u32,
    /// Good-quality samples in the interval.
    pub good: u32,
    /// The sample's quality; for a rollup, good when every sample was good,
    /// bad when none was, uncertain otherwise.
    pub quality: Quality,
}

impl SeriesPoint {
    fn from_raw(p: &RawPoint) -> SeriesPoint {
        SeriesPoint {
            ts_ms: p.ts_ms,
            value: p.value,
            min: p.value,
            max: p.value,
            last: p.value,
            count: 1,
            good: u32::from(p.quality == Quality::Good),
            quality: p.quality,
        }
    }

    /// The point a rollup is drawn and served as: its mean with its range.
    pub fn from_rollup(r: &Rollup) -> SeriesPoint {
        let quality = if r.good == r.count {
            Quality::Good
        } else if r.good == 0 {
            Quality::Bad
        } else {
            Quality::Uncertain
        };
        SeriesPoint {
            ts_ms: r.start_ms,
            value: r.mean,
            min: r.min,
            max: r.max,
            last: r.last,
            count: r.count,
            good: r.good,
            quality,
        }
    }
}

/// A tag's series over a range, at one resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The resolution read.
    pub resolution: Resolution,
    /// The points, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Tag-hours written as blocks.
    pub buckets: u64,
    /// Rows moved into blocks.
    pub samples: u64,
}

/// Disk budget and age limits. An age of `None` keeps the tier until the
/// budget needs its room.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionPolicy {
    /// Bytes the database may use.
    pub budget_bytes: u64,
    /// Age limit of raw blocks, in ms.
    pub raw_max_age_ms: Option<i64>,
    /// Age limit of 1-minute rollups, in ms.
    pub minute_max_age_ms: Option<i64>,
    /// Age limit of hourly rollups, in ms.
    pub hour_max_age_ms: Option<i64>,
    /// Whether the rollups lane carries 1-minute rollups, so that those not
    /// yet acknowledged by the shore must be kept.
    pub minute_rollups_synced: bool,
}

/// What one retention pass dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Hours of raw blocks dropped.
    pub raw_hours: u64,
    /// Hours of 1-minute rollups dropped.
    pub minute_hours: u64,
    /// Hours of hourly rollups dropped.
    pub hour_hours: u64,
    /// Whether the database is still over budget because nothing more may
    /// be dropped.
    pub over_budget: bool,
}

/// Disk use per tier and the headroom left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageUsage {
    /// Bytes of database pages in use (free pages excluded).
    pub used_bytes: u64,
    /// Size of the database file, free pages included.
    pub file_bytes: u64,
    /// Pages of the hot rows.
    pub rows_bytes: u64,
    /// Payload of the raw blocks.
    pub raw_block_bytes: u64,
    /// Payload of the 1-minute rollups.
    pub minute_bytes: u64,
    /// Size of the hourly rollups.
    pub hour_bytes: u64,
    /// Everything else: records, the change log, users, page overhead.
    pub other_bytes: u64,
    /// The budget.
    pub budget_bytes: u64,
    /// Samples held in raw blocks.
    pub block_samples: u64,
    /// Oldest hour of raw blocks (ms), if any.
    pub oldest_raw_ms: Option<i64>,
    /// Oldest hour of 1-minute rollups (ms), if any.
    pub oldest_minute_ms: Option<i64>,
    /// Oldest hour of hourly rollups (ms), if any.
    pub oldest_hour_ms: Option<i64>,
    /// Days until the budget is reached at the recent rate of growth, when
    /// there is enough history to tell.
    pub headroom_days: Option<f64>,
}

/// A rollup as the rollups lane sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneRollup {
    /// Its sequence number in its tier.
    pub seq: u64,
    /// The tag's name.
    pub tag: String,
    /// Minute or hour.
    pub resolution: Resolution,
    /// The values.
    pub rollup: Rollup,
}

/// A bounded batch of rollups after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupBatch {
    /// The rollups, in seq order.
    pub rollups: Vec<LaneRollup>,
    /// The cursor to ask from next time: the last seq in the batch, or the
    /// cursor given when the batch is empty.
    pub next_after: u64,
}

/// Where a rollup tier's sequence stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupCursor {
    /// The highest seq written so far.
    pub latest: u64,
    /// The highest seq the shore acknowledged.
    pub acked: u64,
}

fn next_seq(tx: &Transaction<'_>, tier: &str) -> Result<i64, StoreError> {
    Ok(tx.query_row(
        "UPDATE tier_state SET next_seq = next_seq + 1 WHERE tier = ?1 RETURNING next_seq - 1",
        [tier],
        |r| r.get(0),
    )?)
}

fn add_bytes(tx: &Transaction<'_>, tier: &str, delta: i64) -> Result<(), StoreError> {
    if delta != 0 {
        tx.execute(
            "UPDATE tier_state SET bytes = MAX(0, bytes + ?2) WHERE tier = ?1",
            params![tier, delta],
        )?;
    }
    Ok(())
}

/// Merges two time-ordered point lists; on equal times `newer` wins.
fn merge(older: Vec<RawPoint>, newer: &[RawPoint]) -> Vec<RawPoint> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let mut a = older.into_iter().peekable();
    let mut b = newer.iter().copied().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.ts_ms < y.ts_ms => out.extend(a.next()),
            (Some(x), Some(y)) if x.ts_ms == y.ts_ms => {
                a.next();
                out.extend(b.next());
            }
            (_, Some(_)) => out.extend(b.next()),
            (Some(_), None) => out.extend(a.next()),
            (None, None) => return out,
        }
    }
}

/// Merges two start-ordered rollup lists; on equal starts `stored` wins,
/// because rollups computed from leftover rows only cover late samples.
fn merge_rollups(stored: Vec<Rollup>, from_rows: Vec<Rollup>) -> Vec<Rollup> {
    let mut out = Vec::with_capacity(stored.len() + from_rows.len());
    let mut a = stored.into_iter().peekable();
    let mut b = from_rows.into_iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.start_ms <= y.start_ms => {
                if x.start_ms == y.start_ms {
                    b.next();
                }
                out.extend(a.next());
            }
            (_, Some(_)) => out.extend(b.next()),
            (Some(_), None) => out.extend(a.next()),
            (None, None) => return out,
        }
    }
}

fn read_rows(
    conn: &rusqlite::Connection,
    tag_id: i64,
    from_ms: i64,
    to_exclusive_ms: i64,
) -> Result<Vec<RawPoint>, StoreError> {
    if to_exclusive_ms <= from_ms || !(0..=MAX_TAG_ID).contains(&tag_id) {
        return Ok(Vec::new());
    }
    // Rows are keyed by slot first. Stepping from one occupied slot to the
    // next costs a seek each, so a 30-day range over an hour of rows reads
    // only that hour's slots.
    let mut next_slot = conn.prepare_cached(
        "SELECT key FROM samples WHERE key >= ?1 AND key <= ?2 ORDER BY key LIMIT 1",
    )?;
    let mut in_slot = conn.prepare_cached(
        "SELECT key, value, quality FROM samples WHERE key >= ?1 AND key <= ?2 ORDER BY key",
    )?;
    let first = slot(from_ms).clamp(*SLOTS.start(), *SLOTS.end());
    let last = slot(to_exclusive_ms - 1).clamp(*SLOTS.start(), *SLOTS.end());
    let end_of_last = key_at(last, MAX_TAG_ID, TAG_UNIT - 1);
    let mut at = first;
    let mut points = Vec::new();
    while at <= last {
        let Some(found) = next_slot
            .query_row(params![key_at(at, 0, 0), end_of_last], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
        else {
            break;
        };
        let found = found.div_euclid(SLOT_UNIT);
        let start = found * SLOT_MS;
        let low = from_ms.max(start) - start;
        let high = (to_exclusive_ms - 1).min(start + SLOT_MS - 1) - start;
        let rows = in_slot.query_map(
            params![key_at(found, tag_id, low), key_at(found, tag_id, high)],
            |r| raw_point(r.get(0)?, r),
        )?;
        for row in rows {
            points.push(row?);
        }
        at = found + 1;
    }
    Ok(points)
}

/// Packs one tag's rows of the hour starting at `bucket` (ascending by
/// time) into that hour's block and rollups, inside `tx`. The caller deletes
/// the rows in the same transaction.
fn compact_group(
    tx: &Transaction<'_>,
    tag_id: i64,
    bucket: i64,
    group: &[RawPoint],
    report: &mut CompactionReport,
) -> Result<(), StoreError> {
    let existing: Option<Vec<u8>> = tx
        .query_row(
            "SELECT data FROM sample_blocks WHERE tag_id = ?1 AND bucket_ms = ?2",
            params![tag_id, bucket],
            |r| r.get(0),
        )
        .optional()?;
    let had_rollups: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM rollups_hour WHERE tag_id = ?1 AND bucket_ms = ?2)",
        params![tag_id, bucket],
        |r| r.get(0),
    )?;
    let old_len = existing.as_ref().map_or(0, Vec::len) as i64;
    let points = match &existing {
        Some(data) => merge(block::decode_samples(data)?, group),
        None => group.to_vec(),
    };
    let data = block::encode_samples(&points)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sample_blocks (tag_id, bucket_ms, n, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![tag_id, bucket, points.len() as i64, data])?;
    add_bytes(tx, "raw", data.len() as i64 - old_len)?;
    report.buckets += 1;
    report.samples += group.len() as u64;

    // Rollups are recomputed from the whole hour. When the hour's raw
    // block had already been dropped by retention, its rollups describe
    // far more than the late samples at hand, so they are kept as they are.
    if existing.is_none() && had_rollups {
        return Ok(());
    }
    let minutes = Rollup::many(&points, MINUTE_MS);
    let mdata = block::encode_rollups(&minutes)?;
    let old_mlen: i64 = tx
        .query_row(
            "SELECT length(data) FROM rollup_minute_blocks WHERE tag_id = ?1 AND bucket_ms = ?2",
            params![tag_id, bucket],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mseq = next_seq(tx, "minute")?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO rollup_minute_blocks (tag_id, bucket_ms, n, seq, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![tag_id, bucket, minutes.len() as i64, mseq, mdata])?;
    add_bytes(tx, "minute", mdata.len() as i64 - old_mlen)?;

    let hour = Rollup::of(bucket, &points);
    let hseq = next_seq(tx, "hour")?;
    tx.prepare_cached(
            "INSERT OR REPLACE INTO rollups_hour (tag_id, bucket_ms, min, max, mean, last, count, good, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            tag_id, bucket, hour.min, hour.max, hour.mean, hour.last, hour.count, hour.good, hseq
        ])?;
    if !had_rollups {
        add_bytes(tx, "hour", HOUR_ROW_BYTES)?;
    }
    Ok(())
}

impl Db {
    fn tag_id(conn: &rusqlite::Connection, tag: &str) -> Result<i64, StoreError> {
        conn.prepare_cached("SELECT id FROM tags WHERE name = ?1")?
            .query_row([tag], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    /// Moves every row older than the hour containing `closed_before_ms`
    /// into blocks and rollups, oldest hour first. Each transaction moves
    /// one hour of a run of tags, about `max_rows_per_tx` rows at 1 Hz, and
    /// releases the writer between transactions, so ingest waits at most
    /// one transaction.
    pub fn compact(
        &self,
        closed_before_ms: i64,
        max_rows_per_tx: usize,
    ) -> Result<CompactionReport, StoreError> {
        let cutoff = floor(closed_before_ms, HOUR_MS);
        // A tag sampled at 1 Hz has 3,600 rows an hour.
        let tags_per_tx = (max_rows_per_tx / 3_600).max(1);
        let mut report = CompactionReport::default();
        loop {
            let (oldest, ids) = {
                let conn = self.reader()?;
                let oldest: Option<i64> =
                    conn.query_row("SELECT MIN(key) FROM samples", [], |r| r.get(0))?;
                let ids: Vec<i64> = conn
                    .prepare_cached("SELECT id FROM tags ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                (oldest, ids)
            };
            let Some(hour) = oldest
                .map(|key| floor(split_key(key).1, HOUR_MS))
                .filter(|h| *h < cutoff)
            else {
                break;
            };
            let chunks: Vec<&[i64]> = ids.chunks(tags_per_tx).collect();
            for (n, chunk) in chunks.iter().enumerate() {
                // The first and last runs are open-ended, so every row of the
                // hour is moved even if a tag appeared since the ids were read;
                // otherwise the oldest slot would never empty.
                let low = if n == 0 { 0 } else { chunk[0] };
                let high = if n + 1 == chunks.len() {
                    MAX_TAG_ID
                } else {
                    chunk[chunk.len() - 1]
                };
                self.compact_hour(hour, low, high, &mut report)?;
            }
            if chunks.is_empty() {
                self.compact_hour(hour, 0, MAX_TAG_ID, &mut report)?;
            }
        }
        if report.buckets > 0 {
            tracing::debug!(
                buckets = report.buckets,
                samples = report.samples,
                "compacted samples"
            );
        }
        Ok(report)
    }

    /// Moves the rows of tags `low..=high` in the hour starting at `hour`
    /// into blocks and rollups and deletes them, in one transaction.
    fn compact_hour(
        &self,
        hour: i64,
        low: i64,
        high: i64,
        report: &mut CompactionReport,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let mut by_tag: std::collections::BTreeMap<i64, Vec<RawPoint>> =
            std::collections::BTreeMap::new();
        {
            let mut read = tx.prepare_cached(
                "SELECT key, value, quality FROM samples WHERE key >= ?1 AND key <= ?2 ORDER BY key",
            )?;
            let mut delete =
                tx.prepare_cached("DELETE FROM samples WHERE key >= ?1 AND key <= ?2")?;
            for at in slot(hour)..slot(hour + HOUR_MS) {
                let (first, last) = (key_at(at, low, 0), key_at(at, high, TAG_UNIT - 1));
                let mut rows = read.query(params![first, last])?;
                while let Some(r) = rows.next()? {
                    let key: i64 = r.get(0)?;
                    by_tag
                        .entry(split_key(key).0)
                        .or_default()
                        .push(raw_point(key, r)?);
                }
                delete.execute(params![first, last])?;
            }
        }
        // Slots are read in time order and each slot's rows by tag and time,
        // so each tag's points are already ascending.
        for (tag_id, points) in &by_tag {
            compact_group(&tx, *tag_id, hour, points, report)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A tag's series over `[from_ms, to_ms]` at `resolution`, or at the
    /// resolution the span calls for ([`Resolution::for_span`]). Reads rows,
    /// blocks and rollups together; at most `limit` points, oldest first.
    /// Returns `NotFound` for an unknown tag.
    pub fn series(
        &self,
        tag: &str,
        from_ms: i64,
        to_ms: i64,
        resolution: Option<Resolution>,
        limit: usize,
    ) -> Result<Series, StoreError> {
        let resolution = resolution.unwrap_or_else(|| Resolution::for_span(to_ms - from_ms));
        let conn = self.reader()?;
        let tag_id = Self::tag_id(&conn, tag)?;
        let in_range = |ts: i64| ts >= from_ms && ts <= to_ms;
        let mut points: Vec<SeriesPoint> = match resolution {
            Resolution::Raw => {
                let mut stored = Vec::new();
                let mut stmt = conn.prepare_cached(
                    "SELECT data FROM sample_blocks WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms <= ?3
                     ORDER BY bucket_ms",
                )?;
                let mut rows = stmt.query(params![tag_id, floor(from_ms, HOUR_MS), to_ms])?;
                while let Some(row) = rows.next()? {
                    let data = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                    stored.extend(
                        block::decode_samples(data)?
                            .into_iter()
                            .filter(|p| in_range(p.ts_ms)),
                    );
                }
                let hot = read_rows(&conn, tag_id, from_ms, to_ms.saturating_add(1))?;
                merge(stored, &hot)
                    .iter()
                    .map(SeriesPoint::from_raw)
                    .collect()
            }
            Resolution::Minute => {
                let mut stored = Vec::new();
                let mut stmt = conn.prepare_cached(
                    "SELECT data FROM rollup_minute_blocks WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms <= ?3
                     ORDER BY bucket_ms",
                )?;
                let mut rows = stmt.query(params![tag_id, floor(from_ms, HOUR_MS), to_ms])?;
                while let Some(row) = rows.next()? {
                    let data = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                    stored.extend(
                        block::decode_rollups(data)?
                            .into_iter()
                            .filter(|r| in_range(r.start_ms)),
                    );
                }
                let hot = read_rows(
                    &conn,
                    tag_id,
                    floor(from_ms, MINUTE_MS),
                    to_ms.saturating_add(1),
                )?;
                let fresh: Vec<Rollup> = Rollup::many(&hot, MINUTE_MS)
                    .into_iter()
                    .filter(|r| in_range(r.start_ms))
                    .collect();
                merge_rollups(stored, fresh)
                    .iter()
                    .map(SeriesPoint::from_rollup)
                    .collect()
            }
            Resolution::Hour => {
                let mut stmt = conn.prepare_cached(
                    "SELECT bucket_ms, min, max, mean, last, count, good FROM rollups_hour
                     WHERE tag_id = ?1 AND bucket_ms >= ?2 AND bucket_ms <= ?3 ORDER BY bucket_ms",
                )?;
                let stored: Vec<Rollup> = stmt
                    .query_map(params![tag_id, from_ms, to_ms], |r| rollup_at(r, 0))?
                    .collect::<Result<_, _>>()?;
                let hot = read_rows(
                    &conn,
                    tag_id,
                    floor(from_ms, HOUR_MS),
                    to_ms.saturating_add(1),
                )?;
                let fresh: Vec<Rollup> = Rollup::many(&hot, HOUR_MS)
                    .into_iter()
                    .filter(|r| in_range(r.start_ms))
                    .collect();
                merge_rollups(stored, fresh)
                    .iter()
                    .map(SeriesPoint::from_rollup)
                    .collect()
            }
        };
        points.truncate(limit);
        Ok(Series { resolution, points })
    }

    fn used_bytes(conn: &rusqlite::Connection) -> Result<(u64, u64), StoreError> {
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        Ok((((pages - free) * page) as u64, (pages * page) as u64))
    }

    /// Drops the oldest droppable hour of a compacted tier, if it is older
    /// than `before_ms`. Returns whether anything was dropped.
    fn drop_oldest_hour(
        &self,
        tier: Resolution,
        before_ms: i64,
        keep_unacked: bool,
    ) -> Result<bool, StoreError> {
        let (table, payload) = match tier {
            Resolution::Raw => ("sample_blocks", "length(data)"),
            Resolution::Minute => ("rollup_minute_blocks", "length(data)"),
            Resolution::Hour => ("rollups_hour", HOUR_ROW_BYTES_SQL),
        };
        // Raw blocks carry no seq: no lane sends them, so none is owed.
        let owed = if keep_unacked && tier != Resolution::Raw {
            " AND seq <= (SELECT acked_seq FROM tier_state WHERE tier = ?2)"
        } else {
            // The same parameters are bound either way; this keeps ?2 used.
            " AND ?2 = ?2"
        };
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let oldest: Option<i64> = tx.query_row(
            &format!("SELECT MIN(bucket_ms) FROM {table} WHERE bucket_ms < ?1{owed}"),
            params![before_ms, tier.tier()],
            |r| r.get(0),
        )?;
        let Some(bucket) = oldest else {
            return Ok(false);
        };
        let filter = format!("bucket_ms = ?1{owed}");
        let freed: i64 = tx.query_row(
            &format!("SELECT COALESCE(SUM({payload}), 0) FROM {table} WHERE {filter}"),
            params![bucket, tier.tier()],
            |r| r.get(0),
        )?;
        tx.execute(
            &format!("DELETE FROM {table} WHERE {filter}"),
            params![bucket, tier.tier()],
        )?;
        add_bytes(&tx, tier.tier(), -freed)?;
        if tier == Resolution::Raw {
            // A text tag's history is raw data: it goes with its hour.
            tx.execute("DELETE FROM tag_texts WHERE ts_ms < ?1", [bucket + HOUR_MS])?;
        }
        tx.commit()?;
        tracing::info!(
            tier = tier.as_str(),
            bucket_ms = bucket,
            bytes = freed,
            "retention dropped an hour"
        );
        Ok(true)
    }

    /// Applies the age limits, then drops the oldest raw blocks and then the
    /// oldest 1-minute rollups while the database uses more than the budget.
    /// Never drops rollups the shore has not acknowledged (see the module
    /// notes).
    pub fn enforce_retention(
        &self,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let tiers = [
            (Resolution::Raw, policy.raw_max_age_ms, false),
            (
                Resolution::Minute,
                policy.minute_max_age_ms,
                policy.minute_rollups_synced,
            ),
            (Resolution::Hour, policy.hour_max_age_ms, true),
        ];
        for (tier, age, keep_unacked) in tiers {
            let Some(age) = age else { continue };
            while self.drop_oldest_hour(tier, now_ms - age, keep_unacked)? {
                *report.count(tier) += 1;
            }
        }
        loop {
            let (used, _) = {
                let conn = self.reader()?;
                Self::used_bytes(&conn)?
            };
            if used <= policy.budget_bytes {
                break;
            }
            if self.drop_oldest_hour(Resolution::Raw, i64::MAX, false)? {
                report.raw_hours += 1;
            } else if self.drop_oldest_hour(
                Resolution::Minute,
                i64::MAX,
                policy.minute_rollups_synced,
            )? {
                report.minute_hours += 1;
            } else {
                report.over_budget = true;
                tracing::warn!(
                    used_bytes = used,
                    budget_bytes = policy.budget_bytes,
                    "over the disk budget with nothing left that may be dropped"
                );
                break;
            }
        }
        Ok(report)
    }

    /// Disk use per tier and the headroom against `budget_bytes`.
    pub fn storage_usage(&self, budget_bytes: u64) -> Result<StorageUsage, StoreError> {
        let conn = self.reader()?;
        let (used_bytes, file_bytes) = Self::used_bytes(&conn)?;
        let tier_bytes = |tier: &str| -> Result<u64, StoreError> {
            Ok(conn.query_row(
                "SELECT bytes FROM tier_state WHERE tier = ?1",
                [tier],
                |r| r.get::<_, i64>(0),
            )? as u64)
        };
        // The dbstat walk is limited to the hot rows' b-tree, which
        // compaction keeps to about an hour of data.
        let rows_bytes: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'samples'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        let span = |table: &str| -> Result<Option<(i64, i64)>, StoreError> {
            Ok(conn.query_row(
                &format!("SELECT MIN(bucket_ms), MAX(bucket_ms) FROM {table}"),
                [],
                |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
            )?)
        };
        let raw_span = span("sample_blocks")?;
        let minute_span = span("rollup_minute_blocks")?;
        let hour_span = span("rollups_hour")?;
        let block_samples: i64 =
            conn.query_row("SELECT COALESCE(SUM(n), 0) FROM sample_blocks", [], |r| {
                r.get(0)
            })?;
        let mut u = StorageUsage {
            used_bytes,
            file_bytes,
            rows_bytes: rows_bytes as u64,
            raw_block_bytes: tier_bytes("raw")?,
            minute_bytes: tier_bytes("minute")?,
            hour_bytes: tier_bytes("hour")?,
            other_bytes: 0,
            budget_bytes,
            block_samples: block_samples as u64,
            oldest_raw_ms: raw_span.map(|s| s.0),
            oldest_minute_ms: minute_span.map(|s| s.0),
            oldest_hour_ms: hour_span.map(|s| s.0),
            headroom_days: None,
        };
        u.other_bytes = used_bytes
            .saturating_sub(u.rows_bytes + u.raw_block_bytes + u.minute_bytes + u.hour_bytes);
        // Each tier grows by its bytes over the days it spans; a tier
        // spanning less than a day does not yet tell its rate.
        let rate = |bytes: u64, span: Option<(i64, i64)>| {
            span.map(|(lo, hi)| (hi - lo + HOUR_MS) as f64 / DAY_MS as f64)
                .filter(|days| *days >= 1.0)
                .map(|days| bytes as f64 / days)
        };
        let rates = [
            rate(u.raw_block_bytes, raw_span),
            rate(u.minute_bytes, minute_span),
            rate(u.hour_bytes, hour_span),
        ];
        if rates.iter().any(Option::is_some) {
            let per_day: f64 = rates.iter().flatten().sum();
            if per_day > 0.0 {
                u.headroom_days = Some(budget_bytes.saturating_sub(used_bytes) as f64 / per_day);
            }
        }
        Ok(u)
    }

    /// Rollups of `resolution` (minute or hour) written after seq
    /// `after`, in seq order, about `max_bytes` of them on the wire (at
    /// least one hour of one tag, so a small budget still makes progress).
    pub fn rollups_after(
        &self,
        resolution: Resolution,
        after: u64,
        max_bytes: usize,
    ) -> Result<RollupBatch, StoreError> {
        let conn = self.reader()?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next_after = after;
        match resolution {
            Resolution::Raw => {
                return Err(StoreError::Conflict("raw samples are not rollups".into()));
            }
            Resolution::Hour => {
                let mut stmt = conn.prepare_cached(
                    "SELECT r.seq, t.name, r.bucket_ms, r.min, r.max, r.mean, r.last, r.count, r.good
                     FROM rollups_hour r JOIN tags t ON t.id = r.tag_id
                     WHERE r.seq > ?1 ORDER BY r.seq",
                )?;
                let mut rows = stmt.query([after as i64])?;
                while let Some(r) = rows.next()? {
                    let tag: String = r.get(1)?;
                    let size = WIRE_ROLLUP_BYTES + tag.len();
                    if !out.is_empty() && bytes + size > max_bytes {
                        break;
                    }
                    bytes += size;
                    let seq = r.get::<_, i64>(0)? as u64;
                    next_after = seq;
                    out.push(LaneRollup {
                        seq,
                        tag,
                        resolution,
                        rollup: rollup_at(r, 2)?,
                    });
                }
            }
            Resolution::Minute => {
                let mut stmt = conn.prepare_cached(
                    "SELECT r.seq, t.name, r.data FROM rollup_minute_blocks r JOIN tags t ON t.id = r.tag_id
                     WHERE r.seq > ?1 ORDER BY r.seq",
                )?;
                let mut rows = stmt.query([after as i64])?;
                while let Some(r) = rows.next()? {
                    let tag: String = r.get(1)?;
                    let data = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
                    let minutes = block::decode_rollups(data)?;
                    let size = minutes.len() * (WIRE_ROLLUP_BYTES + tag.len());
                    if !out.is_empty() && bytes + size > max_bytes {
                        break;
                    }
                    bytes += size;
                    let seq = r.get::<_, i64>(0)? as u64;
                    next_after = seq;
                    out.extend(minutes.into_iter().map(|rollup| LaneRollup {
                        seq,
                        tag: tag.clone(),
                        resolution,
                        rollup,
                    }));
                }
            }
        }
        Ok(RollupBatch {
            rollups: out,
            next_after,
        })
    }

    /// Records that the shore made every rollup of `resolution` up to `seq`
    /// durable; retention may drop them from now on. Only moves forward.
    pub fn ack_rollups(&self, resolution: Resolution, seq: u64) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE tier_state SET acked_seq = MAX(acked_seq, MIN(?2, next_seq - 1)) WHERE tier = ?1",
            params![resolution.tier(), seq as i64],
        )?;
        Ok(())
    }

    /// Where a rollup tier's sequence and acknowledgement stand.
    pub fn rollup_cursor(&self, resolution: Resolution) -> Result<RollupCursor, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT next_seq - 1, acked_seq FROM tier_state WHERE tier = ?1",
            [resolution.tier()],
            |r| {
                Ok(RollupCursor {
                    latest: r.get::<_, i64>(0)? as u64,
                    acked: r.get::<_, i64>(1)? as u64,
                })
            },
        )?)
    }
}

impl RetentionReport {
    fn count(&mut self, tier: Resolution) -> &mut u64 {
        match tier {
            Resolution::Raw => &mut self.raw_hours,
            Resolution::Minute => &mut self.minute_hours,
            Resolution::Hour => &mut self.hour_hours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util::open};
    use chrono::{TimeZone, Utc};
    use keelson_model::Sample;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

    fn samples(tag: &str, from_s: i64, n: i64) -> Vec<Sample> {
        (from_s..from_s + n)
            .map(|i| Sample {
                tag: tag.into(),
                ts: Utc
                    .timestamp_millis_opt(T0 + i * 1000)
                    .single()
                    .expect("ts"),
                value: if i % 100 == 13 {
                    None
                } else {
                    Some(((i % 37) as f64) * 0.5)
                },
                quality: if i % 100 == 13 {
                    Quality::Bad
                } else {
                    Quality::Good
                },
                text: None,
            })
            .collect()
    }

    fn raw(db: &Db, tag: &str, from_ms: i64, to_ms: i64) -> Vec<SeriesPoint> {
        db.series(tag, from_ms, to_ms, Some(Resolution::Raw), usize::MAX)
            .expect("series")
            .points
    }

    #[test]
    fn compaction_moves_rows_into_blocks_without_changing_any_answer() {
        let (_dir, db) = open(Site::Edge);
        // Three hours of two tags, compacted up to the start of the third.
        db.insert_samples(&samples("a", 0, 3 * 3600))
            .expect("insert");
        db.insert_samples(&samples("b", 0, 3 * 3600))
            .expect("insert");
        let before = raw(&db, "a", T0, T0 + 3 * HOUR_MS);
        let hours_before = db
            .series("a", T0, T0 + 3 * HOUR_MS, Some(Resolution::Hour), 100)
            .expect("series");
        let report = db.compact(T0 + 2 * HOUR_MS + 5, 5000).expect("compact");
        assert_eq!(report.buckets, 4);
        assert_eq!(report.samples, 4 * 3600);
        assert_eq!(db.sample_count().expect("count"), 6 * 3600);
        let rows: i64 = db
            .reader()
            .expect("reader")
            .query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
            .expect("rows");
        assert_eq!(rows, 2 * 3600, "only the open hour stays as rows");
        assert_eq!(raw(&db, "a", T0, T0 + 3 * HOUR_MS), before);
        // A range inside a block is cut exactly.
        let inner = raw(&db, "a", T0 + 10_000, T0 + 19_000);
        assert_eq!(inner.len(), 10);
        assert_eq!(inner[0].ts_ms, T0 + 10_000);
        // Rollups read the same from stored rollups as from rows.
        let hours_after = db
            .series("a", T0, T0 + 3 * HOUR_MS, Some(Resolution::Hour), 100)
            .expect("series");
        assert_eq!(hours_after, hours_before);
        assert_eq!(hours_after.points.len(), 3);
        assert_eq!(hours_after.points[0].count, 3600);
        assert_eq!(hours_after.points[0].good, 3600 - 36);
        let minutes = db
            .series(
                "a",
                T0,
                T0 + 3 * HOUR_MS - 1,
                Some(Resolution::Minute),
                1000,
            )
            .expect("series");
        assert_eq!(minutes.points.len(), 180);
        assert!(minutes.points.iter().all(|p| p.count == 60));
        // Nothing left to do: a second pass is a no-op.
        assert_eq!(
            db.compact(T0 + 2 * HOUR_MS + 5, 5000)
                .expect("again")
                .buckets,
            0
        );
    }

    #[test]
    fn late_samples_merge_into_their_block() {
        let (_dir, db) = open(Site::Edge);
        let mut first = samples("a", 0, 3600);
        first.retain(|s| s.ts.timestamp_millis() % 2000 == 0);
        db.insert_samples(&first).expect("insert");
        db.compact(T0 + HOUR_MS, 100).expect("compact");
        let mut late = samples("a", 0, 3600);
        late.retain(|s| s.ts.timestamp_millis() % 2000 != 0);
        db.insert_samples(&late).expect("late");
        // A re-written sample replaces the one in the block.
        let mut rewrite = samples("a", 0, 1);
        rewrite[0].value = Some(99.0);
        db.insert_samples(&rewrite).expect("rewrite");
        assert_eq!(raw(&db, "a", T0, T0 + HOUR_MS).len(), 3600);
        db.compact(T0 + HOUR_MS, 100).expect("compact again");
        let all = raw(&db, "a", T0, T0 + HOUR_MS);
        assert_eq!(all.len(), 3600);
        assert_eq!(all[0].value, Some(99.0));
        assert_eq!(db.sample_count().expect("count"), 3600);
        let hour = db
            .series("a", T0, T0 + HOUR_MS - 1, Some(Resolution::Hour), 10)
            .expect("hour");
        assert_eq!(hour.points.len(), 1);
        assert_eq!(hour.points[0].count, 3600);
    }

    #[test]
    fn row_keys_sort_by_slot_tag_and_time_and_decode_back() {
        let cases = [
            (1, -15_001),
            (MAX_TAG_ID, -15_000),
            (0, -1),
            (0, 0),
            (7, 0),
            (7, 9_999),
            (0, 10_000),
            (3, T0),
            (3, T0 + 1),
            (MAX_TAG_ID, T0 + 9_999),
        ];
        let keys: Vec<i64> = cases
            .iter()
            .map(|&(tag, ts)| row_key(tag, ts).expect("in range"))
            .collect();
        for (key, &(tag, ts)) in keys.iter().zip(&cases) {
            assert_eq!(split_key(*key), (tag, ts));
        }
        let mut sorted = cases.to_vec();
        sorted.sort_by_key(|&(tag, ts)| (slot(ts), tag, ts));
        let mut by_key = cases.to_vec();
        by_key.sort_by_key(|&(tag, ts)| row_key(tag, ts));
        assert_eq!(by_key, sorted);
        // Broken clocks and ids the key cannot hold are refused, not wrapped.
        assert_eq!(row_key(MAX_TAG_ID + 1, T0), None);
        assert_eq!(row_key(-1, T0), None);
        assert_eq!(row_key(1, i64::MAX), None);
        assert_eq!(row_key(1, i64::MIN), None);
        assert!(row_key(1, 21_474_836_479_999).is_some());
        assert_eq!(row_key(1, 21_474_836_480_000), None);
    }

    #[test]
    fn the_hour_row_size_is_one_constant() {
        assert_eq!(HOUR_ROW_BYTES_SQL, HOUR_ROW_BYTES.to_string());
    }

    #[test]
    fn the_span_picks_the_resolution() {
        let (_dir, db) = open(Site::Edge);
        db.insert_samples(&samples("a", 0, 100)).expect("insert");
        let pick = |span| {
            db.series("a", T0, T0 + span, None, 10)
                .expect("q")
                .resolution
        };
        assert_eq!(pick(HOUR_MS), Resolution::Raw);
        assert_eq!(pick(2 * DAY_MS), Resolution::Minute);
        assert_eq!(pick(30 * DAY_MS), Resolution::Hour);
        assert!(matches!(
            db.series("zz", 0, 1, None, 1),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn retention_drops_raw_then_minutes_and_never_unacked_rollups() {
        let (_dir, db) = open(Site::Edge);
        for h in 0..6 {
            db.insert_samples(&samples("a", h * 3600, 3600))
                .expect("insert");
        }
        db.compact(T0 + 6 * HOUR_MS, 100_000).expect("compact");
        let usage = db.storage_usage(u64::MAX).expect("usage");
        assert!(usage.raw_block_bytes > 0 && usage.minute_bytes > 0 && usage.hour_bytes > 0);
        assert_eq!(usage.block_samples, 6 * 3600);
        assert_eq!(usage.oldest_raw_ms, Some(T0));

        // Age limit: raw blocks older than 4 hours go, nothing else.
        let mut policy = RetentionPolicy {
            budget_bytes: u64::MAX,
            raw_max_age_ms: Some(4 * HOUR_MS),
            minute_max_age_ms: None,
            hour_max_age_ms: Some(HOUR_MS),
            minute_rollups_synced: true,
        };
        let now = T0 + 6 * HOUR_MS;
        let r = db.enforce_retention(&policy, now).expect("retention");
        assert_eq!(r.raw_hours, 2);
        // Hourly rollups are past their age but unacknowledged: kept.
        assert_eq!(r.hour_hours, 0);
        assert_eq!(
            db.storage_usage(u64::MAX).expect("u").oldest_raw_ms,
            Some(T0 + 2 * HOUR_MS)
        );
        // Rollups of the dropped hours still answer.
        let hours = db
            .series("a", T0, now - 1, Some(Resolution::Hour), 100)
            .expect("hours");
        assert_eq!(hours.points.len(), 6);

        // A budget of nothing drops every raw block, then no minute rollup
        // (none acknowledged), and reports being over budget.
        policy.budget_bytes = 0;
        let r = db.enforce_retention(&policy, now).expect("retention");
        assert_eq!(r.raw_hours, 4);
        assert_eq!(r.minute_hours, 0);
        assert!(r.over_budget);
        assert_eq!(db.sample_count().expect("count"), 0);

        // Once the shore acknowledged two hours of minute rollups, those
        // two may go, and hourly rollups of acked hours age out.
        let batch = db.rollups_after(Resolution::Minute, 0, 1).expect("batch");
        assert_eq!(batch.rollups.len(), 60, "at least one block per batch");
        let two = db
            .rollups_after(Resolution::Minute, batch.next_after, 1)
            .expect("batch");
        db.ack_rollups(Resolution::Minute, two.next_after)
            .expect("ack");
        let hour_batch = db
            .rollups_after(Resolution::Hour, 0, 3 * 70)
            .expect("batch");
        assert_eq!(hour_batch.rollups.len(), 3);
        db.ack_rollups(Resolution::Hour, hour_batch.next_after)
            .expect("ack");
        let r = db.enforce_retention(&policy, now).expect("retention");
        assert_eq!(r.minute_hours, 2);
        assert_eq!(r.hour_hours, 3);
        assert!(r.over_budget);
        let left = db
            .series("a", T0, now - 1, Some(Resolution::Hour), 100)
            .expect("hours");
        assert_eq!(left.points.len(), 3);
        assert_eq!(left.points[0].ts_ms, T0 + 3 * HOUR_MS);
        assert_eq!(db.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn the_rollups_lane_reads_in_seq_order_within_a_byte_bound() {
        let (_dir, db) = open(Site::Edge);
        for tag in ["a", "b", "c"] {
            db.insert_samples(&samples(tag, 0, 2 * 3600))
                .expect("insert");
        }
        db.compact(T0 + 2 * HOUR_MS, 100_000).expect("compact");
        let cursor = db.rollup_cursor(Resolution::Hour).expect("cursor");
        assert_eq!(
            cursor,
            RollupCursor {
                latest: 6,
                acked: 0
            }
        );
        let mut after = 0;
        let mut seen = Vec::new();
        loop {
            let batch = db
                .rollups_after(Resolution::Hour, after, 130)
                .expect("batch");
            if batch.rollups.is_empty() {
                break;
            }
            assert!(batch.rollups.len() <= 2);
            seen.extend(batch.rollups.iter().map(|r| r.seq));
            after = batch.next_after;
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
        // An acknowledgement never runs ahead of what exists.
        db.ack_rollups(Resolution::Hour, 99).expect("ack");
        assert_eq!(db.rollup_cursor(Resolution::Hour).expect("c").acked, 6);
        assert!(db.rollups_after(Resolution::Raw, 0, 10).is_err());
    }
}
