//! The JSON messages and paths of the first-cut sync session.
//!
//! The vessel always initiates; the shore never dials a ship. Every request
//! is signed (see [`crate::signing`]). A session goes:
//!
//! 1. `POST` [`SESSION_PATH`] with a [`SessionRequest`]: the vessel states
//!    its cursors and the shore answers with a [`SessionResponse`] stating
//!    its own, all in one round trip.
//! 2. Vessel → shore: `POST` [`RECORDS_CHUNKS_PATH`] with a chunk
//!    ([`crate::wire`]) of the vessel's entries after `records_acked`. The
//!    shore makes the chunk durable, then answers with a [`ChunkAck`]. After
//!    a dropped link the vessel resumes after the last ack, so at most one
//!    chunk is sent twice, and re-sent changes are harmless.
//! 3. Shore → vessel: `POST` [`RECORDS_PULL_PATH`] with a [`PullRequest`];
//!    the response body is a chunk of the shore's outbound entries for this
//!    vessel after `after`. An empty chunk means nothing more. The vessel
//!    acknowledges what it has made durable by the `after` of its next pull
//!    and the `records_received` of its next session.
//! 4. Vessel → shore: `POST` [`ALARMS_CHUNKS_PATH`] with alarms chunks
//!    ([`crate::wire::AlarmChunk`]): the vessel's alarm history after its
//!    alarms cursor, or after the shore's `alarms_held` when that is lower
//!    (a shore restored from a backup). The shore stores each entry once
//!    (a re-sent one is recognised by its seq, time, key and event),
//!    makes the chunk durable and answers with a [`ChunkAck`] of the alarms
//!    lane; only then does the vessel move its cursor.
//! 5. Vessel → shore: `POST` [`ROLLUPS_CHUNKS_PATH`] with rollup chunks
//!    ([`crate::wire::RollupChunk`]), hourly first, then 1-minute when the
//!    vessel's policy and budget allow, each answered with a [`ChunkAck`] of
//!    the rollups lane once durable. The vessel keeps the cursor: a rollup
//!    re-sent after a dropped link replaces itself ashore.
//! 6. Vessel → shore: `POST` [`FILES_CHUNKS_PATH`] with runs of attachment
//!    files ([`crate::wire::FileChunk`]), after the records that name them.
//!    The shore appends a run only at the length it already holds, makes
//!    it durable and answers with a [`FileAck`] of how much it holds; the
//!    vessel resumes from there. Once the whole file is there the shore
//!    checks its SHA-256 before storing it under its final name.
//!
//! Sequence numbers start at 1 and a cursor of 0 means "nothing yet". All
//! messages refuse unknown fields, so a typo or a newer peer's field is a
//! clear 400 rather than silently ignored.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::SyncError;
use crate::wire::{Lane, MAX_CHUNK_BYTES};

/// Opens a session (`POST`, JSON [`SessionRequest`] → [`SessionResponse`]).
pub const SESSION_PATH: &str = "/sync/v1/session";
/// Vessel → shore record chunks (`POST`, chunk → JSON [`ChunkAck`]).
pub const RECORDS_CHUNKS_PATH: &str = "/sync/v1/records/chunks";
/// Vessel → shore alarm history chunks (`POST`, alarms chunk → JSON
/// [`ChunkAck`]).
pub const ALARMS_CHUNKS_PATH: &str = "/sync/v1/alarms/chunks";
/// Vessel → shore rollup chunks (`POST`, rollups chunk → JSON [`ChunkAck`]).
pub const ROLLUPS_CHUNKS_PATH: &str = "/sync/v1/rollups/chunks";
/// Vessel → shore attachment file chunks (`POST`, files chunk → JSON
/// [`FileAck`]).
pub const FILES_CHUNKS_PATH: &str = "/sync/v1/files/chunks";
/// Shore → vessel record chunks (`POST`, JSON [`PullRequest`] → chunk).
pub const RECORDS_PULL_PATH: &str = "/sync/v1/records/pull";
/// Content type of a chunk body.
pub const CHUNK_CONTENT_TYPE: &str = "application/vnd.keelson.chunk";
/// Largest JSON message accepted, in bytes; the real ones are under 200.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The vessel's opening statement of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The vessel; must match the signature's vessel.
    pub vessel_id: String,
    /// Highest local records seq the vessel believes the shore holds.
    pub records_sent: u64,
    /// Highest shore outbound records seq the vessel holds.
    pub records_received: u64,
    /// Bytes (before compression) waiting on board in every lane, for the
    /// fleet view.
    #[serde(default)]
    pub pending_bytes: u64,
    /// Alarm history entries waiting on board, for the fleet view.
    #[serde(default)]
    pub pending_alarm_events: u64,
    /// The vessel's estimate of how long they take to send, in seconds, at
    /// the rate it last measured.
    #[serde(default)]
    pub eta_secs: Option<u64>,
    /// The epoch of the vessel's database. A new one means the vessel was
    /// restored from a backup and its sequence numbers start again from
    /// there, so the shore's acknowledgement from before no longer holds.
    #[serde(default)]
    pub epoch: String,
}

