//! Hostile sync traffic against a real shore: forged, replayed, tampered,
//! malformed, oversized and cross-vessel requests are each refused with a
//! clear 4xx and change nothing in the shore's store; the alarms lane takes
//! only a vessel's own, well-formed alarm history; the files lane takes
//! only files a vessel's own records name, at the length held, and stores
//! them only whole and true.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use keelson_model::{NewFault, Severity};
use keelson_sync::protocol::{
    ALARMS_CHUNKS_PATH, FILES_CHUNKS_PATH, RECORDS_CHUNKS_PATH, SESSION_PATH,
};
use keelson_sync::record::RecordDoc;
use keelson_sync::signing::{RequestSignature, VesselKey, sign_request};
use keelson_sync::wire::{
    AlarmChunk, AlarmEntry, ChangeEntry, Chunk, FileChunk, Lane, encode_alarm_chunk, encode_chunk,
    encode_file_chunk,
};
use keelson_tests::{TestShore, start_shore};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct Signed {
    sig: RequestSignature,
    body: Vec<u8>,
    path: &'static str,
}

fn sign(key: &VesselKey, vessel: &str, path: &'static str, body: Vec<u8>) -> Signed {
    let sig = sign_request(key, vessel, "POST", path, &body, Utc::now().timestamp()).unwrap();
    Signed { sig, body, path }
}

