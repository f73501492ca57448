//! The ingest pipeline against a real Modbus TCP peer: the simulated engine room.

#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use keelson_ingest::{
    DataType, IngestConfig, LatestValues, ModbusDeviceConfig, RegisterConfig, RegisterKind,
    SampleSink, SinkError, start,
};
use keelson_model::{Quality, Sample, TagValue};
use keelson_testkit::{ENGINE_ROOM_MAP, EngineRoomSim};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A sink that keeps everything it is given.
#[derive(Default)]
struct VecSink {
    samples: Mutex<Vec<Sample>>,
}

impl VecSink {
    /// A copy of everything stored so far.
    fn stored(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }
}

impl SampleSink for VecSink {
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError> {
        self.samples.lock().unwrap().extend_from_slice(samples);
        Ok(())
    }
}

/// A sink that fails its first few writes, then stores like [`VecSink`].
struct FlakySink {
    failures_left: AtomicUsize,
    stored: VecSink,
}

impl SampleSink for FlakySink {
    fn write_batch(&self, samples: &[Sample]) -> Result<(), SinkError> {
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            return Err(SinkError::new("database is locked"));
        }
        self.stored.write_batch(samples)
    }
}

async fn start_sim(addr: &str) -> EngineRoomSim {
    EngineRoomSim::start(addr.parse::<SocketAddr>().unwrap())
        .await
        .unwrap()
}

/// The engine-room map as ingest configuration, read as `kind` registers.
fn engine_room_registers(kind: RegisterKind) -> Vec<RegisterConfig> {
    ENGINE_ROOM_MAP
        .iter()
        .map(|r| RegisterConfig {
            tag: r.tag.to_owned(),
            address: r.address,
            kind,
            data_type: DataType::U16,
            scale: r.scale,
            unit: r.unit.to_owned(),
            ..RegisterConfig::default()
        })
        .collect()
}

fn device(addr: SocketAddr, registers: Vec<RegisterConfig>) -> IngestConfig {
    IngestConfig {
        modbus: vec![ModbusDeviceConfig {
            name: "engine-room".into(),
            address: addr.to_string(),
            unit_id: 1,
            poll_interval_ms: 100,
            timeout_ms: 500,
            registers,
            ..ModbusDeviceConfig::default()
        }],
        ..IngestConfig::default()
    }
}

/// Waits until `ready` holds for the latest values, re-checking on each change.
async fn wait_until(
    latest: &LatestValues,
    what: &str,
    ready: impl Fn(&[TagValue]) -> bool,
) -> Vec<TagValue> {
    let mut changes = latest.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        changes.borrow_and_update();
        let snapshot = latest.snapshot();
        if ready(&snapshot) {
            return snapshot;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("latest values dropped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}; last values: {snapshot:#?}"),
        }
    }
}

fn all_good(values: &[TagValue]) -> bool {
    values.iter().all(|v| v.quality == Quality::Good)
}

fn value(values: &[TagValue], tag: &str) -> TagValue {
    values.iter().find(|v| v.name == tag).cloned().unwrap()
}

