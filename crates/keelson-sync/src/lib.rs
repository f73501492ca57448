//! Keelson's sync layer: the automerge record codec, the chunk wire format
//! of the sync lanes, Ed25519 request signing and the session messages.
//!
//! Architecture invariant: this is the only crate that knows automerge, and
//! it does no network or disk I/O. Callers pass bytes in and get bytes out
//! (documents, changes, chunks, signatures), so the store and the HTTP layers
//! stay independent of automerge and of each other.
//!
//! - [`record`]: one automerge document per maintenance record
//!   ([`RecordDoc`]): faults, equipment and work orders, creating,
//!   editing, merging, reading them back and their history.
//! - [`wire`]: the zstd-compressed chunk format with hard size limits.
//! - [`signing`]: request signatures with a vessel's Ed25519 key.
//! - [`protocol`]: the JSON messages and paths of a sync session.
//!
//! Every fallible function returns [`SyncError`], whose variants say whether
//! the peer or this side is at fault.

pub mod error;
pub mod protocol;
pub mod record;
pub mod reference;
pub mod signing;
pub mod wire;

pub use error::SyncError;
pub use record::{ChangeInfo, RecordDoc, decode_change};
pub use signing::{RequestSignature, VesselKey, sign_request, verify_request};
pub use wire::{
    AlarmChunk, AlarmEntry, ChangeEntry, Chunk, Lane, MAX_CHUNK_BYTES, MAX_DECODED_BYTES,
    RollupChunk, RollupEntry, RollupWidth, decode_alarm_chunk, decode_chunk, decode_rollup_chunk,
    encode_alarm_chunk, encode_chunk, encode_rollup_chunk,
};
