//! The link emulator relays a real echo server with delay, rate and outages.

#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use keelson_testkit::{LinkEmulator, LinkProfile};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

const WAIT: Duration = Duration::from_secs(10);

/// An echo server on a free loopback port.
async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    (addr, task)
}

/// Sends `payload` and reads the same number of bytes back.
async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    let send = async {
        write.write_all(payload).await.unwrap();
    };
    let receive = async {
        let mut back = vec![0u8; payload.len()];
        read.read_exact(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::time::timeout(WAIT, async { tokio::join!(send, receive) })
        .await
        .expect("round trip timed out");
    back
}

/// Whether the peer closed or reset the connection (as opposed to a hang).
async fn is_cut(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("connection hung instead of being cut"),
    }
}

#[tokio::test]
async fn ideal_link_relays_data() {
    let (echo, _server) = echo_server().await;
    let link = LinkEmulator::start(echo, LinkProfile::ideal())
        .await
        .unwrap();
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(&mut stream, &payload).await, payload);
    assert_eq!(link.bytes_forwarded(), (100_000, 100_000));
    link.stop().await;
}

#[tokio::test]
async fn latency_delays_each_direction_but_data_pipelines() {
    let (echo, _server) = echo_server().await;
    let latency = Duration::from_millis(150);
    let profile = LinkProfile {
        one_way_latency: latency,
        ..LinkProfile::ideal()
    };
    let link = LinkEmulator::start(echo, profile).await.unwrap();
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();

    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");
    let rtt = started.elapsed();
    assert!(
        rtt >= 2 * latency,
        "round trip {rtt:?} shorter than twice {latency:?}"
    );

    // Twenty writes spaced 10 ms apart: if each chunk waited for the one
    // before it, the echo would take twenty round trips. Pipelined, the last
    // byte comes back about one round trip after it was sent.
    let (mut read, mut write) = stream.split();
    let started = Instant::now();
    let send = async {
        for i in 0..20u8 {
            write.write_all(&[i; 100]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let receive = async {
        let mut back = vec![0u8; 2000];
        read.read_exact(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::time::timeout(WAIT, async { tokio::join!(send, receive) })
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(back[1999], 19);
    assert!(elapsed >= 2 * latency, "{elapsed:?}");
    assert!(
        elapsed < 2 * latency + Duration::from_millis(600),
        "data did not pipeline: {elapsed:?}"
    );
    link.stop().await;
}

#[tokio::test]
async fn rate_limit_paces_bytes() {
    let (echo, _server) = echo_server().await;
    let profile = LinkProfile {
        rate_bytes_per_sec: Some(40_000),
        ..LinkProfile::ideal()
    };
    let link = LinkEmulator::start(echo, profile).await.unwrap();
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();

    // 20 kB at 40 kB/s takes half a second each way; the directions overlap,
    // so the echo completes after a little more than half a second.
    let payload = vec![7u8; 20_000];
    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, &payload).await, payload);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(480), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    link.stop().await;
}

#[tokio::test]
async fn going_down_cuts_connections_and_coming_up_restores_service() {
    let (echo, _server) = echo_server().await;
    let link = LinkEmulator::start(echo, LinkProfile::ideal())
        .await
        .unwrap();
    assert!(link.is_up());

    let mut open = TcpStream::connect(link.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"hello").await, b"hello");

    link.set_up(false);
    assert!(!link.is_up());
    assert!(is_cut(&mut open).await);

    // While down, new connections are accepted and cut straight away.
    let mut refused = TcpStream::connect(link.local_addr()).await.unwrap();
    assert!(is_cut(&mut refused).await);

    link.set_up(true);
    let mut again = TcpStream::connect(link.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut again, b"back").await, b"back");
    link.stop().await;
}

#[tokio::test]
async fn stop_cuts_open_connections() {
    let (echo, _server) = echo_server().await;
    let link = LinkEmulator::start(echo, LinkProfile::ideal())
        .await
        .unwrap();
    let addr = link.local_addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut open, b"x").await, b"x");
    link.stop().await;
    assert!(is_cut(&mut open).await);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_lost_segment_stalls_its_direction_for_a_round_trip() {
    let (echo, _server) = echo_server().await;
    // Every segment is lost: each full segment costs one stall of at least
    // 200 ms (TCP's shortest retransmission timeout) on the way out.
    let profile = LinkProfile {
        loss_ppm: 1_000_000,
        ..LinkProfile::ideal()
    };
    let link = LinkEmulator::start(echo, profile).await.unwrap();
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();
    let payload = vec![7u8; 2 * 1460];
    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, &payload).await, payload);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "two lost segments stall at least 400 ms, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn scheduled_outages_cut_connections_and_end_by_themselves() {
    let (echo, _server) = echo_server().await;
    let profile = LinkProfile {
        drop_every: Some(Duration::from_millis(200)),
        drop_for: Duration::from_millis(100),
        ..LinkProfile::ideal()
    };
    let link = LinkEmulator::start(echo, profile).await.unwrap();
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut stream, b"before").await, b"before");
    // The first outage cuts the open connection.
    assert!(is_cut(&mut stream).await);
    assert!(link.drops() >= 1);
    // It ends by itself: a new connection gets through again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if link.is_up() && try_round_trip(link.local_addr(), b"after").await {
            break;
        }
        assert!(Instant::now() < deadline, "the link never came back up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One round trip on a new connection that may be cut at any moment: true
/// when the payload came back whole.
async fn try_round_trip(addr: SocketAddr, payload: &[u8]) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(payload).await.ok()?;
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back).await.ok()?;
        Some(back == payload)
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(true))
    )
}