impl SessionRequest {
    /// Refuses a session opened for a vessel other than the authenticated one.
    pub fn expect_vessel(&self, authenticated: &str) -> Result<(), SyncError> {
        if self.vessel_id == authenticated {
            Ok(())
        } else {
            Err(SyncError::WrongVessel {
                expected: authenticated.to_owned(),
                got: self.vessel_id.clone(),
            })
        }
    }
}

/// The shore's answer to a [`SessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionResponse {
    /// Highest vessel records seq the shore has made durable; the vessel
    /// sends from the entry after it.
    pub records_acked: u64,
    /// Highest shore outbound records seq for this vessel; when above the
    /// vessel's `records_received`, there is something to pull.
    pub records_available: u64,
    /// Highest alarm history seq of this vessel the shore holds; when below
    /// the vessel's alarms cursor (the shore was restored from a backup),
    /// the vessel sends again from there.
    #[serde(default)]
    pub alarms_held: u64,
    /// The epoch of the shore's database; a new one means the shore was
    /// restored, and the vessel pulls its outbound lane again from the start.
    #[serde(default)]
    pub epoch: String,
}

/// The receiver's acknowledgement of a chunk it has made durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkAck {
    /// The lane of the chunk.
    pub lane: Lane,
    /// The chunk's last seq, now durable (everything up to it is).
    pub acked_seq: u64,
}

/// The shore's answer to a files chunk: how much of the file it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAck {
    /// Always the files lane.
    pub lane: Lane,
    /// The file.
    pub sha256: String,
    /// How many leading bytes of it are durable ashore; the vessel sends
    /// from there.
    pub received: u64,
    /// Whether the shore verified the whole file and stored it.
    pub complete: bool,
}

/// The vessel's request for the next chunk of the shore's outbound lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The lane to pull.
    pub lane: Lane,
    /// The highest seq the vessel already holds; entries after it come back.
    pub after: u64,
    /// The largest chunk the vessel wants, in encoded bytes.
    pub max_bytes: u64,
}

impl PullRequest {
    /// `max_bytes` clamped to what a chunk may be at all, so a server can use
    /// it as a budget without trusting it.
    pub fn clamped_max_bytes(&self) -> usize {
        usize::try_from(self.max_bytes)
            .unwrap_or(usize::MAX)
            .min(MAX_CHUNK_BYTES)
    }
}

/// Parses one message from a request or response body, refusing bodies over
/// [`MAX_MESSAGE_BYTES`] and anything that is not exactly the message.
pub fn decode_message<T: DeserializeOwned>(body: &[u8]) -> Result<T, SyncError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::TooLarge {
            what: "sync message",
            size: body.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    serde_json::from_slice(body).map_err(|e| SyncError::malformed(format!("sync message: {e}")))
}

/// Serializes one message as a JSON body.
pub fn encode_message<T: Serialize>(message: &T) -> Result<Vec<u8>, SyncError> {
    serde_json::to_vec(message)
        .map_err(|e| SyncError::Internal(format!("encoding a sync message: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let req = SessionRequest {
            vessel_id: "imo9321483".into(),
            records_sent: 41,
            records_received: 7,
            pending_bytes: 0,
            pending_alarm_events: 0,
            eta_secs: None,
            epoch: "e1".into(),
        };
        let bytes = encode_message(&req).unwrap();
        assert_eq!(decode_message::<SessionRequest>(&bytes).unwrap(), req);
        assert!(req.expect_vessel("imo9321483").is_ok());
        assert!(matches!(
            req.expect_vessel("imo0000001"),
            Err(SyncError::WrongVessel { .. })
        ));

        let resp = SessionResponse {
            records_acked: 40,
            records_available: 9,
            alarms_held: 3,
            epoch: "e2".into(),
        };
        let bytes = encode_message(&resp).unwrap();
        assert_eq!(decode_message::<SessionResponse>(&bytes).unwrap(), resp);

        let ack: ChunkAck = decode_message(br#"{"lane":"records","acked_seq":12}"#).unwrap();
        assert_eq!(
            ack,
            ChunkAck {
                lane: Lane::Records,
                acked_seq: 12
            }
        );
        assert_eq!(
            String::from_utf8(encode_message(&ack).unwrap()).unwrap(),
            r#"{"lane":"records","acked_seq":12}"#
        );

        let pull: PullRequest =
            decode_message(br#"{"lane":"records","after":3,"max_bytes":99999999}"#).unwrap();
        assert_eq!(pull.after, 3);
        assert_eq!(pull.clamped_max_bytes(), MAX_CHUNK_BYTES);
    }

    #[test]
    fn bad_messages_are_refused() {
        let bad: [&[u8]; 5] = [
            br#"{"vessel_id":"v","records_sent":1,"records_received":2,"extra":1}"#,
            br#"{"vessel_id":"v","records_sent":1}"#,
            br#"{"vessel_id":"v","records_sent":-1,"records_received":2}"#,
            b"not json",
            b"",
        ];
        for body in bad {
            assert!(matches!(
                decode_message::<SessionRequest>(body),
                Err(SyncError::Malformed(_))
            ));
        }
        assert!(matches!(
            decode_message::<ChunkAck>(br#"{"lane":"samples","acked_seq":1}"#),
            Err(SyncError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            decode_message::<SessionRequest>(&huge),
            Err(SyncError::TooLarge { .. })
        ));
    }
}
