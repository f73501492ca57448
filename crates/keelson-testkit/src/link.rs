//! A user-space satellite-link emulator.
//!
//! [`LinkEmulator`] is a TCP proxy on `127.0.0.1`: every accepted connection is
//! relayed to a fixed upstream address, with the behaviour described by a
//! [`LinkProfile`] applied to each direction independently.
//!
//! # How delay and rate are modelled
//!
//! Each direction has a reader, a queue and a writer. The reader timestamps every
//! chunk it reads with the moment it will come out of the far end of the link:
//!
//! - with a rate limit, the chunk first waits for the link to finish sending the
//!   chunks before it (serialisation), and the reader does not read more from the
//!   socket until the link is free again, so TCP back-pressure reaches the sender
//!   just as it would on a slow link;
//! - then the one-way latency is added (propagation).
//!
//! The writer sleeps until each chunk's delivery time and writes it. Because the
//! latency is applied to timestamps rather than by sleeping between reads, later
//! data pipelines behind earlier data: a 300 ms link still carries a full rate of
//! bytes per second, it just delivers them 300 ms late.
//!
//! # Link down
//!
//! [`LinkEmulator::set_up`]`(false)` resets every relayed connection at once
//! (with a TCP RST, so both ends see an error rather than waiting on a silent
//! socket), and new connections are accepted and reset immediately. Setting the
//! link up again lets new connections through; cut connections stay cut, as after
//! a real outage.
//!
//! # Loss and scheduled drops
//!
//! TCP never loses bytes, it loses time: a lost segment is sent again after
//! about one round trip, and the connection stands still meanwhile. The
//! emulator models exactly that. Every full-size segment (1460 bytes) that
//! crosses the link is lost with the profile's probability, and a loss
//! stalls that direction for one round trip before the data goes on. The
//! losses come from a seeded generator, so a run can be repeated.
//!
//! A profile can also take the link down on a schedule, for example for
//! five seconds every minute, as a satellite beam switch or a blocked
//! antenna would. That works like [`LinkEmulator::set_up`]`(false)` followed
//! by `set_up(true)`, and [`LinkEmulator::drops`] counts the outages.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{ReadHalf, WriteHalf},
    },
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// The largest chunk a relay reads at once when the link has no rate limit.
const MAX_CHUNK: usize = 16 * 1024;

/// How many chunks may be in flight per direction. With a rate limit the reader
/// is paced, so this only bounds memory on an unlimited link with long latency.
const QUEUE_CHUNKS: usize = 256;

/// How long the accept loop pauses after an accept error (for example when the
/// process is out of file descriptors), so the error does not become a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The size of one TCP segment on the emulated link, the unit of loss.
const SEGMENT: usize = 1460;

/// The impairments a link applies to each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkProfile {
    /// How long data takes to cross the link, in each direction.
    pub one_way_latency: Duration,
    /// The link rate in each direction in bytes per second; `None` means no limit.
    /// Values below one byte per second are treated as one byte per second.
    pub rate_bytes_per_sec: Option<u64>,
    /// Probability, in parts per million, that a segment is lost; each loss
    /// stalls its direction for one round trip (at least 200 ms, TCP's
    /// shortest retransmission timeout).
    pub loss_ppm: u32,
    /// Take the link down on this period, starting one period after start.
    pub drop_every: Option<Duration>,
    /// How long each scheduled outage lasts.
    pub drop_for: Duration,
}

impl LinkProfile {
    /// A link with no delay and no rate limit.
    pub fn ideal() -> LinkProfile {
        LinkProfile {
            one_way_latency: Duration::ZERO,
            rate_bytes_per_sec: None,
            loss_ppm: 0,
            drop_every: None,
            drop_for: Duration::ZERO,
        }
    }

    /// A geostationary VSAT link: 300 ms one way and 256 kbit/s (32 000 B/s) in
    /// each direction.
    pub fn geo_vsat() -> LinkProfile {
        LinkProfile {
            one_way_latency: Duration::from_millis(300),
            rate_bytes_per_sec: Some(32_000),
            ..LinkProfile::ideal()
        }
    }

    /// A bad day on GEO VSAT, the design's reference link: 600 ms round
    /// trip, 256 kbit/s, 1 % segment loss and a two-second outage every
    /// minute.
    pub fn geo_vsat_bad() -> LinkProfile {
        LinkProfile {
            loss_ppm: 10_000,
            drop_every: Some(Duration::from_secs(60)),
            drop_for: Duration::from_secs(2),
            ..LinkProfile::geo_vsat()
        }
    }

    /// How long a lost segment stalls its direction.
    fn loss_stall(&self) -> Duration {
        (self.one_way_latency * 2).max(Duration::from_millis(200))
    }

