//! The chunk format of the sync lanes.
//!
//! A chunk carries numbered entries of one lane for one vessel. The sender
//! makes chunks of tens of kilobytes; the receiver makes each one durable and
//! acks its last sequence number, so a dropped link costs at most one chunk.
//!
//! # Format
//!
//! ```text
//! "KSC1"  4 bytes of magic; the digit is the format version
//! zstd    one zstd frame (level 3) holding the postcard body:
//!           lane: u8              the lane's stable code (Lane::code)
//!           vessel_id: string
//!           entries: [ { seq: varint u64, record_id: string, change: bytes } ]
//! ```
//!
//! A rollups chunk ([`RollupChunk`]) has the same frame and a body of its
//! own, told apart by the lane code that opens it:
//!
//! ```text
//!           lane: u8              3, the rollups lane
//!           vessel_id: string
//!           width: u8             1 = 1-minute rollups, 2 = hourly
//!           entries: [ { seq: varint u64, tag: string, start_ms: varint i64,
//!                        min, max, mean, last: option f64,
//!                        count: varint u32, good: varint u32 } ]
//! ```
//!
//! An alarms chunk ([`AlarmChunk`]) carries a run of the vessel's alarm
//! history, numbered by the history's own ids:
//!
//! ```text
//!           lane: u8              2, the alarms lane
//!           vessel_id: string
//!           entries: [ { seq: varint u64, alarm_id: option varint u64,
//!                        tag: string, kind: string, event: string,
//!                        at_ms: varint i64, value: option f64,
//!                        by: option string, fault_id: option string } ]
//! ```
//!
//! A files chunk ([`FileChunk`]) carries a run of one attachment file's
//! bytes:
//!
//! ```text
//!           lane: u8              5, the files lane
//!           vessel_id: string
//!           sha256: string        the whole file's SHA-256, 64 hex digits
//!           size: varint u64      the whole file's size
//!           offset: varint u64    where in the file `data` starts
//!           data: bytes           at least one byte, ending at most at `size`
//! ```
//!
//! The lane is written as an explicit code rather than through serde's
//! variant index, so reordering the `Lane` enum can never change the wire.
//!
//! # Limits
//!
//! A decoder never trusts the sender: the compressed input is capped at
//! [`MAX_CHUNK_BYTES`], decompression stops one byte past the caller's cap
//! (so a small frame that inflates to gigabytes is refused after reading only
//! the cap), zstd's window is bounded so a hostile frame header cannot make
//! it allocate a large window, and every entry is checked: sequence numbers
//! start at 1 and strictly increase, record ids are 1 to 64 characters, and
//! no change is empty.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use keelson_model::validate_vessel_id;
use serde::{Deserialize, Serialize};

use crate::SyncError;
use crate::record::validate_record_id;

/// The magic and version that open every chunk.
pub const CHUNK_MAGIC: [u8; 4] = *b"KSC1";
/// Largest encoded (compressed) chunk accepted, in bytes.
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;
/// Default cap on a chunk's decompressed body, in bytes.
pub const MAX_DECODED_BYTES: usize = 4 * 1024 * 1024;
/// The zstd level chunks are compressed with: most of the ratio of higher
/// levels at a fraction of the CPU, which matters on the vessel's server.
pub const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window a decoder accepts (2^23 = 8 MiB). An encoder given at
/// most [`MAX_DECODED_BYTES`] never needs more, and the default limit would
/// let a hostile frame reserve 128 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// Estimated postcard overhead of one entry beside its two byte strings:
/// a varint seq and two varint lengths at their usual sizes.
const ENTRY_OVERHEAD: usize = 16;

/// A sync lane. Each lane has its own cursor and lanes are sent in priority
/// order. Records, alarms, rollups and files exist so far; raw samples will
/// follow with code 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lane {
    /// Maintenance record changes (automerge), both directions.
    Records,
    /// The alarm history (raised, acknowledged, returned, cleared, a fault
    /// logged), vessel to shore.
    Alarms,
    /// Sensor rollups (hourly, and 1-minute when the budget allows),
    /// vessel to shore.
    Rollups,
    /// Attachment files, vessel to shore, after the records that name them.
    Files,
}

impl Lane {
    /// Every lane, in priority order.
    pub const ALL: [Lane; 4] = [Lane::Records, Lane::Alarms, Lane::Rollups, Lane::Files];

    /// The lane's code on the wire. Codes are stable forever; 0 is never used
    /// so an all-zero byte cannot pass for a lane.
    pub fn code(self) -> u8 {
        match self {
            Lane::Records => 1,
            Lane::Alarms => 2,
            Lane::Rollups => 3,
            Lane::Files => 5,
        }
    }

    /// The lane with the given wire code.
    pub fn from_code(code: u8) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The lane's name in JSON messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Records => "records",
            Lane::Alarms => "alarms",
            Lane::Rollups => "rollups",
            Lane::Files => "files",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lane {
    type Err = SyncError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lane::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| SyncError::malformed(format!("lane {s:?}")))
    }
}

/// One numbered entry of a lane: for the records lane, one automerge change
/// of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    /// The sender's sequence number for this entry in the lane, from 1.
    pub seq: u64,
    /// The record the change belongs to.
    pub record_id: String,
    /// The raw change bytes.
    pub change: Vec<u8>,
}

/// A batch of entries of one lane for one vessel. An empty chunk is valid and
/// means "nothing more".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The lane the entries belong to.
    pub lane: Lane,
    /// The vessel whose lane this is.
    pub vessel_id: String,
    /// The entries, in strictly increasing `seq` order.
    pub entries: Vec<ChangeEntry>,
}

