//! automerge's own sync protocol, run in memory as the yardstick the wire
//! format is measured against (the `sync-wire` benchmark). It is never the
//! transport: it assumes a reliable stream, sends unbounded messages and
//! needs several round trips per document.

use automerge::sync::{State, SyncDoc};
use automerge::{AutoCommit, Change};

use crate::SyncError;

/// Bytes automerge's sync protocol exchanges, in both directions, to bring
/// a receiver holding `have` up to a sender holding `all` (both lists of
/// raw changes of one document), and the number of round trips it took.
pub fn sync_protocol_bytes(have: &[Vec<u8>], all: &[Vec<u8>]) -> Result<(usize, usize), SyncError> {
    let mut sender = doc_of(all)?;
    let mut receiver = doc_of(have)?;
    let (mut s_state, mut r_state) = (State::new(), State::new());
    let (mut bytes, mut rounds) = (0usize, 0usize);
    // The protocol converges in a handful of rounds; the bound only guards
    // against a bug looping forever.
    for _ in 0..64 {
        let mut quiet = true;
        if let Some(m) = sender.sync().generate_sync_message(&mut s_state) {
            let encoded = m.encode();
            bytes += encoded.len();
            let m = automerge::sync::Message::decode(&encoded)
                .map_err(|e| SyncError::Internal(e.to_string()))?;
            receiver
                .sync()
                .receive_sync_message(&mut r_state, m)
                .map_err(|e| SyncError::Internal(e.to_string()))?;
            quiet = false;
        }
        if let Some(m) = receiver.sync().generate_sync_message(&mut r_state) {
            let encoded = m.encode();
            bytes += encoded.len();
            let m = automerge::sync::Message::decode(&encoded)
                .map_err(|e| SyncError::Internal(e.to_string()))?;
            sender
                .sync()
                .receive_sync_message(&mut s_state, m)
                .map_err(|e| SyncError::Internal(e.to_string()))?;
            quiet = false;
        }
        if quiet {
            return Ok((bytes, rounds));
        }
        rounds += 1;
    }
    Err(SyncError::Internal(
        "automerge sync did not converge in 64 rounds".into(),
    ))
}

fn doc_of(changes: &[Vec<u8>]) -> Result<AutoCommit, SyncError> {
    let mut doc = AutoCommit::new();
    let decoded = changes
        .iter()
        .map(|c| Change::from_bytes(c.clone()).map_err(|e| SyncError::malformed(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    doc.apply_changes(decoded)
        .map_err(|e| SyncError::Rejected(e.to_string()))?;
    Ok(doc)
}