async fn send(shore: &TestShore, s: &Signed) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}{}", shore.url, s.path));
    for (name, value) in s.sig.to_headers() {
        req = req.header(name, value);
    }
    let resp = req.body(s.body.clone()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Asserts that a request was refused with `expect` and a JSON error.
fn refused(what: &str, status: u16, expect: u16, body: &Value) {
    assert_eq!(status, expect, "{what}: {body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{what}: JSON error expected, got {body}"
    );
}

/// A chunk with one new fault of `vessel` (record id `record`).
fn fault_chunk(vessel: &str, record: &str, seq: u64) -> Vec<u8> {
    let new = NewFault {
        title: "Steering gear pump leaking".into(),
        description: String::new(),
        equipment: "Steering gear".into(),
        severity: Severity::High,
    };
    let (_, change) = RecordDoc::create_fault(record, vessel, &new, "chief", Utc::now()).unwrap();
    encode_chunk(&Chunk {
        lane: Lane::Records,
        vessel_id: vessel.into(),
        entries: vec![ChangeEntry {
            seq,
            record_id: record.into(),
            change,
        }],
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sync_requests_are_refused_and_change_nothing() {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let (key_a, _) = VesselKey::generate().unwrap();
    let (key_b, _) = VesselKey::generate().unwrap();
    let (stranger, _) = VesselKey::generate().unwrap();
    keelson_shore::add_vessel(
        &shore.state.db,
        "vessel-a",
        "MV A",
        &key_a.public_key_b64(),
        "default",
    )
    .unwrap();
    keelson_shore::add_vessel(
        &shore.state.db,
        "vessel-b",
        "MV B",
        &key_b.public_key_b64(),
        "default",
    )
    .unwrap();

    // A genuine chunk from vessel A is applied and acknowledged.
    let genuine = sign(
        &key_a,
        "vessel-a",
        RECORDS_CHUNKS_PATH,
        fault_chunk("vessel-a", "rec-a1", 1),
    );
    let (status, ack) = send(&shore, &genuine).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["acked_seq"], 1);
    let before = shore.snapshot();
    assert_eq!(before.0, 1);

    // Replayed: the very same request again.
    let (status, body) = send(&shore, &genuine).await;
    refused("replay", status, 401, &body);
    assert!(
        body["detail"].as_str().unwrap().contains("replayed"),
        "{body}"
    );

    // Forged: vessel A's id, signed with a key the shore does not know.
    let forged = sign(
        &stranger,
        "vessel-a",
        RECORDS_CHUNKS_PATH,
        fault_chunk("vessel-a", "rec-a2", 2),
    );
    let (status, body) = send(&shore, &forged).await;
    refused("forged", status, 401, &body);

    // Tampered: a genuine signature over another body.
    let mut tampered = sign(
        &key_a,
        "vessel-a",
        RECORDS_CHUNKS_PATH,
        fault_chunk("vessel-a", "rec-a3", 3),
    );
    tampered.body = fault_chunk("vessel-a", "rec-a4", 3);
    let (status, body) = send(&shore, &tampered).await;
    refused("tampered", status, 401, &body);

    // Unknown vessel.
    let unknown = sign(
        &stranger,
        "vessel-x",
        SESSION_PATH,
        br#"{"vessel_id":"vessel-x","records_sent":0,"records_received":0}"#.to_vec(),
    );
    let (status, body) = send(&shore, &unknown).await;
    refused("unknown vessel", status, 401, &body);

    // Stale: a signature from an hour ago.
    let old_body = fault_chunk("vessel-a", "rec-a5", 5);
    let sig = sign_request(
        &key_a,
        "vessel-a",
        "POST",
        RECORDS_CHUNKS_PATH,
        &old_body,
        Utc::now().timestamp() - 3600,
    )
    .unwrap();
    let (status, body) = send(
        &shore,
        &Signed {
            sig,
            body: old_body,
            path: RECORDS_CHUNKS_PATH,
        },
    )
    .await;
    refused("stale", status, 401, &body);

    // Malformed: correctly signed garbage.
    let garbage = sign(
        &key_a,
        "vessel-a",
        RECORDS_CHUNKS_PATH,
        b"KSC1 this is not a chunk".to_vec(),
    );
    let (status, body) = send(&shore, &garbage).await;
    refused("malformed", status, 400, &body);

    // Cross-vessel: vessel B sends a change to vessel A's record.
    let cross = sign(
        &key_b,
        "vessel-b",
        RECORDS_CHUNKS_PATH,
        fault_chunk("vessel-b", "rec-a1", 1),
    );
    let (status, body) = send(&shore, &cross).await;
    refused("cross-vessel", status, 403, &body);
    // ... or creates a record that claims to be vessel A's.
    let claim = sign(
        &key_b,
        "vessel-b",
        RECORDS_CHUNKS_PATH,
        fault_chunk("vessel-a", "rec-b1", 1),
    );
    let (status, body) = send(&shore, &claim).await;
    refused("chunk for another vessel", status, 403, &body);

    // A field the vessel may not write: a comment in the shore's name.
    let body = new_fault_and("rec-a9", 2, |doc| {
        doc.add_comment("c1", "office@shore", "Approved for dry dock", Utc::now())
            .unwrap()
    });
    let (status, body) = send(&shore, &sign(&key_a, "vessel-a", RECORDS_CHUNKS_PATH, body)).await;
    refused("a comment in the shore's name", status, 403, &body);

    // Oversized: more than the shore accepts in one request.
    let big = sign(&key_a, "vessel-a", RECORDS_CHUNKS_PATH, vec![0u8; 2 << 20]);
    let (status, body) = send(&shore, &big).await;
    assert_eq!(status, 413, "oversized: {body}");

    assert_eq!(shore.snapshot(), before, "refused requests changed nothing");
    assert!(
        shore.state.db.quarantine_count("vessel-b").unwrap() >= 2,
        "refused batches are kept for inspection"
    );
    cancel.cancel();
}

/// A records chunk of vessel A: a new fault `record` (at `seq`) and the
/// change `then` makes to it (at `seq + 1`).
fn new_fault_and(record: &str, seq: u64, then: impl FnOnce(&mut RecordDoc) -> Vec<u8>) -> Vec<u8> {
    let (mut doc, create) = RecordDoc::create_fault(
        record,
        "vessel-a",
        &NewFault {
            title: "Hull paint damage".into(),
            description: String::new(),
            equipment: String::new(),
            severity: Severity::Low,
        },
        "chief",
        Utc::now(),
    )
    .unwrap();
    let second = then(&mut doc);
    encode_chunk(&Chunk {
        lane: Lane::Records,
        vessel_id: "vessel-a".into(),
        entries: vec![
            ChangeEntry {
                seq,
                record_id: record.into(),
                change: create,
            },
            ChangeEntry {
                seq: seq + 1,
                record_id: record.into(),
                change: second,
            },
        ],
    })
    .unwrap()
}

/// A shore with `vessel-a` and `vessel-b` registered; their keys.
async fn shore_with_two_vessels(cancel: &CancellationToken) -> (TestShore, VesselKey, VesselKey) {
    let shore = start_shore(cancel).await;
    let (key_a, _) = VesselKey::generate().unwrap();
    let (key_b, _) = VesselKey::generate().unwrap();
    for (id, key) in [("vessel-a", &key_a), ("vessel-b", &key_b)] {
        keelson_shore::add_vessel(&shore.state.db, id, id, &key.public_key_b64(), "default")
            .unwrap();
    }
    (shore, key_a, key_b)
}

/// A records chunk of vessel A's new fault `record` naming `file` as a
/// PNG attachment.
fn fault_with_file(record: &str, file: &[u8], seq: u64) -> Vec<u8> {
    new_fault_and(record, seq, |doc| {
        doc.add_attachment(
            "att-1",
            &keelson_model::NewAttachment {
                file_name: "ladder.png".into(),
                content_type: keelson_model::ContentType::Png,
                size: file.len() as u64,
                sha256: keelson_store::files::sha256_hex(file),
                caption: String::new(),
            },
            "chief",
            Utc::now(),
        )
        .unwrap()
    })
}

fn file_run(vessel: &str, file: &[u8], sha256: &str, offset: usize, len: usize) -> Vec<u8> {
    encode_file_chunk(&FileChunk {
        vessel_id: vessel.into(),
        sha256: sha256.into(),
        size: file.len() as u64,
        offset: offset as u64,
        data: file[offset..offset + len].to_vec(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_lane_takes_only_named_whole_and_true_files() {
    let cancel = CancellationToken::new();
    let (shore, key_a, key_b) = shore_with_two_vessels(&cancel).await;
    let files_of = |vessel: &str| {
        let dir = shore
            .state
            .config
            .storage
            .data_dir
            .join("attachments")
            .join(vessel);
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..5000u32).map(|i| (i * 31 % 251) as u8));
    let sha = keelson_store::files::sha256_hex(&png);
    let post = |key: &VesselKey, vessel: &str, path: &'static str, body: Vec<u8>| {
        let signed = sign(key, vessel, path, body);
        let shore = &shore;
        async move { send(shore, &signed).await }
    };
    let as_a = |path, body| post(&key_a, "vessel-a", path, body);
    let as_b = |path, body| post(&key_b, "vessel-b", path, body);

    // Before its record, a file is refused: the metadata goes first.
    let (status, body) = as_a(FILES_CHUNKS_PATH, file_run("vessel-a", &png, &sha, 0, 100)).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = as_a(RECORDS_CHUNKS_PATH, fault_with_file("rec-f1", &png, 1)).await;
    assert_eq!(status, 200, "{body}");

    // Vessel B cannot send a file only vessel A's records name.
    let (status, body) = as_b(FILES_CHUNKS_PATH, file_run("vessel-b", &png, &sha, 0, 100)).await;
    assert_eq!(status, 409, "{body}");
    // Nor a run in vessel A's name.
    let (status, body) = as_b(FILES_CHUNKS_PATH, file_run("vessel-a", &png, &sha, 0, 100)).await;
    assert_eq!(status, 403, "{body}");

    // Runs are taken at the length held: a re-sent run and one past a gap
    // only get the count back.
    let (status, ack) = as_a(FILES_CHUNKS_PATH, file_run("vessel-a", &png, &sha, 0, 3000)).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["received"].as_u64(), ack["complete"].as_bool()),
        (Some(3000), Some(false))
    );
    let (_, ack) = as_a(FILES_CHUNKS_PATH, file_run("vessel-a", &png, &sha, 0, 3000)).await;
    assert_eq!(ack["received"], 3000, "a re-sent run is harmless");
    let (_, ack) = as_a(
        FILES_CHUNKS_PATH,
        file_run("vessel-a", &png, &sha, 4000, 100),
    )
    .await;
    assert_eq!(ack["received"], 3000, "a gap is not filled with anything");
    assert_eq!(
        files_of("vessel-a"),
        0,
        "nothing under a final name before it is whole"
    );

    // Whole but not the bytes named: the shore starts over.
    let mut wrong = png.clone();
    wrong[4500] ^= 0xff;
    let (_, ack) = as_a(
        FILES_CHUNKS_PATH,
        file_run("vessel-a", &wrong, &sha, 3000, png.len() - 3000),
    )
    .await;
    assert_eq!(
        (ack["received"].as_u64(), ack["complete"].as_bool()),
        (Some(0), Some(false)),
        "{ack}"
    );
    assert_eq!(files_of("vessel-a"), 0);

    // The true bytes are verified and stored.
    let (_, ack) = as_a(
        FILES_CHUNKS_PATH,
        file_run("vessel-a", &png, &sha, 0, png.len()),
    )
    .await;
    assert_eq!(
        (ack["received"].as_u64(), ack["complete"].as_bool()),
        (Some(png.len() as u64), Some(true)),
        "{ack}"
    );
    let stored = std::fs::read(
        shore
            .state
            .config
            .storage
            .data_dir
            .join("attachments/vessel-a")
            .join(&sha),
    )
    .unwrap();
    assert_eq!(stored, png);
    assert_eq!(files_of("vessel-b"), 0);

    // Bytes that hash to their name but are not the type their record says.
    let text = b"not a picture, though the record says PNG".to_vec();
    let text_sha = keelson_store::files::sha256_hex(&text);
    let (status, body) = as_a(RECORDS_CHUNKS_PATH, fault_with_file("rec-f2", &text, 3)).await;
    assert_eq!(status, 200, "{body}");
    let (_, ack) = as_a(
        FILES_CHUNKS_PATH,
        file_run("vessel-a", &text, &text_sha, 0, text.len()),
    )
    .await;
    assert_eq!(ack["complete"], false, "{ack}");
    assert_eq!(files_of("vessel-a"), 1);
    cancel.cancel();
}

/// An alarm history entry of a high alarm on `tag`.
fn alarm_entry(seq: u64, tag: &str, event: &str) -> AlarmEntry {
    AlarmEntry {
        seq,
        alarm_id: Some(1),
        tag: tag.into(),
        kind: "high".into(),
        event: event.into(),
        at_ms: Utc::now().timestamp_millis(),
        value: Some(130.0),
        by: (event == "acknowledged").then(|| "chief".to_owned()),
        fault_id: None,
    }
}

fn alarms_chunk(vessel: &str, entries: Vec<AlarmEntry>) -> Vec<u8> {
    encode_alarm_chunk(&AlarmChunk {
        vessel_id: vessel.into(),
        entries,
    })
    .unwrap()
}

/// What a sender that skips the encoder's checks could put on the wire: an
/// alarms chunk with whatever entries, laid out as the decoder reads them.
fn raw_alarms_chunk(vessel: &str, entries: &[AlarmEntry]) -> Vec<u8> {
    type Raw<'a> = (
        u64,
        Option<u64>,
        &'a str,
        &'a str,
        &'a str,
        i64,
        Option<f64>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let rows: Vec<Raw<'_>> = entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.alarm_id,
                e.tag.as_str(),
                e.kind.as_str(),
                e.event.as_str(),
                e.at_ms,
                e.value,
                e.by.as_deref(),
                e.fault_id.as_deref(),
            )
        })
        .collect();
    let body = postcard::to_stdvec(&(Lane::Alarms.code(), vessel, rows)).unwrap();
    let mut out = b"KSC1".to_vec();
    out.extend(zstd::bulk::compress(&body, 3).unwrap());
    out
}