impl Chunk {
    /// The last sequence number in the chunk, which is what the receiver acks
    /// once the chunk is durable; `None` for an empty chunk.
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    /// Refuses a chunk for a vessel other than `expected` (the one the
    /// request was authenticated as).
    pub fn expect_vessel(&self, expected: &str) -> Result<(), SyncError> {
        if self.vessel_id == expected {
            Ok(())
        } else {
            Err(SyncError::WrongVessel {
                expected: expected.to_owned(),
                got: self.vessel_id.clone(),
            })
        }
    }

    fn check(&self) -> Result<(), SyncError> {
        validate_vessel_id(&self.vessel_id)
            .map_err(|e| SyncError::malformed(format!("chunk: {e}")))?;
        let mut previous = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.seq <= previous {
                return Err(SyncError::malformed(format!(
                    "chunk: entry {i} has seq {} after {previous}; seqs start at 1 and must increase",
                    entry.seq
                )));
            }
            previous = entry.seq;
            validate_record_id("record_id", &entry.record_id)
                .map_err(|e| SyncError::malformed(format!("chunk: entry {i}: {e}")))?;
            if entry.change.is_empty() {
                return Err(SyncError::malformed(format!(
                    "chunk: entry {i} has an empty change"
                )));
            }
        }
        Ok(())
    }
}

/// The body as encoded, borrowing from the chunk so encoding copies nothing.
#[derive(Serialize)]
struct BodyRef<'a> {
    lane: u8,
    vessel_id: &'a str,
    entries: &'a [ChangeEntry],
}

/// The body as decoded; postcard lays it out exactly like [`BodyRef`].
#[derive(Deserialize)]
struct Body {
    lane: u8,
    vessel_id: String,
    entries: Vec<ChangeEntry>,
}

/// Encodes a chunk. The chunk is checked with the same rules a decoder
/// applies, so this side never sends what the other side will refuse; a body
/// over [`MAX_DECODED_BYTES`] or a result over [`MAX_CHUNK_BYTES`] is
/// [`SyncError::TooLarge`] (split the entries with [`chunk_entries_by_budget`]).
pub fn encode_chunk(chunk: &Chunk) -> Result<Vec<u8>, SyncError> {
    chunk.check()?;
    seal(&BodyRef {
        lane: chunk.lane.code(),
        vessel_id: &chunk.vessel_id,
        entries: &chunk.entries,
    })
}

/// Decodes and checks a chunk, inflating at most `max_decoded` bytes (use
/// [`MAX_DECODED_BYTES`] unless a tighter cap fits). Never panics on any
/// input; every refusal is a client error.
pub fn decode_chunk(bytes: &[u8], max_decoded: usize) -> Result<Chunk, SyncError> {
    let decoded: Body = open(bytes, max_decoded)?;
    let lane = Lane::from_code(decoded.lane)
        .ok_or_else(|| SyncError::malformed(format!("chunk: unknown lane {}", decoded.lane)))?;
    if lane != Lane::Records {
        return Err(SyncError::malformed(format!(
            "chunk: the {lane} lane does not carry changes"
        )));
    }
    let chunk = Chunk {
        lane,
        vessel_id: decoded.vessel_id,
        entries: decoded.entries,
    };
    chunk.check()?;
    Ok(chunk)
}

/// Serializes `body` with postcard, compresses it and puts the magic in
/// front, within the size limits of every chunk.
fn seal<T: Serialize>(body: &T) -> Result<Vec<u8>, SyncError> {
    let body = postcard::to_stdvec(body)
        .map_err(|e| SyncError::Internal(format!("encoding a chunk body: {e}")))?;
    if body.len() > MAX_DECODED_BYTES {
        return Err(SyncError::TooLarge {
            what: "chunk body",
            size: body.len(),
            limit: MAX_DECODED_BYTES,
        });
    }
    let compressed = zstd::bulk::compress(&body, ZSTD_LEVEL)
        .map_err(|e| SyncError::Internal(format!("compressing a chunk: {e}")))?;
    let mut out = Vec::with_capacity(CHUNK_MAGIC.len() + compressed.len());
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&compressed);
    if out.len() > MAX_CHUNK_BYTES {
        return Err(SyncError::TooLarge {
            what: "chunk",
            size: out.len(),
            limit: MAX_CHUNK_BYTES,
        });
    }
    Ok(out)
}