    /// The rate limit with the documented floor applied.
    fn rate(&self) -> Option<u64> {
        self.rate_bytes_per_sec.map(|rate| rate.max(1))
    }

    /// How much a relay reads at once: about 20 ms of link time when the rate
    /// is limited, so pacing stays smooth for small rates.
    fn chunk_size(&self) -> usize {
        match self.rate() {
            Some(rate) => usize::try_from(rate / 50)
                .unwrap_or(MAX_CHUNK)
                .clamp(1, MAX_CHUNK),
            None => MAX_CHUNK,
        }
    }
}

/// State shared by the accept loop, every relay and the handle.
struct Shared {
    upstream: SocketAddr,
    profile: LinkProfile,
    up: watch::Sender<bool>,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    drops: AtomicU64,
    /// Seeds each direction's loss generator differently.
    next_seed: AtomicU64,
}

/// A running link emulator.
///
/// Dropping the value stops it without waiting: the listener closes and every
/// relayed connection is dropped.
pub struct LinkEmulator {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    accept_task: JoinHandle<()>,
}

impl LinkEmulator {
    /// Starts a link on `127.0.0.1` with a free port, relaying to `upstream`.
    ///
    /// The listener is bound before this returns. The link starts up.
    pub async fn start(upstream: SocketAddr, profile: LinkProfile) -> io::Result<LinkEmulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local_addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            upstream,
            profile,
            up,
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            next_seed: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
        });
        let cancel = CancellationToken::new();
        if let Some(every) = profile.drop_every {
            tokio::spawn(drop_schedule(
                Arc::clone(&shared),
                every,
                profile.drop_for,
                cancel.clone(),
            ));
        }
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), cancel.clone()));
        tracing::debug!(addr = %local_addr, upstream = %upstream, ?profile, "link emulator listening");
        Ok(LinkEmulator {
            local_addr,
            shared,
            cancel,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The profile the link applies.
    pub fn profile(&self) -> LinkProfile {
        self.shared.profile
    }

    /// Takes the link down (cutting every open connection) or brings it back up.
    pub fn set_up(&self, up: bool) {
        let was = self.shared.up.send_replace(up);
        if was != up {
            tracing::debug!(addr = %self.local_addr, up, "link state changed");
        }
    }

    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        *self.shared.up.borrow()
    }

    /// Bytes delivered so far: `(up, down)`, where up is client to upstream.
    pub fn bytes_forwarded(&self) -> (u64, u64) {
        (
            self.shared.bytes_up.load(Ordering::Relaxed),
            self.shared.bytes_down.load(Ordering::Relaxed),
        )
    }

    /// How many scheduled outages have begun.
    pub fn drops(&self) -> u64 {
        self.shared.drops.load(Ordering::Relaxed)
    }

    /// Stops the link: closes the listener and resets every relayed connection,
    /// then waits for the relays to finish.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        // A join error means the task was aborted or panicked; it has ended either way.
        let _ = (&mut self.accept_task).await;
        tracing::debug!(addr = %self.local_addr, "link emulator stopped");
    }
}

impl Drop for LinkEmulator {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Aborting drops the accept loop's `JoinSet`, which aborts every relay.
        self.accept_task.abort();
    }
}

/// Takes the link down for `down` every `every` until cancelled.
async fn drop_schedule(
    shared: Arc<Shared>,
    every: Duration,
    down: Duration,
    cancel: CancellationToken,
) {
    let mut next = Instant::now() + every;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = cancel.cancelled() => return,
        }
        shared.drops.fetch_add(1, Ordering::Relaxed);
        shared.up.send_replace(false);
        tokio::select! {
            () = tokio::time::sleep(down) => {}
            () = cancel.cancelled() => return,
        }
        shared.up.send_replace(true);
        next += every;
    }
}

/// Accepts connections until cancelled; owns every relay task.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            // Reap finished relays so the set does not grow over a long run.
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    if *shared.up.borrow() {
                        relays.spawn(relay(client, peer, Arc::clone(&shared), cancel.clone()));
                    } else {
                        tracing::trace!(peer = %peer, "link down: resetting new connection");
                        reset(client);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "link emulator failed to accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    // The relays watch the same token, so they finish promptly.
    while relays.join_next().await.is_some() {}
}

/// Closes a socket with a reset, so the peer sees an error at once.
fn reset(stream: TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "could not set zero linger; closing normally");
    }
    drop(stream);
}