/// Everything the alarms lane could change ashore, per vessel.
fn alarms_snapshot(shore: &TestShore) -> Vec<(u64, Vec<keelson_store::VesselAlarm>)> {
    let db = &shore.state.db;
    ["vessel-a", "vessel-b"]
        .iter()
        .map(|v| {
            (
                db.vessel_alarm_event_count(v).unwrap(),
                db.vessel_alarms(v).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarms_lane_takes_only_a_vessels_own_well_formed_history() {
    let cancel = CancellationToken::new();
    let (shore, key_a, key_b) = shore_with_two_vessels(&cancel).await;

    // Vessel A's genuine history is stored and acknowledged.
    let genuine = sign(
        &key_a,
        "vessel-a",
        ALARMS_CHUNKS_PATH,
        alarms_chunk(
            "vessel-a",
            vec![
                alarm_entry(1, "me.rpm", "raised"),
                alarm_entry(2, "me.rpm", "acknowledged"),
            ],
        ),
    );
    let (status, ack) = send(&shore, &genuine).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["lane"], "alarms");
    assert_eq!(ack["acked_seq"], 2);
    let before = alarms_snapshot(&shore);
    assert_eq!(before[0].0, 2);
    assert_eq!(before[0].1.len(), 1);
    assert_eq!(before[0].1[0].state, "active_acknowledged");
    let quarantined = |v: &str| shore.state.db.quarantine_count(v).unwrap();
    let quarantined_before = (quarantined("vessel-a"), quarantined("vessel-b"));

    // Replayed, and forged with a key the shore does not know.
    let (status, body) = send(&shore, &genuine).await;
    refused("replay", status, 401, &body);
    let (stranger, _) = VesselKey::generate().unwrap();
    let forged = sign(
        &stranger,
        "vessel-a",
        ALARMS_CHUNKS_PATH,
        alarms_chunk("vessel-a", vec![alarm_entry(3, "me.rpm", "cleared")]),
    );
    let (status, body) = send(&shore, &forged).await;
    refused("forged", status, 401, &body);

    // Malformed histories, correctly signed by vessel A.
    let mut nan = alarm_entry(4, "me.rpm", "returned");
    nan.value = Some(f64::NAN);
    let mut long_tag = alarm_entry(4, &"t".repeat(200), "raised");
    long_tag.alarm_id = Some(2);
    let mut odd_event = alarm_entry(4, "me.rpm", "cleared");
    odd_event.event = "Cleared!".into();
    let malformed: [(&str, Vec<u8>); 6] = [
        ("garbage", b"KSC1 this is not a chunk".to_vec()),
        (
            "seqs going back",
            raw_alarms_chunk(
                "vessel-a",
                &[
                    alarm_entry(4, "me.rpm", "returned"),
                    alarm_entry(3, "me.rpm", "cleared"),
                ],
            ),
        ),
        (
            "a value that is no number",
            raw_alarms_chunk("vessel-a", &[nan]),
        ),
        ("a tag too long", raw_alarms_chunk("vessel-a", &[long_tag])),
        ("an event name", raw_alarms_chunk("vessel-a", &[odd_event])),
        ("a records chunk", fault_chunk("vessel-a", "rec-a1", 3)),
    ];
    for (what, body) in malformed {
        let (status, body) =
            send(&shore, &sign(&key_a, "vessel-a", ALARMS_CHUNKS_PATH, body)).await;
        refused(what, status, 400, &body);
    }

    // Cross-vessel: vessel B clears vessel A's alarm in A's name.
    let cross = sign(
        &key_b,
        "vessel-b",
        ALARMS_CHUNKS_PATH,
        alarms_chunk("vessel-a", vec![alarm_entry(3, "me.rpm", "cleared")]),
    );
    let (status, body) = send(&shore, &cross).await;
    refused("another vessel's alarms", status, 403, &body);

    // Oversized.
    let big = sign(&key_a, "vessel-a", ALARMS_CHUNKS_PATH, vec![0u8; 2 << 20]);
    let (status, body) = send(&shore, &big).await;
    assert_eq!(status, 413, "oversized: {body}");

    assert_eq!(
        alarms_snapshot(&shore),
        before,
        "refused requests changed nothing"
    );
    assert_eq!(quarantined("vessel-a"), quarantined_before.0 + 6);
    assert_eq!(quarantined("vessel-b"), quarantined_before.1 + 1);

    // Vessel B's own history is its own, and a re-sent chunk is stored once.
    let own = alarms_chunk("vessel-b", vec![alarm_entry(1, "ge1.load", "raised")]);
    for _ in 0..2 {
        let (status, ack) = send(
            &shore,
            &sign(&key_b, "vessel-b", ALARMS_CHUNKS_PATH, own.clone()),
        )
        .await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack["acked_seq"], 1);
    }
    let after = alarms_snapshot(&shore);
    assert_eq!(after[0], before[0], "vessel A untouched");
    assert_eq!(after[1].0, 1, "stored once");
    assert_eq!(after[1].1.len(), 1);
    assert_eq!(after[1].1[0].tag, "ge1.load");
    cancel.cancel();
}
