//! Fuzzes the expansion of received automerge bundles:
//! `cargo +nightly fuzz run bundle_expander` from this folder.
#![no_main]

use keelson_sync::record::expand_bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = expand_bundle(None, data);
});
