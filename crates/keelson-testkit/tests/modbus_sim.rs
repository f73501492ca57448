//! The engine-room simulator answers a real tokio-modbus client.

#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use keelson_testkit::{ENGINE_ROOM_MAP, EngineRoomSim};
use tokio_modbus::{ExceptionCode, client::Context, prelude::*};

const WAIT: Duration = Duration::from_secs(5);

async fn start_sim() -> EngineRoomSim {
    EngineRoomSim::start("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap()
}

async fn read_all(ctx: &mut Context) -> Vec<u16> {
    tokio::time::timeout(WAIT, ctx.read_holding_registers(0, 10))
        .await
        .expect("read timed out")
        .expect("transport error")
        .expect("device exception")
}

#[tokio::test]
async fn serves_plausible_values_that_change() {
    let sim = start_sim().await;
    let mut ctx = tcp::connect(sim.local_addr()).await.unwrap();

    let first = read_all(&mut ctx).await;
    let plausible = [
        (0, 95.0, 105.0),
        (1, 335.0, 365.0),
        (2, 4.0, 4.4),
        (3, 80.0, 85.0),
        (6, 59.9, 60.1),
        (7, 28.0, 30.1),
    ];
    for (address, lo, hi) in plausible {
        let register = &ENGINE_ROOM_MAP[address];
        let value = f64::from(first[address]) * register.scale;
        assert!(
            (lo..=hi).contains(&value),
            "{} = {value} is not plausible",
            register.tag
        );
    }

    // Input registers mirror holding registers, so a read of both between two
    // updates agrees.
    let mut updates = sim.subscribe_updates();
    updates.borrow_and_update();
    let input = ctx.read_input_registers(0, 10).await.unwrap().unwrap();
    let holding = read_all(&mut ctx).await;
    if !updates.has_changed().unwrap() {
        assert_eq!(input, holding);
    }

    // Wait for a few recomputations; with noise on every signal, the values
    // must have moved.
    let mut changed = false;
    for _ in 0..10 {
        tokio::time::timeout(WAIT, updates.changed())
            .await
            .unwrap()
            .unwrap();
        if read_all(&mut ctx).await != first {
            changed = true;
            break;
        }
    }
    assert!(changed, "register values never changed");
    sim.stop().await;
}

#[tokio::test]
async fn bad_address_is_an_exception_and_the_connection_survives() {
    let sim = start_sim().await;
    let mut ctx = tcp::connect(sim.local_addr()).await.unwrap();

    let outside = ctx.read_holding_registers(50, 2).await.unwrap();
    assert_eq!(outside, Err(ExceptionCode::IllegalDataAddress));
    let straddling = ctx.read_input_registers(8, 4).await.unwrap();
    assert_eq!(straddling, Err(ExceptionCode::IllegalDataAddress));
    let write = ctx.write_single_register(0, 1).await.unwrap();
    assert_eq!(write, Err(ExceptionCode::IllegalFunction));

    // The same connection still answers.
    assert_eq!(read_all(&mut ctx).await.len(), 10);
    sim.stop().await;
}

#[tokio::test]
async fn stop_closes_the_port_and_it_can_be_reused() {
    let sim = start_sim().await;
    let addr = sim.local_addr();
    let mut ctx = tcp::connect(addr).await.unwrap();
    read_all(&mut ctx).await;
    sim.stop().await;

    // The open connection is closed: the next request fails at the transport.
    let after = tokio::time::timeout(WAIT, ctx.read_holding_registers(0, 1))
        .await
        .expect("request hung after stop");
    assert!(after.is_err(), "expected a transport error, got {after:?}");
    assert!(tcp::connect(addr).await.is_err(), "listener still open");

    let again = EngineRoomSim::start(addr).await.unwrap();
    assert_eq!(again.local_addr(), addr);
    let mut ctx = tcp::connect(addr).await.unwrap();
    assert_eq!(read_all(&mut ctx).await.len(), 10);
    again.stop().await;
}