/// Checks the magic, inflates at most `max_decoded` bytes and parses the
/// whole body as `T`, refusing trailing bytes.
fn open<T: serde::de::DeserializeOwned>(bytes: &[u8], max_decoded: usize) -> Result<T, SyncError> {
    if bytes.len() > MAX_CHUNK_BYTES {
        return Err(SyncError::TooLarge {
            what: "chunk",
            size: bytes.len(),
            limit: MAX_CHUNK_BYTES,
        });
    }
    let compressed = bytes
        .strip_prefix(&CHUNK_MAGIC)
        .ok_or_else(|| SyncError::malformed("chunk: bad magic"))?;

    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .map_err(|e| SyncError::Internal(format!("starting zstd: {e}")))?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(|e| SyncError::Internal(format!("configuring zstd: {e}")))?;
    // Reading one byte past the cap tells "exactly at the cap" from "over".
    let limit = u64::try_from(max_decoded)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut body = Vec::new();
    decoder
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|e| SyncError::malformed(format!("chunk: zstd: {e}")))?;
    if body.len() > max_decoded {
        return Err(SyncError::TooLarge {
            what: "decompressed chunk",
            size: body.len(),
            limit: max_decoded,
        });
    }
    let (decoded, rest) = postcard::take_from_bytes::<T>(&body)
        .map_err(|e| SyncError::malformed(format!("chunk body: {e}")))?;
    if !rest.is_empty() {
        return Err(SyncError::malformed(format!(
            "chunk body: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(decoded)
}

/// The width of the rollups a [`RollupChunk`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupWidth {
    /// 1-minute rollups.
    Minute,
    /// Hourly rollups.
    Hour,
}

impl RollupWidth {
    /// The width's stable code on the wire.
    pub fn code(self) -> u8 {
        match self {
            RollupWidth::Minute => 1,
            RollupWidth::Hour => 2,
        }
    }

    /// The width with the given wire code.
    pub fn from_code(code: u8) -> Option<RollupWidth> {
        [RollupWidth::Minute, RollupWidth::Hour]
            .into_iter()
            .find(|w| w.code() == code)
    }

    /// The interval in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            RollupWidth::Minute => 60_000,
            RollupWidth::Hour => 3_600_000,
        }
    }

    /// The width's name in logs and pages.
    pub fn as_str(self) -> &'static str {
        match self {
            RollupWidth::Minute => "minute",
            RollupWidth::Hour => "hour",
        }
    }
}

/// One rollup of one tag on the rollups lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupEntry {
    /// The vessel's sequence number of the rollup in its tier. The 1-minute
    /// rollups of one tag-hour share one.
    pub seq: u64,
    /// The tag's name.
    pub tag: String,
    /// Start of the interval, ms since the epoch, a multiple of the width.
    pub start_ms: i64,
    /// Smallest value, absent when no sample had a value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Mean of the values.
    pub mean: Option<f64>,
    /// The last value in time.
    pub last: Option<f64>,
    /// How many samples the interval had.
    pub count: u32,
    /// How many of them were of good quality.
    pub good: u32,
}

/// A batch of one vessel's rollups of one width.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupChunk {
    /// The vessel the rollups come from.
    pub vessel_id: String,
    /// Their width.
    pub width: RollupWidth,
    /// The rollups, in non-decreasing `seq` order.
    pub entries: Vec<RollupEntry>,
}

/// Longest tag name the rollups lane carries.
pub const MAX_TAG_LEN: usize = 128;

impl RollupChunk {
    /// The last sequence number in the chunk, which the receiver acks once
    /// the chunk is durable; `None` for an empty chunk.
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    fn check(&self) -> Result<(), SyncError> {
        validate_vessel_id(&self.vessel_id)
            .map_err(|e| SyncError::malformed(format!("rollups chunk: {e}")))?;
        let mut previous = 1u64;
        for (i, e) in self.entries.iter().enumerate() {
            let bad = |why: String| SyncError::malformed(format!("rollups chunk: entry {i} {why}"));
            if e.seq < previous {
                return Err(bad(format!(
                    "has seq {} after {previous}; seqs start at 1 and never decrease",
                    e.seq
                )));
            }
            previous = e.seq;
            check_tag(&e.tag).map_err(bad)?;
            if e.start_ms.rem_euclid(self.width.millis()) != 0 {
                return Err(bad(format!(
                    "starts at {} ms, not on a {} boundary",
                    e.start_ms,
                    self.width.as_str()
                )));
            }
            if e.good > e.count {
                return Err(bad(format!(
                    "counts {} good samples of {}",
                    e.good, e.count
                )));
            }
            if [e.min, e.max, e.mean, e.last]
                .into_iter()
                .flatten()
                .any(|v| !v.is_finite())
            {
                return Err(bad("holds a value that is not a finite number".into()));
            }
        }
        Ok(())
    }
}

/// Refuses a tag name that is empty, too long or holds control characters.
fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN || tag.chars().any(char::is_control) {
        Err(format!(
            "has a tag name that is empty, over {MAX_TAG_LEN} bytes or holds control characters"
        ))
    } else {
        Ok(())
    }
}

#[derive(Serialize)]
struct RollupBodyRef<'a> {
    lane: u8,
    vessel_id: &'a str,
    width: u8,
    entries: &'a [RollupEntry],
}

#[derive(Deserialize)]
struct RollupBody {
    lane: u8,
    vessel_id: String,
    width: u8,
    entries: Vec<RollupEntry>,
}

/// Encodes a rollups chunk, checked with the decoder's rules and within the
/// same size limits as [`encode_chunk`].
pub fn encode_rollup_chunk(chunk: &RollupChunk) -> Result<Vec<u8>, SyncError> {
    chunk.check()?;
    seal(&RollupBodyRef {
        lane: Lane::Rollups.code(),
        vessel_id: &chunk.vessel_id,
        width: chunk.width.code(),
        entries: &chunk.entries,
    })
}

/// Decodes and checks a rollups chunk, inflating at most `max_decoded`
/// bytes. Never panics on any input; every refusal is a client error.
pub fn decode_rollup_chunk(bytes: &[u8], max_decoded: usize) -> Result<RollupChunk, SyncError> {
    let decoded: RollupBody = open(bytes, max_decoded)?;
    if decoded.lane != Lane::Rollups.code() {
        return Err(SyncError::malformed(format!(
            "rollups chunk: lane code {} is not the rollups lane",
            decoded.lane
        )));
    }
    let width = RollupWidth::from_code(decoded.width).ok_or_else(|| {
        SyncError::malformed(format!("rollups chunk: unknown width {}", decoded.width))
    })?;
    let chunk = RollupChunk {
        vessel_id: decoded.vessel_id,
        width,
        entries: decoded.entries,
    };
    chunk.check()?;
    Ok(chunk)
}

