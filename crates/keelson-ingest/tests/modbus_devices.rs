//! Modbus TCP and RTU ingest against the configurable test device: every
//! type and byte/word order, coils and discrete inputs, exceptions, a device
//! restart, and two RTU units sharing one serial bus over a pseudo-terminal.

#![allow(clippy::unwrap_used)]

mod common;

use std::{collections::HashMap, process::Stdio, sync::Arc};

use common::{VecSink, errors, poll_until, value_of, wait_until};
use keelson_ingest::{
    DataType, IngestConfig, ModbusDeviceConfig, RegisterConfig, RegisterKind, Transport, WordOrder,
    modbus::decode::encode_words, start,
};
use keelson_model::Quality;
use keelson_testkit::{DeviceMemory, ModbusTcpDevice, Table, serve_rtu};
use tokio_modbus::ExceptionCode;
use tokio_util::sync::CancellationToken;

fn be_words(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn tag(name: &str, address: u16, data_type: DataType) -> RegisterConfig {
    RegisterConfig {
        tag: name.into(),
        address,
        data_type,
        ..RegisterConfig::default()
    }
}

/// Fills `memory` with one value per type and order, and returns the tags
/// that read them with the value each must show.
fn layout(memory: &DeviceMemory) -> Vec<(RegisterConfig, f64)> {
    let mut tags = Vec::new();
    let put = |tags: &mut Vec<(RegisterConfig, f64)>,
               mut register: RegisterConfig,
               abcd: Vec<u16>,
               order: WordOrder,
               expect: f64| {
        register.order = Some(order);
        memory.set_registers(
            Table::Holding,
            register.address,
            &encode_words(&abcd, order),
        );
        tags.push((register, expect));
    };
    let orders = [
        WordOrder::Abcd,
        WordOrder::Cdab,
        WordOrder::Badc,
        WordOrder::Dcba,
    ];
    let mut address = 0u16;
    for (o, order) in orders.into_iter().enumerate() {
        let name = |t: &str| format!("{t}.{o}");
        let mut next = |width: u16| {
            let a = address;
            address += width;
            a
        };
        put(
            &mut tags,
            tag(&name("u16"), next(1), DataType::U16),
            vec![0x1234],
            order,
            4660.0,
        );
        put(
            &mut tags,
            tag(&name("i16"), next(1), DataType::I16),
            be_words(&(-5i16).to_be_bytes()),
            order,
            -5.0,
        );
        put(
            &mut tags,
            tag(&name("u32"), next(2), DataType::U32),
            be_words(&0xAABB_CCDDu32.to_be_bytes()),
            order,
            f64::from(0xAABB_CCDDu32),
        );
        put(
            &mut tags,
            tag(&name("i32"), next(2), DataType::I32),
            be_words(&(-100_000i32).to_be_bytes()),
            order,
            -100_000.0,
        );
        put(
            &mut tags,
            tag(&name("u64"), next(4), DataType::U64),
            be_words(&(1u64 << 40).to_be_bytes()),
            order,
            (1u64 << 40) as f64,
        );
        put(
            &mut tags,
            tag(&name("i64"), next(4), DataType::I64),
            be_words(&(-3i64).to_be_bytes()),
            order,
            -3.0,
        );
        put(
            &mut tags,
            tag(&name("f32"), next(2), DataType::F32),
            be_words(&3.5f32.to_be_bytes()),
            order,
            3.5,
        );
        put(
            &mut tags,
            tag(&name("f64"), next(4), DataType::F64),
            be_words(&(-2.25f64).to_be_bytes()),
            order,
            -2.25,
        );
        // Text runs register by register whatever the word order; only the
        // byte order inside a register varies.
        let mut text = tag(&name("string"), next(3), DataType::String);
        text.length = 3;
        text.order = Some(order);
        let swapped = matches!(order, WordOrder::Badc | WordOrder::Dcba);
        let wire: Vec<u16> = be_words(b" 42.5 ")
            .into_iter()
            .map(|w| if swapped { w.swap_bytes() } else { w })
            .collect();
        memory.set_registers(Table::Holding, text.address, &wire);
        tags.push((text, 42.5));
    }
    // Bits, booleans, coils and discrete inputs, scale and offset.
    let mut bit = tag("bit", 100, DataType::Bit);
    bit.bit = 3;
    put(&mut tags, bit, vec![0b1000], WordOrder::Abcd, 1.0);
    let mut bit_off = tag("bit.off", 100, DataType::Bit);
    bit_off.bit = 2;
    tags.push((bit_off, 0.0));
    put(
        &mut tags,
        tag("bool", 101, DataType::Bool),
        vec![7],
        WordOrder::Abcd,
        1.0,
    );
    let mut scaled = tag("scaled", 102, DataType::I16);
    scaled.scale = 0.1;
    scaled.offset = -40.0;
    put(
        &mut tags,
        scaled,
        vec![(-125i16) as u16],
        WordOrder::Abcd,
        -52.5,
    );
    memory.set_registers(Table::Input, 7, &[77]);
    let mut input = tag("input", 7, DataType::U16);
    input.kind = RegisterKind::Input;
    tags.push((input, 77.0));
    memory.set_bit(Table::Coil, 5, true);
    let mut coil = tag("coil", 5, DataType::Bool);
    coil.kind = RegisterKind::Coil;
    tags.push((coil, 1.0));
    let mut coil_off = tag("coil.off", 6, DataType::Bool);
    coil_off.kind = RegisterKind::Coil;
    tags.push((coil_off, 0.0));
    memory.set_bit(Table::DiscreteInput, 9, true);
    let mut discrete = tag("discrete", 9, DataType::Bool);
    discrete.kind = RegisterKind::DiscreteInput;
    tags.push((discrete, 1.0));
    tags
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[tokio::test]
async fn every_type_and_order_exceptions_and_a_device_restart() {
    let memory = DeviceMemory::new();
    let expected = layout(&memory);
    // A register the device answers with "busy", far from the others so it
    // gets its own request.
    memory.fail(Table::Holding, 500, ExceptionCode::ServerDeviceBusy);
    let mut registers: Vec<RegisterConfig> = expected.iter().map(|(r, _)| r.clone()).collect();
    registers.push(tag("busy", 500, DataType::U16));
    // A text register that spells a word, not a number: it reads as text.
    let mut mode = tag("mode", 510, DataType::String);
    mode.length = 4;
    memory.set_registers(Table::Holding, 510, &be_words(b"RUNNING\0"));
    registers.push(mode);
    // Bytes that are not printable ASCII make it bad, not garbled.
    let mut garbled = tag("garbled", 520, DataType::String);
    garbled.length = 1;
    memory.set_registers(Table::Holding, 520, &[0x41ff]);
    registers.push(garbled);

    let device = ModbusTcpDevice::start("127.0.0.1:0".parse().unwrap(), memory.clone())
        .await
        .unwrap();
    let addr = device.local_addr();
    let config = IngestConfig {
        modbus: vec![ModbusDeviceConfig {
            name: "plc".into(),
            address: addr.to_string(),
            poll_interval_ms: 100,
            timeout_ms: 300,
            retries: 1,
            max_gap: 4,
            registers,
            ..ModbusDeviceConfig::default()
        }],
        ..IngestConfig::default()
    };
    let sink = Arc::new(VecSink::default());
    let cancel = CancellationToken::new();
    let handle = start(&config, sink.clone(), cancel.clone()).unwrap();

    let all_good = |values: &[keelson_model::TagValue]| {
        expected.iter().all(|(r, want)| {
            let v = value_of(values, &r.tag);
            v.quality == Quality::Good && v.value.is_some_and(|got| close(got, *want))
        })
    };
    let values = wait_until(&handle.latest, "every tag decoded", |v| {
        all_good(v) && value_of(v, "busy").ts.is_some()
    })
    .await;
    let busy = value_of(&values, "busy");
    assert_eq!((busy.quality, busy.value), (Quality::Bad, None));
    let mode = value_of(&values, "mode");
    assert_eq!(
        (mode.quality, mode.value, mode.text.as_deref()),
        (Quality::Good, None, Some("RUNNING"))
    );
    let garbled = value_of(&values, "garbled");
    assert_eq!((garbled.quality, garbled.text), (Quality::Bad, None));
    let text_of = |tag: &str| {
        sink.stored()
            .iter()
            .find(|s| s.tag == tag && s.text.is_some())
            .and_then(|s| s.text.clone())
    };
    assert_eq!(text_of("mode").as_deref(), Some("RUNNING"));
    assert!(text_of("garbled").is_none());
    // The exception is counted as such and did not cost the connection.
    assert!(errors(&handle.metrics, "plc", "exception") > 0);
    assert_eq!(errors(&handle.metrics, "plc", "connect"), 0);
    assert_eq!(errors(&handle.metrics, "plc", "transport"), 0);

    // The device answers again once it is no longer busy.
    memory.clear_failures();
    memory.set_registers(Table::Holding, 500, &[9]);
    wait_until(&handle.latest, "busy register recovers", |v| {
        value_of(v, "busy").value == Some(9.0)
    })
    .await;

    // A device restart: every tag goes bad, then good again on the same port.
    device.stop().await;
    wait_until(&handle.latest, "tags bad while the device is down", |v| {
        v.iter().all(|t| t.quality == Quality::Bad)
    })
    .await;
    let device = ModbusTcpDevice::start(addr, memory.clone()).await.unwrap();
    wait_until(&handle.latest, "tags good after the restart", all_good).await;

    cancel.cancel();
    handle.join().await;
    device.stop().await;
    assert!(!sink.stored().is_empty());
}

/// Two RTU units on one serial bus (a socat pseudo-terminal pair).
#[tokio::test]
async fn rtu_units_share_one_serial_bus() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("agent");
    let theirs = dir.path().join("devices");
    let mut socat = std::process::Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", ours.display()))
        .arg(format!("pty,raw,echo=0,link={}", theirs.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat must be installed (tests/run.sh installs it)");
    poll_until("socat's pseudo-terminals", || {
        ours.exists() && theirs.exists()
    })
    .await;

    let unit1 = DeviceMemory::new();
    unit1.set_registers(
        Table::Holding,
        0,
        &encode_words(&be_words(&12.5f32.to_be_bytes()), WordOrder::Cdab),
    );
    let unit2 = DeviceMemory::new();
    unit2.set_registers(Table::Input, 3, &[250]);
    unit2.set_bit(Table::Coil, 1, true);
    let cancel = CancellationToken::new();
    let server = serve_rtu(
        theirs.to_str().unwrap(),
        19200,
        HashMap::from([(1, unit1.clone()), (2, unit2.clone())]),
        cancel.clone(),
    )
    .unwrap();

    let rtu = |name: &str, unit_id: u8, registers: Vec<RegisterConfig>| ModbusDeviceConfig {
        name: name.into(),
        transport: Transport::Rtu,
        serial_port: ours.to_str().unwrap().into(),
        baud_rate: 19200,
        unit_id,
        poll_interval_ms: 100,
        timeout_ms: 500,
        order: WordOrder::Cdab,
        registers,
        ..ModbusDeviceConfig::default()
    };
    let mut pressure = tag("pump.pressure", 0, DataType::F32);
    pressure.unit = "bar".into();
    let mut level = tag("tank.level", 3, DataType::U16);
    level.kind = RegisterKind::Input;
    level.scale = 0.1;
    let mut running = tag("pump.running", 1, DataType::Bool);
    running.kind = RegisterKind::Coil;
    let config = IngestConfig {
        modbus: vec![
            rtu("pump", 1, vec![pressure]),
            rtu("tank", 2, vec![level, running]),
            // A unit that is configured but silent (switched off): its
            // timeouts must not disturb the others on the bus.
            ModbusDeviceConfig {
                timeout_ms: 150,
                retries: 0,
                ..rtu("ghost", 9, vec![tag("ghost.value", 0, DataType::U16)])
            },
        ],
        ..IngestConfig::default()
    };
    let sink = Arc::new(VecSink::default());
    let ingest_cancel = CancellationToken::new();
    let handle = start(&config, sink, ingest_cancel.clone()).unwrap();
    wait_until(
        &handle.latest,
        "both rtu units read, the silent one bad",
        |v| {
            value_of(v, "pump.pressure").value == Some(12.5)
                && value_of(v, "tank.level").value == Some(25.0)
                && value_of(v, "pump.running").value == Some(1.0)
                && value_of(v, "ghost.value").ts.is_some()
        },
    )
    .await;
    assert_eq!(
        handle.latest.get("ghost.value").unwrap().quality,
        Quality::Bad
    );
    poll_until("the silent unit's timeouts counted", || {
        errors(&handle.metrics, "ghost", "timeout") >= 1
    })
    .await;
    // Both units keep answering on the shared bus.
    let before = (unit1.requests(), unit2.requests());
    poll_until("more polls of both units", || {
        unit1.requests() > before.0 + 2 && unit2.requests() > before.1 + 2
    })
    .await;
    assert_eq!(errors(&handle.metrics, "pump", "timeout"), 0);

    ingest_cancel.cancel();
    handle.join().await;
    cancel.cancel();
    let _ = server.await;
    socat.kill().unwrap();
    socat.wait().unwrap();
}
