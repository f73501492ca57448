//! Hostile sync traffic against a real shore: forged, replayed, tampered,
//! malformed, oversized and cross-vessel requests are each refused with a
//! clear 4xx and change nothing in the shore's store.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use keelson_model::{NewFault, Severity};
use keelson_sync::protocol::{RECORDS_CHUNKS_PATH, SESSION_PATH};
use keelson_sync::record::RecordDoc;
use keelson_sync::signing::{RequestSignature, VesselKey, sign_request};
use keelson_sync::wire::{ChangeEntry, Chunk, Lane, encode_chunk};
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

/// Everything a sync request could change, to compare before and after.
fn snapshot(shore: &TestShore) -> (u64, u64, Vec<keelson_model::Fault>, Vec<(String, u64)>) {
    let db = &shore.state.db;
    let (records, changes) = db.record_counts().unwrap();
    let faults = db
        .list_faults(&keelson_store::FaultFilter::default())
        .unwrap();
    let vessels = db
        .vessels(None)
        .unwrap()
        .into_iter()
        .map(|v| (v.id, v.records_acked))
        .collect();
    (records, changes, faults, vessels)
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
    let before = snapshot(&shore);
    assert_eq!(before.0, 1);

    let refused = |what: &str, status: u16, expect: u16, body: &Value| {
        assert_eq!(status, expect, "{what}: {body}");
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{what}: JSON error expected, got {body}"
        );
    };

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
    let (mut doc, create) = RecordDoc::create_fault(
        "rec-a9",
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
    let forged_comment = doc
        .add_comment("c1", "office@shore", "Approved for dry dock", Utc::now())
        .unwrap();
    let body = encode_chunk(&Chunk {
        lane: Lane::Records,
        vessel_id: "vessel-a".into(),
        entries: vec![
            ChangeEntry {
                seq: 2,
                record_id: "rec-a9".into(),
                change: create,
            },
            ChangeEntry {
                seq: 3,
                record_id: "rec-a9".into(),
                change: forged_comment,
            },
        ],
    })
    .unwrap();
    let (status, body) = send(&shore, &sign(&key_a, "vessel-a", RECORDS_CHUNKS_PATH, body)).await;
    refused("a comment in the shore's name", status, 403, &body);

    // Oversized: more than the shore accepts in one request.
    let big = sign(&key_a, "vessel-a", RECORDS_CHUNKS_PATH, vec![0u8; 2 << 20]);
    let (status, body) = send(&shore, &big).await;
    assert_eq!(status, 413, "oversized: {body}");

    assert_eq!(snapshot(&shore), before, "refused requests changed nothing");
    assert!(
        shore.state.db.quarantine_count("vessel-b").unwrap() >= 2,
        "refused batches are kept for inspection"
    );
    cancel.cancel();
}
