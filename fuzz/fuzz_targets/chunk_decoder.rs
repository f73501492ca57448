//! Fuzzes the sync chunk decoders (records, alarms, rollups and files) and
//! the change decoder behind them:
//! `cargo +nightly fuzz run chunk_decoder` from this folder.
#![no_main]

use keelson_sync::{decode_change, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode_rollup_chunk(data, wire::MAX_DECODED_BYTES);
    let _ = wire::decode_file_chunk(data, wire::MAX_DECODED_BYTES);
    if let Ok(chunk) = wire::decode_alarm_chunk(data, wire::MAX_DECODED_BYTES) {
        // Whatever decodes has passed every check.
        assert!(chunk.entries.windows(2).all(|w| w[0].seq < w[1].seq));
    }
    if let Ok(chunk) = wire::decode_chunk(data, wire::MAX_DECODED_BYTES) {
        for entry in chunk.entries {
            let _ = decode_change(&entry.change);
        }
    }
});
