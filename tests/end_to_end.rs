//! The first end-to-end path: sensor → SQLite → fault logged offline →
//! shore → reply back, with a real Modbus TCP device, a real shore and a
//! real edge agent on loopback, and the satellite link emulator between
//! them.

#![allow(clippy::unwrap_used)]

use keelson_edge::demo::DEMO_VESSEL;
use keelson_testkit::link::{LinkEmulator, LinkProfile};
use keelson_testkit::modbus::EngineRoomSim;
use keelson_tests::{Api, edge_config, start_edge, start_shore, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

struct World {
    shore: keelson_tests::TestShore,
    edge: keelson_tests::TestEdge,
    link: LinkEmulator,
    _device: EngineRoomSim,
    ship: Api,
    office: Api,
    cancel: CancellationToken,
}

/// A shore, a link (down) with `profile`, an engine-room device and an
/// edge agent.
async fn world_with(profile: LinkProfile) -> World {
    let cancel = CancellationToken::new();
    let shore = start_shore(&cancel).await;
    let device = EngineRoomSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let link = LinkEmulator::start(shore.addr, profile).await.unwrap();
    link.set_up(false);

    let dir = tempfile::tempdir().unwrap();
    let config = edge_config(dir.path(), device.local_addr(), link.local_addr());
    keelson_tests::register_vessel(&shore, &config);
    let edge = start_edge(dir, config, &cancel).await;
    let ship = Api::login(&edge.url, "chief", "chief").await;
    let office = Api::login(&shore.url, "office", "office").await;
    World {
        shore,
        edge,
        link,
        _device: device,
        ship,
        office,
        cancel,
    }
}

/// A world with a fast link of 20 ms each way.
async fn world() -> World {
    world_with(LinkProfile {
        one_way_latency: Duration::from_millis(20),
        ..LinkProfile::ideal()
    })
    .await
}

impl World {
    /// Starts a sync session on the ship and waits until a session that
    /// began after the request has finished, so the answer reflects the
    /// link as it is now, not a session already under way.
    async fn sync(&self) -> Value {
        keelson_tests::sync_and_wait(&self.ship, WAIT).await
    }

    async fn shore_fault(&self, id: &str) -> (u16, Value) {
        self.office
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{id}"),
                None,
            )
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_to_sqlite_fault_offline_to_shore_and_reply_back() {
    let w = world().await;

    // Sensor → SQLite → latest-value cache: the engine room's readings
    // arrive with good quality and plausible values.
    let tags = wait_for("good readings from the engine room", WAIT, || async {
        let tags = w.ship.get("/api/v1/tags").await;
        let all_good = tags
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|t| t["quality"] == "good"));
        all_good.then_some(tags)
    })
    .await;
    let rpm = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "me.rpm")
        .unwrap();
    let rpm_value = rpm["value"].as_f64().unwrap();
    assert!(
        (50.0..150.0).contains(&rpm_value),
        "main engine rpm {rpm_value}"
    );
    assert_eq!(rpm["unit"], "rpm");
    let samples = w.ship.get("/api/v1/tags/me.rpm/samples").await;
    assert!(
        !samples.as_array().unwrap().is_empty(),
        "samples are stored in SQLite"
    );

    // A fault logged while the link is down stays on board.
    let fault = w
        .ship
        .post(
            "/api/v1/faults",
            json!({"title": "ME cyl 3 exhaust temperature high", "description": "Reads 40 °C above the others",
                   "equipment": "Main engine", "severity": "high"}),
            201,
        )
        .await;
    let id = fault["id"].as_str().unwrap().to_owned();
    assert_eq!(fault["status"], "open");
    assert_eq!(fault["reporter"], "chief");
    let st = w.sync().await;
    assert!(
        st["last_error"].is_string(),
        "a sync over a down link fails: {st}"
    );
    assert_eq!(st["records"]["pending_changes"], 1);
    assert_eq!(w.shore_fault(&id).await.0, 404);

    // The link comes up: the fault reaches the shore.
    w.link.set_up(true);
    let st = w.sync().await;
    assert!(st["last_error"].is_null(), "sync succeeds: {st}");
    assert_eq!(st["records"]["pending_changes"], 0);
    let (status, ashore) = w.shore_fault(&id).await;
    assert_eq!(status, 200);
    assert_eq!(ashore["title"], fault["title"]);
    // The fleet view no longer counts what has arrived as waiting.
    let fleet = w.office.get("/api/v1/vessels").await;
    assert_eq!(fleet[0]["pending_bytes"], 0, "{fleet}");
    assert_eq!(ashore["severity"], "high");

    // The office replies; the comment reaches the vessel on its next sync.
    w.office
        .post(
            &format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{id}/comments"),
            json!({"text": "Check the fuel valve; a spare is on board."}),
            201,
        )
        .await;
    w.sync().await;
    let on_board = w.ship.get(&format!("/api/v1/faults/{id}")).await;
    let comments = on_board["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{on_board}");
    assert_eq!(comments[0]["author"], "office@shore");
    assert_eq!(
        comments[0]["text"],
        "Check the fuel valve; a spare is on board."
    );
    assert!(comments[0]["at"].is_string());

    // The ship UI shows it too (server-rendered, after logging in).
    let page = reqwest::Client::new()
        .get(format!("{}/faults/{id}", w.edge.url))
        .header(
            "cookie",
            format!("keelson_session={}", login_token(&w.edge.url).await),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Check the fuel valve; a spare is on board."));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external requests from the page"
    );

    w.cancel.cancel();
}