/// One entry of a vessel's alarm history on the alarms lane. Kinds and
/// events are the names the vessel's alarm engine gives them; the lane
/// carries them as they are, so a new kind or event needs no new wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEntry {
    /// The history entry's id on board, the lane's sequence number.
    pub seq: u64,
    /// The alarm it belongs to on board (ids are never reused there), if
    /// the alarm was in the list.
    pub alarm_id: Option<u64>,
    /// The rule's tag.
    pub tag: String,
    /// The alarm's kind (`high`, `low_low`, `stale`, …): with the tag, the
    /// alarm's key.
    pub kind: String,
    /// What happened (`raised`, `acknowledged`, `returned`, `cleared`,
    /// `fault_logged`, …).
    pub event: String,
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// The tag's value then.
    pub value: Option<f64>,
    /// Who acted (acknowledged, logged a fault), a user name on board.
    pub by: Option<String>,
    /// The fault logged from the alarm, for a `fault_logged` entry.
    pub fault_id: Option<String>,
}

/// A run of one vessel's alarm history, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChunk {
    /// The vessel whose alarms they are.
    pub vessel_id: String,
    /// The entries, in strictly increasing `seq` order.
    pub entries: Vec<AlarmEntry>,
}

/// Longest alarm kind or event name the alarms lane carries.
pub const MAX_ALARM_NAME_LEN: usize = 32;
/// The largest seq or alarm id an alarm entry may carry: what a signed
/// 64-bit integer holds.
const MAX_ALARM_ID: u64 = i64::MAX as u64;
/// The latest time an alarm entry may carry: the end of the year 9999, as
/// far as RFC 3339 reaches.
const MAX_ALARM_TIME_MS: i64 = 253_402_300_799_999;
impl AlarmChunk {
    /// The last sequence number in the chunk, which the receiver acks once
    /// the chunk is durable; `None` for an empty chunk.
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.last().map(|e| e.seq)
    }

    fn check(&self) -> Result<(), SyncError> {
        validate_vessel_id(&self.vessel_id)
            .map_err(|e| SyncError::malformed(format!("alarms chunk: {e}")))?;
        let name = |what: &str, s: &str| {
            let ok = !s.is_empty()
                && s.len() <= MAX_ALARM_NAME_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "has {what} {s:?}; names are 1 to {MAX_ALARM_NAME_LEN} of a-z, 0-9 and _"
                ))
            }
        };
        let mut previous = 0u64;
        for (i, e) in self.entries.iter().enumerate() {
            let bad = |why: String| SyncError::malformed(format!("alarms chunk: entry {i} {why}"));
            if e.seq <= previous {
                return Err(bad(format!(
                    "has seq {} after {previous}; seqs start at 1 and must increase",
                    e.seq
                )));
            }
            previous = e.seq;
            // Both sides keep them as SQLite integers, which are signed.
            if e.seq > MAX_ALARM_ID {
                return Err(bad(format!("has seq {} over {MAX_ALARM_ID}", e.seq)));
            }
            if e.alarm_id.is_some_and(|id| id == 0 || id > MAX_ALARM_ID) {
                return Err(bad(
                    "names an alarm id out of range; alarm ids start at 1".into()
                ));
            }
            check_tag(&e.tag).map_err(bad)?;
            name("kind", &e.kind).map_err(bad)?;
            name("event", &e.event).map_err(bad)?;
            if !(0..=MAX_ALARM_TIME_MS).contains(&e.at_ms) {
                return Err(bad(format!("has time {} ms, out of range", e.at_ms)));
            }
            if e.value.is_some_and(|v| !v.is_finite()) {
                return Err(bad("holds a value that is not a finite number".into()));
            }
            if let Some(by) = &e.by {
                keelson_model::validate_username(by).map_err(|err| bad(format!("by: {err}")))?;
            }
            if let Some(fault) = &e.fault_id {
                validate_record_id("fault_id", fault).map_err(|err| bad(err.to_string()))?;
            }
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct AlarmBodyRef<'a> {
    lane: u8,
    vessel_id: &'a str,
    entries: &'a [AlarmEntry],
}

#[derive(Deserialize)]
struct AlarmBody {
    lane: u8,
    vessel_id: String,
    entries: Vec<AlarmEntry>,
}

/// Encodes an alarms chunk, checked with the decoder's rules and within the
/// same size limits as [`encode_chunk`].
pub fn encode_alarm_chunk(chunk: &AlarmChunk) -> Result<Vec<u8>, SyncError> {
    chunk.check()?;
    seal(&AlarmBodyRef {
        lane: Lane::Alarms.code(),
        vessel_id: &chunk.vessel_id,
        entries: &chunk.entries,
    })
}

/// Decodes and checks an alarms chunk, inflating at most `max_decoded`
/// bytes. Never panics on any input; every refusal is a client error.
pub fn decode_alarm_chunk(bytes: &[u8], max_decoded: usize) -> Result<AlarmChunk, SyncError> {
    let decoded: AlarmBody = open(bytes, max_decoded)?;
    if decoded.lane != Lane::Alarms.code() {
        return Err(SyncError::malformed(format!(
            "alarms chunk: lane code {} is not the alarms lane",
            decoded.lane
        )));
    }
    let chunk = AlarmChunk {
        vessel_id: decoded.vessel_id,
        entries: decoded.entries,
    };
    chunk.check()?;
    Ok(chunk)
}