#[tokio::test]
async fn samples_arrive_good_and_scaled() {
    let sim = start_sim("127.0.0.1:0").await;
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let config = device(
        sim.local_addr(),
        engine_room_registers(RegisterKind::Holding),
    );
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    let values = wait_until(&handle.latest, "all tags good", all_good).await;
    assert_eq!(values.len(), ENGINE_ROOM_MAP.len());
    let expect = [
        ("me.rpm", "rpm", 95.0, 105.0),
        ("me.exhaust_temp", "°C", 335.0, 365.0),
        ("me.lube_oil_pressure", "bar", 4.0, 4.4),
        ("me.jcw_outlet_temp", "°C", 80.0, 85.0),
        ("ge1.frequency", "Hz", 59.9, 60.1),
        ("start_air.pressure", "bar", 28.0, 30.1),
        ("bilge.level", "%", 11.0, 61.0),
    ];
    for (tag, unit, lo, hi) in expect {
        let v = value(&values, tag);
        assert_eq!(v.unit, unit);
        assert!(v.ts.is_some());
        let x = v.value.unwrap();
        assert!((lo..=hi).contains(&x), "{tag} = {x} not in {lo}..={hi}");
    }

    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();

    // Everything shown live was also written to the sink, with good quality.
    let stored = sink.stored();
    for register in ENGINE_ROOM_MAP {
        assert!(
            stored
                .iter()
                .any(|s| s.tag == register.tag && s.quality == Quality::Good && s.value.is_some()),
            "no good sample stored for {}",
            register.tag
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn input_registers_read_the_same_device() {
    let sim = start_sim("127.0.0.1:0").await;
    let cancel = CancellationToken::new();
    let config = device(sim.local_addr(), engine_room_registers(RegisterKind::Input));
    let handle = start(&config, Arc::new(VecSink::default()), cancel.clone()).unwrap();
    let values = wait_until(&handle.latest, "all input tags good", all_good).await;
    let rpm = value(&values, "me.rpm").value.unwrap();
    assert!((95.0..=105.0).contains(&rpm), "{rpm}");
    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();
    sim.stop().await;
}

#[tokio::test]
async fn unmapped_addresses_are_bad_and_the_rest_stay_good() {
    let sim = start_sim("127.0.0.1:0").await;
    let mut registers = engine_room_registers(RegisterKind::Holding);
    // Address 10 is adjacent to the mapped block, so it is first read together
    // with 0..=9; address 50 is on its own.
    for (tag, address) in [("unmapped.next", 10), ("unmapped.far", 50)] {
        registers.push(RegisterConfig {
            tag: tag.into(),
            address,
            kind: RegisterKind::Holding,
            data_type: DataType::U16,
            ..RegisterConfig::default()
        });
    }
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let config = device(sim.local_addr(), registers);
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    let is_unmapped = |name: &str| name.starts_with("unmapped.");
    let values = wait_until(&handle.latest, "mapped good, unmapped bad", |values| {
        values.iter().all(|v| {
            if is_unmapped(&v.name) {
                v.quality == Quality::Bad && v.ts.is_some()
            } else {
                v.quality == Quality::Good
            }
        })
    })
    .await;
    assert!(value(&values, "unmapped.far").value.is_none());

    // A few polls later the connection is still in use and the split stays
    // in place: every later sample of a mapped tag is good.
    let mut changes = handle.latest.subscribe();
    for _ in 0..3 {
        changes.borrow_and_update();
        tokio::time::timeout(WAIT, changes.changed())
            .await
            .unwrap()
            .unwrap();
    }
    let values = handle.latest.snapshot();
    assert!(
        values
            .iter()
            .filter(|v| !is_unmapped(&v.name))
            .all(|v| v.quality == Quality::Good)
    );
    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();

    let stored = sink.stored();
    assert!(
        stored
            .iter()
            .filter(|s| s.tag.starts_with("unmapped."))
            .all(|s| s.quality == Quality::Bad && s.value.is_none())
    );
    sim.stop().await;
}

#[tokio::test]
async fn reconnects_after_the_device_comes_back_on_the_same_port() {
    let sim = start_sim("127.0.0.1:0").await;
    let addr = sim.local_addr();
    let cancel = CancellationToken::new();
    let config = device(addr, engine_room_registers(RegisterKind::Holding));
    let handle = start(&config, Arc::new(VecSink::default()), cancel.clone()).unwrap();
    wait_until(&handle.latest, "all tags good", all_good).await;

    sim.stop().await;
    let values = wait_until(
        &handle.latest,
        "all tags bad after the device stops",
        |values| values.iter().all(|v| v.quality == Quality::Bad),
    )
    .await;
    assert!(values.iter().all(|v| v.value.is_none() && v.ts.is_some()));

    let sim = start_sim(&addr.to_string()).await;
    assert_eq!(sim.local_addr(), addr);
    wait_until(&handle.latest, "all tags good again", all_good).await;

    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();
    sim.stop().await;
}

#[tokio::test]
async fn an_unreachable_device_shows_bad_and_shuts_down_cleanly() {
    // Bind and release a port so nothing listens on it.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cancel = CancellationToken::new();
    let config = device(addr, engine_room_registers(RegisterKind::Holding));
    let handle = start(&config, Arc::new(VecSink::default()), cancel.clone()).unwrap();
    wait_until(
        &handle.latest,
        "bad samples for an absent device",
        |values| {
            values
                .iter()
                .all(|v| v.quality == Quality::Bad && v.ts.is_some())
        },
    )
    .await;
    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();
}

#[tokio::test]
async fn a_failing_sink_does_not_stop_the_pipeline() {
    let sim = start_sim("127.0.0.1:0").await;
    let sink = Arc::new(FlakySink {
        failures_left: AtomicUsize::new(3),
        stored: VecSink::default(),
    });
    let cancel = CancellationToken::new();
    let config = device(
        sim.local_addr(),
        engine_room_registers(RegisterKind::Holding),
    );
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    // Wait until batches are being stored again after the failures.
    let mut changes = handle.latest.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while sink.stored.stored().is_empty() {
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .expect("the sink never received a batch after failing")
            .unwrap();
    }
    assert_eq!(sink.failures_left.load(Ordering::SeqCst), 0);
    cancel.cancel();
    tokio::time::timeout(WAIT, handle.join()).await.unwrap();
    sim.stop().await;
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let mut config = device(
        "127.0.0.1:502".parse().unwrap(),
        engine_room_registers(RegisterKind::Holding),
    );
    config.modbus[0].registers[3].tag = "me.rpm".into();
    let error = start(
        &config,
        Arc::new(VecSink::default()),
        CancellationToken::new(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("ingest.modbus[0].registers[3].tag"),
        "{error}"
    );
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let config = device(
        "127.0.0.1:502".parse().unwrap(),
        engine_room_registers(RegisterKind::Holding),
    );
    let result = start(
        &config,
        Arc::new(VecSink::default()),
        CancellationToken::new(),
    );
    assert!(matches!(
        result,
        Err(keelson_ingest::IngestError::NoRuntime)
    ));
}