/// Relays one client connection to the upstream until either side closes, the
/// link goes down or the emulator stops.
async fn relay(
    mut client: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let mut up = shared.up.subscribe();

    let connected = tokio::select! {
        result = TcpStream::connect(shared.upstream) => Some(result),
        _ = up.wait_for(|up| !*up) => None,
        () = cancel.cancelled() => None,
    };
    let mut upstream = match connected {
        Some(Ok(stream)) => stream,
        Some(Err(e)) => {
            tracing::debug!(peer = %peer, upstream = %shared.upstream, error = %e, "link could not reach upstream");
            reset(client);
            return;
        }
        None => {
            reset(client);
            return;
        }
    };
    for stream in [&client, &upstream] {
        // Nagle's algorithm would add its own delay on top of the emulated one.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %peer, error = %e, "could not disable Nagle on relayed connection");
        }
    }

    let cut = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let seed = shared
            .next_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let both = async {
            tokio::join!(
                pipe(
                    client_read,
                    upstream_write,
                    &shared.profile,
                    &shared.bytes_up,
                    seed
                ),
                pipe(
                    upstream_read,
                    client_write,
                    &shared.profile,
                    &shared.bytes_down,
                    seed ^ 0xFFFF_FFFF
                ),
            )
        };
        tokio::select! {
            _ = both => false,
            // An error here means the emulator is gone, which also ends the link.
            _ = up.wait_for(|up| !*up) => true,
            () = cancel.cancelled() => true,
        }
    };
    if cut {
        tracing::trace!(peer = %peer, "link cut: resetting relayed connection");
        reset(client);
        reset(upstream);
    }
}

/// A chunk on its way across the link.
struct InFlight {
    deliver_at: Instant,
    data: Vec<u8>,
}

/// Carries one direction of a connection across the emulated link.
///
/// On end of stream from the source, the queue drains and the destination's
/// write side is shut down, so half-closes cross the link like data does.
async fn pipe(
    mut source: ReadHalf<'_>,
    mut destination: WriteHalf<'_>,
    profile: &LinkProfile,
    delivered: &AtomicU64,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<InFlight>(QUEUE_CHUNKS);
    let latency = profile.one_way_latency;
    let rate = profile.rate();
    let chunk_size = profile.chunk_size();
    let loss_ppm = u64::from(profile.loss_ppm);
    let stall = profile.loss_stall();

    let reader = async move {
        let mut buf = vec![0u8; chunk_size];
        let mut random = seed | 1;
        // Bytes since the last segment boundary, so loss is drawn once per
        // segment whatever the read sizes are.
        let mut partial = 0usize;
        // When the link finishes transmitting everything read so far.
        let mut link_free = Instant::now();
        loop {
            let n = match source.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::trace!(error = %e, "relay source closed with an error");
                    break;
                }
            };
            let now = Instant::now();
            let mut lost = Duration::ZERO;
            if loss_ppm > 0 {
                partial += n;
                while partial >= SEGMENT {
                    partial -= SEGMENT;
                    random = random
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if (random >> 33) % 1_000_000 < loss_ppm {
                        lost += stall;
                    }
                }
            }
            let sent = match rate {
                Some(rate) => {
                    let start = link_free.max(now) + lost;
                    link_free = start + Duration::from_secs_f64(n as f64 / rate as f64);
                    link_free
                }
                None => {
                    link_free = link_free.max(now) + lost;
                    link_free
                }
            };
            let chunk = InFlight {
                deliver_at: sent + latency,
                data: buf[..n].to_vec(),
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
            if rate.is_some() {
                tokio::time::sleep_until(link_free).await;
            }
        }
    };

    let writer = async move {
        while let Some(chunk) = rx.recv().await {
            tokio::time::sleep_until(chunk.deliver_at).await;
            if let Err(e) = destination.write_all(&chunk.data).await {
                tracing::trace!(error = %e, "relay destination closed with an error");
                return;
            }
            delivered.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        }
        if let Err(e) = destination.shutdown().await {
            tracing::trace!(error = %e, "relay could not half-close destination");
        }
    };

    // If the destination fails, stop reading at once: the source may be idle and
    // would otherwise keep this direction alive forever. If the source ends
    // first, let the writer drain what is still in flight.
    tokio::pin!(reader, writer);
    tokio::select! {
        () = &mut reader => writer.await,
        () = &mut writer => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles() {
        let vsat = LinkProfile::geo_vsat();
        assert_eq!(vsat.one_way_latency, Duration::from_millis(300));
        assert_eq!(vsat.rate_bytes_per_sec, Some(32_000));
        assert_eq!(vsat.chunk_size(), 640);
        assert_eq!(LinkProfile::ideal(), LinkProfile::default());
        assert_eq!(LinkProfile::ideal().chunk_size(), MAX_CHUNK);
        let zero = LinkProfile {
            rate_bytes_per_sec: Some(0),
            ..LinkProfile::ideal()
        };
        let bad = LinkProfile::geo_vsat_bad();
        assert_eq!(bad.loss_stall(), Duration::from_millis(600));
        assert_eq!(bad.rate_bytes_per_sec, Some(32_000));
        assert_eq!(zero.rate(), Some(1));
        assert_eq!(zero.chunk_size(), 1);
    }
}