async fn login_token(base: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "crew", "password": "crew"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_on_both_sides_while_apart_both_survive() {
    let w = world().await;
    w.link.set_up(true);
    let fault = w
        .ship
        .post(
            "/api/v1/faults",
            json!({"title": "Bilge pump 2 noisy", "severity": "medium"}),
            201,
        )
        .await;
    let id = fault["id"].as_str().unwrap().to_owned();
    w.sync().await;
    assert_eq!(w.shore_fault(&id).await.0, 200);

    // Apart: the ship works the fault, the shore comments on it.
    w.link.set_up(false);
    w.ship
        .patch(
            &format!("/api/v1/faults/{id}"),
            json!({"status": "in_progress", "description": "Bearing worn; replacing"}),
            200,
        )
        .await;
    w.ship
        .post(
            &format!("/api/v1/faults/{id}/comments"),
            json!({"text": "Pump isolated"}),
            201,
        )
        .await;
    w.office
        .post(
            &format!("/api/v1/vessels/{DEMO_VESSEL}/faults/{id}/comments"),
            json!({"text": "Bearings ordered for Rotterdam"}),
            201,
        )
        .await;
    let st = w.sync().await;
    assert!(st["last_error"].is_string());

    // Together again: one sync brings both sides to the same state, with
    // both sides' edits.
    w.link.set_up(true);
    w.sync().await;
    let on_board = w.ship.get(&format!("/api/v1/faults/{id}")).await;
    let (_, ashore) = w.shore_fault(&id).await;
    assert_eq!(on_board, ashore, "both sides converge");
    assert_eq!(on_board["status"], "in_progress");
    assert_eq!(on_board["description"], "Bearing worn; replacing");
    let texts: Vec<&str> = on_board["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"Pump isolated") && texts.contains(&"Bearings ordered for Rotterdam"),
        "{texts:?}"
    );

    // A second sync changes nothing and sends nothing.
    let st = w.sync().await;
    assert_eq!(st["records"]["pending_changes"], 0);
    assert_eq!(w.ship.get(&format!("/api/v1/faults/{id}")).await, on_board);
    w.cancel.cancel();
}

/// Text that does not compress away, so chunks have a real size on the wire.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_mid_session_resumes_from_the_last_ack_without_duplicates() {
    // About 240 KB of changes, starting with a 32 KiB chunk, over a link
    // slow enough (20 kB/s) that the rest takes seconds: the link is cut as
    // soon as the shore has made the first chunk durable.
    const FAULTS: u64 = 80;
    let w = world_with(LinkProfile {
        one_way_latency: Duration::from_millis(20),
        rate_bytes_per_sec: Some(20_000),
        ..LinkProfile::ideal()
    })
    .await;
    for i in 0..FAULTS {
        w.ship
            .post(
                "/api/v1/faults",
                json!({"title": format!("Fault {i}"), "description": noise(i, 3000), "severity": "low"}),
                201,
            )
            .await;
    }
    let last = w.edge.edge.state.db.last_outbound_seq(DEMO_VESSEL).unwrap();
    let shore_acked = || {
        w.shore
            .state
            .db
            .vessel(DEMO_VESSEL)
            .unwrap()
            .unwrap()
            .records_acked
    };
    w.link.set_up(true);
    w.ship.post("/api/v1/sync/now", json!({}), 202).await;
    wait_for("the first chunk made durable ashore", WAIT, || async {
        (shore_acked() > 0).then_some(())
    })
    .await;
    w.link.set_up(false);
    let cut_at = shore_acked();
    assert!(
        cut_at < last,
        "the session was cut part way ({cut_at} of {last})"
    );
    let st = wait_for("the cut session to fail", WAIT, || async {
        let st = w.ship.get("/api/v1/sync/status").await;
        (st["running"] == false && st["last_error"].is_string()).then_some(st)
    })
    .await;
    assert!(
        st["records"]["pending_changes"].as_u64().unwrap() > 0,
        "{st}"
    );

    // The link returns; the next session sends only what is missing.
    w.link.set_up(true);
    let st = w.sync().await;
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(st["records"]["pending_changes"], 0);
    let shore_faults = w
        .office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/faults"))
        .await;
    assert_eq!(shore_faults.as_array().unwrap().len() as u64, FAULTS);
    let (records, changes) = w.shore.state.db.record_counts().unwrap();
    assert_eq!(
        (records, changes),
        (FAULTS, FAULTS),
        "every change stored exactly once ashore"
    );
    w.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_drops_during_one_catch_up_still_converge() {
    // Outages every 120 ms on a slow link: chunks must shrink to fit between
    // them, and every cut chunk is resumed from the last acknowledgement.
    let w = world_with(LinkProfile {
        one_way_latency: Duration::from_millis(2),
        rate_bytes_per_sec: Some(40_000),
        drop_every: Some(Duration::from_millis(120)),
        drop_for: Duration::from_millis(10),
        ..LinkProfile::ideal()
    })
    .await;
    let mut faults = 0u64;
    let add = async |n: u64, faults: &mut u64| {
        for _ in 0..n {
            w.ship
                .post(
                    "/api/v1/faults",
                    json!({"title": format!("Fault {}", *faults), "description": noise(*faults, 3000), "severity": "low"}),
                    201,
                )
                .await;
            *faults += 1;
        }
    };
    add(150, &mut faults).await;
    w.link.set_up(true);
    let drops_before = w.link.drops();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let last = w.edge.edge.state.db.last_outbound_seq(DEMO_VESSEL).unwrap();
        let acked = w
            .shore
            .state
            .db
            .vessel(DEMO_VESSEL)
            .unwrap()
            .unwrap()
            .records_acked;
        if acked >= last {
            if w.link.drops() - drops_before >= 100 {
                break;
            }
            // Everything arrived before a hundred outages: more work comes in
            // while the catch-up goes on, as it does on board.
            add(30, &mut faults).await;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "catch-up did not converge in time"
        );
        w.edge.edge.state.sync.trigger();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(w.link.drops() - drops_before >= 100);
    let shore_faults = w
        .office
        .get(&format!("/api/v1/vessels/{DEMO_VESSEL}/faults?"))
        .await;
    assert_eq!(shore_faults.as_array().unwrap().len() as u64, faults);
    let (records, changes) = w.shore.state.db.record_counts().unwrap();
    assert_eq!(
        (records, changes),
        (faults, faults),
        "nothing lost, nothing stored twice"
    );
    for f in shore_faults.as_array().unwrap().iter().take(20) {
        let id = f["id"].as_str().unwrap();
        assert_eq!(&w.ship.get(&format!("/api/v1/faults/{id}")).await, f);
    }
    w.cancel.cancel();
}
