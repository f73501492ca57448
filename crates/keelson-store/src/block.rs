//! The compressed block formats of the sample tiers.
//!
//! A block holds one tag's samples (or one tag's 1-minute rollups) for one
//! closed hour. Each column is compressed on its own with pco, a codec made
//! for numeric sequences: it finds the delta order of timestamps by itself
//! (regular 1 s timestamps cost almost nothing), and it finds that values
//! read as `register × scale + offset` are multiples of a common float base,
//! so a quantized sensor costs about the entropy of its noise.
//!
//! # On-disk format, version 1
//!
//! Every integer in the framing is little-endian.
//!
//! ```text
//! u8      format version (1)
//! u32     n, the number of entries
//! then one section per column, each `u32 byte length` + a pco standalone file
//! ```
//!
//! A samples block has three columns: timestamps (`i64` ms, ascending),
//! flags (`u16`: the quality code in the low byte, bit 8 set when a value is
//! present) and the present values (`f64`, one per flag with bit 8).
//!
//! A 1-minute rollup block has eight columns: minute starts (`i64` ms),
//! sample counts (`u32`), good-quality counts (`u32`), presence (`u16`, 1 when
//! the minute had a value), then min, max, mean and last (`f64`, one each
//! per present minute).
//!
//! A reader refuses a version it does not know instead of guessing, so a
//! later format gets a new version byte and both are read side by side.

use crate::StoreError;
use keelson_model::Quality;
use pco::data_types::Number;

/// The block format this code writes.
pub const BLOCK_VERSION: u8 = 1;

/// One raw sample inside a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawPoint {
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    /// The value, absent when the device gave none.
    pub value: Option<f64>,
    /// The sample's quality.
    pub quality: Quality,
}

/// The aggregate of the samples of one tag over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// Start of the interval, ms since the epoch.
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

impl Rollup {
    /// Aggregates `points` (ascending by time) into one rollup starting at `start_ms`.
    pub fn of(start_ms: i64, points: &[RawPoint]) -> Rollup {
        let mut r = Rollup {
            start_ms,
            min: None,
            max: None,
            mean: None,
            last: None,
            count: 0,
            good: 0,
        };
        let mut sum = 0.0;
        let mut n_values = 0u32;
        for p in points {
            r.count += 1;
            if p.quality == Quality::Good {
                r.good += 1;
            }
            if let Some(v) = p.value {
                r.min = Some(r.min.map_or(v, |m| m.min(v)));
                r.max = Some(r.max.map_or(v, |m| m.max(v)));
                r.last = Some(v);
                sum += v;
                n_values += 1;
            }
        }
        if n_values > 0 {
            r.mean = Some(sum / f64::from(n_values));
        }
        r
    }

    /// Rolls `points` (ascending) up into one rollup per `width_ms` interval.
    pub fn many(points: &[RawPoint], width_ms: i64) -> Vec<Rollup> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < points.len() {
            let start = points[i].ts_ms.div_euclid(width_ms) * width_ms;
            let mut j = i;
            while j < points.len() && points[j].ts_ms < start + width_ms {
                j += 1;
            }
            out.push(Rollup::of(start, &points[i..j]));
            i = j;
        }
        out
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("sample block: {what}"))
}