/// A run of one attachment file's bytes on the files lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChunk {
    /// The vessel the file comes from.
    pub vessel_id: String,
    /// The SHA-256 of the whole file, 64 lowercase hex digits.
    pub sha256: String,
    /// The whole file's size in bytes.
    pub size: u64,
    /// Where in the file `data` starts.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

impl FileChunk {
    fn check(&self) -> Result<(), SyncError> {
        let bad = |why: String| SyncError::malformed(format!("files chunk: {why}"));
        validate_vessel_id(&self.vessel_id).map_err(|e| bad(e.to_string()))?;
        keelson_model::attachment::validate_sha256(&self.sha256).map_err(|e| bad(e.to_string()))?;
        keelson_model::attachment::validate_size(self.size).map_err(|e| bad(e.to_string()))?;
        if self.data.is_empty() {
            return Err(bad("carries no bytes".into()));
        }
        let end = self.offset.checked_add(self.data.len() as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(bad(format!(
                "{} bytes at {} run past the file's {} bytes",
                self.data.len(),
                self.offset,
                self.size
            )));
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct FileBodyRef<'a> {
    lane: u8,
    vessel_id: &'a str,
    sha256: &'a str,
    size: u64,
    offset: u64,
    data: &'a [u8],
}

#[derive(Deserialize)]
struct FileBody {
    lane: u8,
    vessel_id: String,
    sha256: String,
    size: u64,
    offset: u64,
    data: Vec<u8>,
}

/// Encodes a files chunk, checked with the decoder's rules and within the
/// same size limits as [`encode_chunk`].
pub fn encode_file_chunk(chunk: &FileChunk) -> Result<Vec<u8>, SyncError> {
    chunk.check()?;
    seal(&FileBodyRef {
        lane: Lane::Files.code(),
        vessel_id: &chunk.vessel_id,
        sha256: &chunk.sha256,
        size: chunk.size,
        offset: chunk.offset,
        data: &chunk.data,
    })
}

/// Decodes and checks a files chunk, inflating at most `max_decoded`
/// bytes. Never panics on any input; every refusal is a client error.
pub fn decode_file_chunk(bytes: &[u8], max_decoded: usize) -> Result<FileChunk, SyncError> {
    let decoded: FileBody = open(bytes, max_decoded)?;
    if decoded.lane != Lane::Files.code() {
        return Err(SyncError::malformed(format!(
            "files chunk: lane code {} is not the files lane",
            decoded.lane
        )));
    }
    let chunk = FileChunk {
        vessel_id: decoded.vessel_id,
        sha256: decoded.sha256,
        size: decoded.size,
        offset: decoded.offset,
        data: decoded.data,
    };
    chunk.check()?;
    Ok(chunk)
}

/// How many leading entries fit in a body of about `target_bytes`
/// (uncompressed). At least one entry is taken whenever there is one, so a
/// sender always makes progress; an entry too large on its own is then
/// refused by [`encode_chunk`]. With zstd typically shrinking record changes
/// two- to four-fold, a target of 3× the wanted chunk size is a fair start.
pub fn chunk_entries_by_budget(entries: &[ChangeEntry], target_bytes: usize) -> usize {
    let mut used = 0usize;
    for (i, entry) in entries.iter().enumerate() {
        let size = entry
            .change
            .len()
            .saturating_add(entry.record_id.len())
            .saturating_add(ENTRY_OVERHEAD);
        used = used.saturating_add(size);
        if used > target_bytes {
            return i.max(1);
        }
    }
    entries.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(seq: u64, record: &str, len: usize) -> ChangeEntry {
        ChangeEntry {
            seq,
            record_id: record.into(),
            change: (0..len).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn sample() -> Chunk {
        Chunk {
            lane: Lane::Records,
            vessel_id: "imo9321483".into(),
            entries: vec![
                entry(1, "f-1", 120),
                entry(2, "f-2", 90),
                entry(7, "f-1", 200),
            ],
        }
    }

    #[test]
    fn file_chunks_round_trip_and_stay_inside_their_file() {
        let chunk = FileChunk {
            vessel_id: "imo9321483".into(),
            sha256: "ab".repeat(32),
            size: 10,
            offset: 4,
            data: vec![1, 2, 3, 4, 5, 6],
        };
        let bytes = encode_file_chunk(&chunk).unwrap();
        assert_eq!(decode_file_chunk(&bytes, MAX_DECODED_BYTES).unwrap(), chunk);
        assert!(
            decode_chunk(&bytes, MAX_DECODED_BYTES).is_err(),
            "not a records chunk"
        );
        for bad in [
            FileChunk {
                offset: 5,
                ..chunk.clone()
            },
            FileChunk {
                data: vec![],
                ..chunk.clone()
            },
            FileChunk {
                sha256: "../../etc/passwd".into(),
                ..chunk.clone()
            },
            FileChunk {
                offset: u64::MAX,
                ..chunk.clone()
            },
        ] {
            assert!(matches!(
                encode_file_chunk(&bad),
                Err(SyncError::Malformed(_))
            ));
        }
    }

    #[test]
    fn round_trip() {
        let chunk = sample();
        let bytes = encode_chunk(&chunk).unwrap();
        assert_eq!(&bytes[..4], b"KSC1");
        let back = decode_chunk(&bytes, MAX_DECODED_BYTES).unwrap();
        assert_eq!(back, chunk);
        assert_eq!(back.last_seq(), Some(7));
        assert!(back.expect_vessel("imo9321483").is_ok());
        assert!(matches!(
            back.expect_vessel("imo0000001"),
            Err(SyncError::WrongVessel { .. })
        ));

        let empty = Chunk {
            entries: vec![],
            ..sample()
        };
        let back = decode_chunk(&encode_chunk(&empty).unwrap(), MAX_DECODED_BYTES).unwrap();
        assert_eq!(back, empty);
        assert_eq!(back.last_seq(), None);
    }

    #[test]
    fn real_changes_round_trip() {
        use crate::record::RecordDoc;
        use keelson_model::{NewFault, Severity};
        let new = NewFault {
            title: "Bilge alarm".into(),
            description: String::new(),
            equipment: "Bilge".into(),
            severity: Severity::Medium,
        };
        let (_, change) =
            RecordDoc::create_fault("f-9", "imo9321483", &new, "chief", chrono::Utc::now())
                .unwrap();
        let chunk = Chunk {
            lane: Lane::Records,
            vessel_id: "imo9321483".into(),
            entries: vec![ChangeEntry {
                seq: 1,
                record_id: "f-9".into(),
                change,
            }],
        };
        let back = decode_chunk(&encode_chunk(&chunk).unwrap(), MAX_DECODED_BYTES).unwrap();
        let rebuilt = RecordDoc::from_changes(&[back.entries[0].change.clone()]).unwrap();
        assert_eq!(rebuilt.to_fault().unwrap().title, "Bilge alarm");
    }

    #[test]
    fn invalid_chunks_are_not_encoded() {
        let mut c = sample();
        c.entries[1].seq = 1;
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
        let mut c = sample();
        c.entries[0].seq = 0;
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
        let mut c = sample();
        c.entries[0].record_id = String::new();
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
        let mut c = sample();
        c.entries[0].record_id = "x".repeat(65);
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
        let mut c = sample();
        c.entries[0].change.clear();
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
        let mut c = sample();
        c.vessel_id = "Not A Vessel".into();
        assert!(matches!(encode_chunk(&c), Err(SyncError::Malformed(_))));
    }

    /// Builds what a hostile or buggy sender could put on the wire, bypassing
    /// the encoder's checks.
    fn raw_chunk(lane: u8, vessel: &str, entries: &[ChangeEntry], trailing: &[u8]) -> Vec<u8> {
        let mut body = postcard::to_stdvec(&BodyRef {
            lane,
            vessel_id: vessel,
            entries,
        })
        .unwrap();
        body.extend_from_slice(trailing);
        let mut out = CHUNK_MAGIC.to_vec();
        out.extend(zstd::bulk::compress(&body, 3).unwrap());
        out
    }

    #[test]
    fn decoder_checks_contents() {
        let good = sample().entries;
        assert!(decode_chunk(&raw_chunk(1, "imo9321483", &good, &[]), MAX_DECODED_BYTES).is_ok());
        let cases = [
            raw_chunk(0, "imo9321483", &good, &[]),
            raw_chunk(9, "imo9321483", &good, &[]),
            raw_chunk(1, "", &good, &[]),
            raw_chunk(1, "imo9321483", &good, &[0]),
            raw_chunk(1, "imo9321483", &[entry(3, "a", 5), entry(3, "a", 5)], &[]),
            raw_chunk(1, "imo9321483", &[entry(4, "a", 5), entry(2, "a", 5)], &[]),
            raw_chunk(1, "imo9321483", &[entry(1, &"r".repeat(65), 5)], &[]),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            assert!(
                matches!(
                    decode_chunk(bytes, MAX_DECODED_BYTES),
                    Err(SyncError::Malformed(_))
                ),
                "case {i}"
            );
        }
    }

    #[test]
    fn garbage_truncation_and_magic() {
        assert!(matches!(
            decode_chunk(&[], MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunk(b"KSC", MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunk(b"KSC1", MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunk(b"KSC1 this is not zstd at all", MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        let mut bytes = encode_chunk(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode_chunk(&bytes[..cut], MAX_DECODED_BYTES).is_err(),
                "cut {cut}"
            );
        }
        // Flipping any single byte must never panic; most flips are caught by
        // zstd's checks or by the body checks, the rest still decode as a
        // valid chunk.
        for i in 0..bytes.len() {
            bytes[i] ^= 0x5a;
            let _ = decode_chunk(&bytes, MAX_DECODED_BYTES);
            bytes[i] ^= 0x5a;
        }
        bytes[0] = b'X';
        assert!(matches!(
            decode_chunk(&bytes, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
    }

    #[test]
    fn bombs_and_oversize_are_refused() {
        // 64 MiB of zeros compresses to a few kilobytes.
        let mut bomb = CHUNK_MAGIC.to_vec();
        bomb.extend(zstd::bulk::compress(&vec![0u8; 64 << 20], 1).unwrap());
        assert!(bomb.len() < MAX_CHUNK_BYTES);
        assert!(matches!(
            decode_chunk(&bomb, MAX_DECODED_BYTES),
            Err(SyncError::TooLarge { .. })
        ));
        // A valid chunk over a tight caller cap is refused too.
        let bytes = encode_chunk(&sample()).unwrap();
        assert!(matches!(
            decode_chunk(&bytes, 100),
            Err(SyncError::TooLarge { .. })
        ));
        let huge = vec![0u8; MAX_CHUNK_BYTES + 1];
        assert!(matches!(
            decode_chunk(&huge, MAX_DECODED_BYTES),
            Err(SyncError::TooLarge { .. })
        ));
        // Incompressible entries over the compressed cap are not encoded.
        let mut noise = Vec::with_capacity(MAX_CHUNK_BYTES + 1024);
        let mut x: u32 = 0x1234_5678;
        while noise.len() < MAX_CHUNK_BYTES + 1024 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        let big = Chunk {
            entries: vec![ChangeEntry {
                seq: 1,
                record_id: "f-1".into(),
                change: noise,
            }],
            ..sample()
        };
        assert!(matches!(
            encode_chunk(&big),
            Err(SyncError::TooLarge { .. })
        ));
    }

    #[test]
    fn budget_split() {
        let entries: Vec<_> = (1..=10).map(|s| entry(s, "f-1", 100)).collect();
        assert_eq!(chunk_entries_by_budget(&entries, 0), 1);
        assert_eq!(chunk_entries_by_budget(&entries, 1_000_000), 10);
        let n = chunk_entries_by_budget(&entries, 500);
        assert!((1..10).contains(&n));
        let chunk = Chunk {
            entries: entries[..n].to_vec(),
            ..sample()
        };
        let body = postcard::to_stdvec(&BodyRef {
            lane: 1,
            vessel_id: &chunk.vessel_id,
            entries: &chunk.entries,
        })
        .unwrap();
        assert!(body.len() <= 500 + 16);
        assert_eq!(chunk_entries_by_budget(&[], 500), 0);
    }

    #[test]
    fn lane_names_and_codes() {
        for lane in Lane::ALL {
            assert_eq!(Lane::from_code(lane.code()), Some(lane));
            assert_eq!(lane.as_str().parse::<Lane>().unwrap(), lane);
            assert_eq!(
                serde_json::to_string(&lane).unwrap(),
                format!("\"{}\"", lane.as_str())
            );
        }
        assert_eq!(Lane::from_code(0), None);
        assert_eq!(Lane::from_code(4), None, "raw samples have no lane yet");
        assert!("samples".parse::<Lane>().is_err());
        assert_eq!(
            Lane::ALL.map(Lane::code),
            [1, 2, 3, 5],
            "lanes go in priority order"
        );
    }

    fn alarm(seq: u64, event: &str) -> AlarmEntry {
        AlarmEntry {
            seq,
            alarm_id: Some(3),
            tag: "me.lube_oil_pressure".into(),
            kind: "low_low".into(),
            event: event.into(),
            at_ms: 1_767_225_600_000 + seq as i64,
            value: Some(2.4),
            by: (event == "acknowledged").then(|| "anna.b".to_owned()),
            fault_id: None,
        }
    }

    fn alarms(entries: Vec<AlarmEntry>) -> AlarmChunk {
        AlarmChunk {
            vessel_id: "imo9321483".into(),
            entries,
        }
    }

    #[test]
    fn alarm_chunks_round_trip_and_stay_in_their_lane() {
        let mut logged = alarm(9, "fault_logged");
        logged.fault_id = Some("f-77".into());
        logged.by = Some("chief".into());
        let mut unlisted = alarm(12, "cleared");
        unlisted.alarm_id = None;
        unlisted.value = None;
        let chunk = alarms(vec![
            alarm(7, "raised"),
            alarm(8, "acknowledged"),
            logged,
            unlisted,
        ]);
        let bytes = encode_alarm_chunk(&chunk).unwrap();
        assert_eq!(&bytes[..4], b"KSC1");
        assert_eq!(
            decode_alarm_chunk(&bytes, MAX_DECODED_BYTES).unwrap(),
            chunk
        );
        assert_eq!(chunk.last_seq(), Some(12));
        assert_eq!(alarms(vec![]).last_seq(), None);
        // No other decoder takes an alarms chunk, and the alarms decoder
        // takes no other lane's.
        assert!(decode_chunk(&bytes, MAX_DECODED_BYTES).is_err());
        assert!(decode_rollup_chunk(&bytes, MAX_DECODED_BYTES).is_err());
        assert!(decode_file_chunk(&bytes, MAX_DECODED_BYTES).is_err());
        let records = encode_chunk(&sample()).unwrap();
        assert!(matches!(
            decode_alarm_chunk(&records, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        // A thousand events of a few alarms compress well below their size.
        let many: Vec<AlarmEntry> = (1..=1000).map(|i| alarm(i, "raised")).collect();
        let raw = postcard::to_stdvec(&many).unwrap().len();
        let bytes = encode_alarm_chunk(&alarms(many)).unwrap();
        assert!(bytes.len() * 4 < raw, "{} of {raw}", bytes.len());
    }

    #[test]
    fn alarm_chunks_with_bad_contents_are_refused() {
        let with = |f: fn(&mut AlarmEntry)| {
            let mut e = alarm(2, "raised");
            f(&mut e);
            alarms(vec![alarm(1, "raised"), e])
        };
        let bad = [
            alarms(vec![alarm(0, "raised")]),
            alarms(vec![alarm(2, "raised"), alarm(2, "cleared")]),
            alarms(vec![alarm(3, "raised"), alarm(1, "cleared")]),
            with(|e| e.alarm_id = Some(0)),
            with(|e| e.alarm_id = Some(u64::MAX)),
            with(|e| e.seq = u64::MAX),
            with(|e| e.tag = String::new()),
            with(|e| e.tag = "a\u{7}b".into()),
            with(|e| e.tag = "t".repeat(MAX_TAG_LEN + 1)),
            with(|e| e.kind = String::new()),
            with(|e| e.kind = "High".into()),
            with(|e| e.event = "raised; drop table".into()),
            with(|e| e.event = "e".repeat(MAX_ALARM_NAME_LEN + 1)),
            with(|e| e.at_ms = -1),
            with(|e| e.at_ms = i64::MAX),
            with(|e| e.value = Some(f64::INFINITY)),
            with(|e| e.value = Some(f64::NAN)),
            with(|e| e.by = Some(String::new())),
            with(|e| e.by = Some("anna\nroot".into())),
            with(|e| e.fault_id = Some("f".repeat(65))),
            AlarmChunk {
                vessel_id: "Not A Vessel".into(),
                entries: vec![alarm(1, "raised")],
            },
        ];
        for chunk in bad {
            assert!(
                matches!(encode_alarm_chunk(&chunk), Err(SyncError::Malformed(_))),
                "{chunk:?}"
            );
            // A sender that skipped the checks is refused by the receiver.
            let raw = seal(&AlarmBodyRef {
                lane: Lane::Alarms.code(),
                vessel_id: &chunk.vessel_id,
                entries: &chunk.entries,
            })
            .unwrap();
            assert!(
                matches!(
                    decode_alarm_chunk(&raw, MAX_DECODED_BYTES),
                    Err(SyncError::Malformed(_))
                ),
                "{chunk:?}"
            );
        }
        // Trailing bytes, truncation and a bomb are refused as for every lane.
        let good = encode_alarm_chunk(&alarms(vec![alarm(1, "raised")])).unwrap();
        for cut in 0..good.len() {
            assert!(decode_alarm_chunk(&good[..cut], MAX_DECODED_BYTES).is_err());
        }
        let mut body = postcard::to_stdvec(&AlarmBodyRef {
            lane: Lane::Alarms.code(),
            vessel_id: "imo9321483",
            entries: &[alarm(1, "raised")],
        })
        .unwrap();
        body.push(0);
        let mut trailing = CHUNK_MAGIC.to_vec();
        trailing.extend(zstd::bulk::compress(&body, 3).unwrap());
        assert!(matches!(
            decode_alarm_chunk(&trailing, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        let mut bomb = CHUNK_MAGIC.to_vec();
        bomb.extend(zstd::bulk::compress(&vec![0u8; 64 << 20], 1).unwrap());
        assert!(matches!(
            decode_alarm_chunk(&bomb, MAX_DECODED_BYTES),
            Err(SyncError::TooLarge { .. })
        ));
    }

    fn rollup(seq: u64, tag: &str, start_ms: i64) -> RollupEntry {
        RollupEntry {
            seq,
            tag: tag.into(),
            start_ms,
            min: Some(1.0),
            max: Some(3.0),
            mean: Some(2.0),
            last: None,
            count: 3600,
            good: 3599,
        }
    }

    #[test]
    fn rollup_chunks_round_trip_and_stay_in_their_lane() {
        let chunk = RollupChunk {
            vessel_id: "imo9321483".into(),
            width: RollupWidth::Minute,
            entries: vec![
                rollup(1, "me.rpm", 60_000),
                rollup(1, "me.rpm", 120_000),
                rollup(4, "gen.kw", 0),
            ],
        };
        let bytes = encode_rollup_chunk(&chunk).unwrap();
        assert_eq!(
            decode_rollup_chunk(&bytes, MAX_DECODED_BYTES).unwrap(),
            chunk
        );
        assert_eq!(chunk.last_seq(), Some(4));
        // Neither decoder takes the other lane's chunk.
        assert!(matches!(
            decode_chunk(&bytes, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
        let records = encode_chunk(&sample()).unwrap();
        assert!(matches!(
            decode_rollup_chunk(&records, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
    }

    #[test]
    fn rollup_chunks_with_bad_contents_are_refused() {
        let with = |width: RollupWidth, entries: Vec<RollupEntry>| RollupChunk {
            vessel_id: "imo9321483".into(),
            width,
            entries,
        };
        let mut nan = rollup(1, "a", 0);
        nan.mean = Some(f64::NAN);
        let mut too_good = rollup(1, "a", 0);
        too_good.good = too_good.count + 1;
        let bad = [
            with(RollupWidth::Hour, vec![rollup(0, "a", 0)]),
            with(
                RollupWidth::Hour,
                vec![rollup(2, "a", 0), rollup(1, "a", 0)],
            ),
            with(RollupWidth::Hour, vec![rollup(1, "", 0)]),
            with(RollupWidth::Hour, vec![rollup(1, "a\nb", 0)]),
            with(RollupWidth::Hour, vec![rollup(1, &"t".repeat(129), 0)]),
            with(RollupWidth::Hour, vec![rollup(1, "a", 60_000)]),
            with(RollupWidth::Minute, vec![rollup(1, "a", 1)]),
            with(RollupWidth::Hour, vec![nan]),
            with(RollupWidth::Hour, vec![too_good]),
        ];
        for chunk in bad {
            assert!(
                matches!(encode_rollup_chunk(&chunk), Err(SyncError::Malformed(_))),
                "{chunk:?}"
            );
            // A sender that skipped the checks is refused by the receiver.
            let raw = seal(&RollupBodyRef {
                lane: Lane::Rollups.code(),
                vessel_id: &chunk.vessel_id,
                width: chunk.width.code(),
                entries: &chunk.entries,
            })
            .unwrap();
            assert!(matches!(
                decode_rollup_chunk(&raw, MAX_DECODED_BYTES),
                Err(SyncError::Malformed(_))
            ));
        }
        let unknown_width = seal(&RollupBodyRef {
            lane: Lane::Rollups.code(),
            vessel_id: "imo9321483",
            width: 7,
            entries: &[],
        })
        .unwrap();
        assert!(matches!(
            decode_rollup_chunk(&unknown_width, MAX_DECODED_BYTES),
            Err(SyncError::Malformed(_))
        ));
    }
}
