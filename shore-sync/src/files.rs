//! Attachment files ashore: receiving the files lane and serving the files
//! to the users who may see their vessel.
//!
//! Each vessel's files are kept apart, in `attachments/<vessel id>/` in the
//! data directory (see `keelson_store::files` for the layout and its
//! invariants). A run of a file is taken only when a record of that vessel
//! already names the file (its metadata came first, with the records) and
//! only at the length already held; the part is flushed before the count
//! moves, and the count moves before the answer goes back, so what the
//! vessel is told is durable. The whole file must hash to its name and be
//! the type its record says before it is stored under that name.

use crate::ShoreState;
use crate::api::vessel_of;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use keelson_model::check_content;
use keelson_store::files::FileStore;
use keelson_store::{ArrivingFile, StoreError};
use keelson_sync::protocol::FileAck;
use keelson_sync::wire::{FileChunk, Lane};
use keelson_web::{ApiPath, AppError, CurrentUser, blocking};

/// The folder of vessels' attachment files in the data directory.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// The routes that serve files.
pub fn router() -> Router<ShoreState> {
    Router::new().route("/api/v1/vessels/{id}/attachments/{sha256}", get(serve))
}

/// The file store of one vessel. Vessel ids are checked at registration to
/// be safe in a path.
pub fn vessel_files(state: &ShoreState, vessel_id: &str) -> Result<FileStore, StoreError> {
    keelson_model::validate_vessel_id(vessel_id)
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    FileStore::open(
        &state
            .config
            .storage
            .data_dir
            .join(ATTACHMENTS_DIR)
            .join(vessel_id),
    )
}

/// Takes one run of a vessel's file (already authenticated and decoded)
/// and says how much of the file the shore now holds.
pub fn receive(state: &ShoreState, chunk: &FileChunk) -> Result<FileAck, AppError> {
    let (vessel, sha) = (&chunk.vessel_id, &chunk.sha256);
    let ack = |a: ArrivingFile| FileAck {
        lane: Lane::Files,
        sha256: sha.clone(),
        received: a.received,
        complete: a.complete,
    };
    let meta = state.db.attachment_file(vessel, sha)?.ok_or_else(|| {
        AppError::Conflict(format!(
            "no record of vessel `{vessel}` names file {sha}; its record goes first"
        ))
    })?;
    if meta.size != chunk.size {
        return Err(AppError::BadRequest(format!(
            "file {sha} is {} bytes in its record, not {}",
            meta.size, chunk.size
        )));
    }
    let files = vessel_files(state, vessel)?;
    let held = state.db.arriving_file(vessel, sha)?;
    if held.complete || files.contains(sha) {
        let whole = ArrivingFile {
            received: meta.size,
            complete: true,
        };
        if !held.complete {
            state.db.set_arriving_file(vessel, sha, whole)?;
        }
        return Ok(ack(whole));
    }
    if chunk.offset != held.received {
        // A run re-sent after a lost answer, or one past a gap: the vessel
        // goes on from what is held.
        return Ok(ack(held));
    }
    files.append_part(sha, held.received, &chunk.data)?;
    let received = held.received + chunk.data.len() as u64;
    let mut now = ArrivingFile {
        received,
        complete: false,
    };
    if received == meta.size {
        let declared = meta.content_type;
        let stored = files.finish_part(sha, meta.size, |bytes| {
            check_content(Some(declared.as_str()), bytes).is_ok()
        })?;
        if stored {
            now.complete = true;
            state.sync_metrics.files_stored.inc();
            tracing::info!(vessel = %vessel, sha256 = %sha, size = meta.size, "attachment file stored");
        } else {
            // The vessel sends the whole file again; if its copy is bad,
            // it stops after one more try each session.
            now.received = 0;
            tracing::warn!(vessel = %vessel, sha256 = %sha, "an attachment file did not match its hash or type; asking for it again");
        }
    }
    state.db.set_arriving_file(vessel, sha, now)?;
    Ok(ack(now))
}

/// Serves a vessel's attachment file to a user of the vessel's
/// organization; 404 for a vessel they cannot see or a file not (yet)
/// ashore.
async fn serve(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((vessel_id, sha256)): ApiPath<(String, String)>,
) -> Result<Response, AppError> {
    crate::role_of(&user)?;
    keelson_model::attachment::validate_sha256(&sha256)?;
    let found = blocking(move || {
        vessel_of(&state, &user, &vessel_id)?;
        let Some(meta) = state.db.attachment_file(&vessel_id, &sha256)? else {
            return Ok(None);
        };
        Ok(vessel_files(&state, &vessel_id)?
            .read(&sha256)?
            .map(|bytes| (meta, bytes)))
    })
    .await?;
    let (meta, bytes) = found.ok_or_else(|| AppError::NotFound("no such file ashore".into()))?;
    Ok(keelson_web::attachments::file_response(&meta, bytes))
}

/// Whether a vessel's file is ashore, for the pages.
pub fn is_ashore(state: &ShoreState, vessel_id: &str, sha256: &str) -> bool {
    vessel_files(state, vessel_id).is_ok_and(|f| f.contains(sha256))
}