fn put<T: Number>(out: &mut Vec<u8>, column: &[T]) -> Result<(), StoreError> {
    let bytes = pco::standalone::simple_compress(column, &pco::ChunkConfig::default())
        .map_err(|e| StoreError::Corrupt(format!("cannot compress a column: {e}")))?;
    let len = u32::try_from(bytes.len()).map_err(|_| corrupt("column too large"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the version byte and returns the entry count and a reader of the columns.
    fn open(data: &'a [u8]) -> Result<(usize, Reader<'a>), StoreError> {
        let (&version, rest) = data.split_first().ok_or_else(|| corrupt("empty"))?;
        if version != BLOCK_VERSION {
            return Err(corrupt(&format!("unknown version {version}")));
        }
        let mut r = Reader { rest };
        let n = r.u32()? as usize;
        Ok((n, r))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        if self.rest.len() < 4 {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.rest.split_at(4);
        self.rest = rest;
        let mut b = [0u8; 4];
        b.copy_from_slice(head);
        Ok(u32::from_le_bytes(b))
    }

    fn column<T: Number>(&mut self, expect: usize) -> Result<Vec<T>, StoreError> {
        let len = self.u32()? as usize;
        if self.rest.len() < len {
            return Err(corrupt("truncated column"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        let column: Vec<T> = pco::standalone::simple_decompress(bytes)
            .map_err(|e| corrupt(&format!("column does not decode: {e}")))?;
        if column.len() != expect {
            return Err(corrupt("column length disagrees with the header"));
        }
        Ok(column)
    }
}

fn header(n: usize) -> Result<Vec<u8>, StoreError> {
    let n = u32::try_from(n).map_err(|_| corrupt("too many entries"))?;
    let mut out = Vec::with_capacity(64);
    out.push(BLOCK_VERSION);
    out.extend_from_slice(&n.to_le_bytes());
    Ok(out)
}

/// Encodes raw samples (ascending by time, no duplicate times) as a block.
pub fn encode_samples(points: &[RawPoint]) -> Result<Vec<u8>, StoreError> {
    let mut out = header(points.len())?;
    let ts: Vec<i64> = points.iter().map(|p| p.ts_ms).collect();
    let flags: Vec<u16> = points
        .iter()
        .map(|p| u16::from(p.quality.code()) | if p.value.is_some() { 0x100 } else { 0 })
        .collect();
    let values: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    put(&mut out, &ts)?;
    put(&mut out, &flags)?;
    put(&mut out, &values)?;
    Ok(out)
}

/// Decodes a samples block.
pub fn decode_samples(data: &[u8]) -> Result<Vec<RawPoint>, StoreError> {
    let (n, mut r) = Reader::open(data)?;
    let ts: Vec<i64> = r.column(n)?;
    let flags: Vec<u16> = r.column(n)?;
    let n_values = flags.iter().filter(|f| *f & 0x100 != 0).count();
    let values: Vec<f64> = r.column(n_values)?;
    let mut values = values.into_iter();
    Ok(ts
        .into_iter()
        .zip(flags)
        .map(|(ts_ms, f)| RawPoint {
            ts_ms,
            value: if f & 0x100 != 0 { values.next() } else { None },
            quality: Quality::from_code((f & 0xff) as u8),
        })
        .collect())
}

/// Encodes 1-minute rollups (ascending by start) as a block.
pub fn encode_rollups(rollups: &[Rollup]) -> Result<Vec<u8>, StoreError> {
    let mut out = header(rollups.len())?;
    let starts: Vec<i64> = rollups.iter().map(|r| r.start_ms).collect();
    let counts: Vec<u32> = rollups.iter().map(|r| r.count).collect();
    let good: Vec<u32> = rollups.iter().map(|r| r.good).collect();
    let has: Vec<u16> = rollups
        .iter()
        .map(|r| u16::from(r.mean.is_some()))
        .collect();
    put(&mut out, &starts)?;
    put(&mut out, &counts)?;
    put(&mut out, &good)?;
    put(&mut out, &has)?;
    let present = || rollups.iter().filter(|r| r.mean.is_some());
    for field in [
        |r: &Rollup| r.min,
        |r: &Rollup| r.max,
        |r: &Rollup| r.mean,
        |r: &Rollup| r.last,
    ] {
        let column: Vec<f64> = present().map(|r| field(r).unwrap_or(f64::NAN)).collect();
        put(&mut out, &column)?;
    }
    Ok(out)
}

/// Decodes a 1-minute rollup block.
pub fn decode_rollups(data: &[u8]) -> Result<Vec<Rollup>, StoreError> {
    let (n, mut r) = Reader::open(data)?;
    let starts: Vec<i64> = r.column(n)?;
    let counts: Vec<u32> = r.column(n)?;
    let good: Vec<u32> = r.column(n)?;
    let has: Vec<u16> = r.column(n)?;
    let n_present = has.iter().filter(|h| **h != 0).count();
    let mut min = r.column::<f64>(n_present)?.into_iter();
    let mut max = r.column::<f64>(n_present)?.into_iter();
    let mut mean = r.column::<f64>(n_present)?.into_iter();
    let mut last = r.column::<f64>(n_present)?.into_iter();
    Ok((0..n)
        .map(|i| {
            let present = has[i] != 0;
            let take = |it: &mut std::vec::IntoIter<f64>| if present { it.next() } else { None };
            Rollup {
                start_ms: starts[i],
                min: take(&mut min),
                max: take(&mut max),
                mean: take(&mut mean),
                last: take(&mut last),
                count: counts[i],
                good: good[i],
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantized(n: usize) -> Vec<RawPoint> {
        // A 16-bit register scaled by 0.1, wandering by a few counts: the
        // shape of a real analog input.
        let mut raw: i32 = 4000;
        let mut seed: u32 = 7;
        (0..n)
            .map(|i| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                raw += (seed >> 16) as i32 % 5 - 2;
                RawPoint {
                    ts_ms: 1_699_999_200_000 + i as i64 * 1000,
                    value: if i % 500 == 7 {
                        None
                    } else {
                        Some(f64::from(raw) * 0.1)
                    },
                    quality: if i % 500 == 7 {
                        Quality::Bad
                    } else {
                        Quality::Good
                    },
                }
            })
            .collect()
    }

    #[test]
    fn samples_round_trip_exactly_and_compress() {
        let points = quantized(3600);
        let block = encode_samples(&points).expect("encode");
        assert_eq!(decode_samples(&block).expect("decode"), points);
        // A plain SQLite row costs about 26 bytes; a block must be far smaller.
        let per_sample = block.len() as f64 / points.len() as f64;
        assert!(per_sample < 1.5, "{per_sample} bytes per sample");
    }

    #[test]
    fn rollups_round_trip_and_aggregate() {
        let points = quantized(3600);
        let minutes = Rollup::many(&points, 60_000);
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes.iter().map(|r| r.count).sum::<u32>(), 3600);
        assert_eq!(minutes.iter().map(|r| r.good).sum::<u32>(), 3600 - 8);
        let block = encode_rollups(&minutes).expect("encode");
        assert_eq!(decode_rollups(&block).expect("decode"), minutes);
        let hour = Rollup::of(minutes[0].start_ms, &points);
        assert_eq!(hour.last, points.last().and_then(|p| p.value));
    }

    #[test]
    fn empty_and_unknown_versions() {
        let block = encode_samples(&[]).expect("encode");
        assert!(decode_samples(&block).expect("decode").is_empty());
        let mut bad = block.clone();
        bad[0] = 9;
        assert!(decode_samples(&bad).is_err());
        assert!(decode_samples(&block[..3]).is_err());
    }
}
