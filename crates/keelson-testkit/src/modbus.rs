//! A simulated engine-room Modbus TCP device.
//!
//! [`EngineRoomSim`] serves ten holding registers (function 0x03) whose values
//! move like the instruments of a running two-stroke main engine and its
//! auxiliaries. Input registers (function 0x04) mirror the holding registers, so a
//! client configured for either kind sees the same values. Every register is an
//! unsigned 16-bit word; the engineering value is `raw * scale`.
//!
//! | Address | Tag                     | Unit | Scale | Typical range | Meaning                                |
//! |--------:|-------------------------|------|------:|---------------|----------------------------------------|
//! | 0       | `me.rpm`                | rpm  | 1     | 95–105        | Main engine speed                      |
//! | 1       | `me.exhaust_temp`       | °C   | 0.1   | 340–360       | Main engine exhaust gas temperature    |
//! | 2       | `me.lube_oil_pressure`  | bar  | 0.01  | ≈ 4.2         | Main engine lube oil inlet pressure    |
//! | 3       | `me.jcw_outlet_temp`    | °C   | 0.1   | 80–85         | Jacket cooling water outlet temperature|
//! | 4       | `me.fuel_oil_inlet_temp`| °C   | 0.1   | 133–137       | Fuel oil temperature at engine inlet   |
//! | 5       | `ge1.load`              | kW   | 1     | 350–490       | Generator 1 active load                |
//! | 6       | `ge1.frequency`         | Hz   | 0.01  | 59.9–60.1     | Generator 1 frequency                  |
//! | 7       | `start_air.pressure`    | bar  | 0.1   | 28–30         | Starting air receiver pressure         |
//! | 8       | `sea_water.temp`        | °C   | 0.1   | ≈ 18          | Sea water temperature                  |
//! | 9       | `bilge.level`           | %    | 0.1   | 12–60         | Engine-room bilge well level           |
//!
//! A background task recomputes the registers every 200 ms from smooth functions
//! of the time since start plus a little noise, so consecutive reads differ the
//! way real sensors do. The noise comes from a small linear congruential
//! generator: the simulation needs variety, not statistical quality.
//!
//! Reading any address outside 0..=9 returns the Modbus exception
//! `IllegalDataAddress`, and a zero or over-long quantity returns
//! `IllegalDataValue`; in both cases the connection stays open, as it would on a
//! real device. Writes and every other function are refused with
//! `IllegalFunction`, because the simulated instruments are read-only.

use std::{
    future, io,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_modbus::{
    ExceptionCode, Request, Response,
    server::{Service, tcp::Server},
};
use tokio_util::sync::CancellationToken;

/// One register of the simulated device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimRegister {
    /// The register address (the same for holding and input registers).
    pub address: u16,
    /// The tag name a configuration would give this register.
    pub tag: &'static str,
    /// The engineering unit of the scaled value.
    pub unit: &'static str,
    /// The factor from the raw word to the engineering value (`raw * scale`).
    pub scale: f64,
    /// What the register measures.
    pub description: &'static str,
}

/// The simulated device's register map, indexed by address.
pub const ENGINE_ROOM_MAP: &[SimRegister] = &[
    SimRegister {
        address: 0,
        tag: "me.rpm",
        unit: "rpm",
        scale: 1.0,
        description: "Main engine speed",
    },
    SimRegister {
        address: 1,
        tag: "me.exhaust_temp",
        unit: "°C",
        scale: 0.1,
        description: "Main engine exhaust gas temperature",
    },
    SimRegister {
        address: 2,
        tag: "me.lube_oil_pressure",
        unit: "bar",
        scale: 0.01,
        description: "Main engine lube oil inlet pressure",
    },
    SimRegister {
        address: 3,
        tag: "me.jcw_outlet_temp",
        unit: "°C",
        scale: 0.1,
        description: "Main engine jacket cooling water outlet temperature",
    },
    SimRegister {
        address: 4,
        tag: "me.fuel_oil_inlet_temp",
        unit: "°C",
        scale: 0.1,
        description: "Main engine fuel oil inlet temperature",
    },
    SimRegister {
        address: 5,
        tag: "ge1.load",
        unit: "kW",
        scale: 1.0,
        description: "Generator 1 active load",
    },
    SimRegister {
        address: 6,
        tag: "ge1.frequency",
        unit: "Hz",
        scale: 0.01,
        description: "Generator 1 frequency",
    },
    SimRegister {
        address: 7,
        tag: "start_air.pressure",
        unit: "bar",
        scale: 0.1,
        description: "Starting air receiver pressure",
    },
    SimRegister {
        address: 8,
        tag: "sea_water.temp",
        unit: "°C",
        scale: 0.1,
        description: "Sea water temperature",
    },
    SimRegister {
        address: 9,
        tag: "bilge.level",
        unit: "%",
        scale: 0.1,
        description: "Engine-room bilge well level",
    },
];

/// How many registers the device serves (addresses `0..REGISTER_COUNT`).
const REGISTER_COUNT: usize = 10;

/// How often the background task recomputes the registers.
const UPDATE_PERIOD: Duration = Duration::from_millis(200);

/// The largest quantity a single Modbus read may ask for (the protocol limit).
const MAX_READ_QUANTITY: u16 = 125;

type Registers = Arc<RwLock<[u16; REGISTER_COUNT]>>;

/// A running simulated engine-room device.
///
/// Dropping the value stops the device as [`EngineRoomSim::stop`] does, without
/// waiting for the tasks to finish.
pub struct EngineRoomSim {
    local_addr: SocketAddr,
    registers: Registers,
    updates: watch::Receiver<u64>,
    cancel: CancellationToken,
    server_task: JoinHandle<()>,
    update_task: JoinHandle<()>,
}

impl EngineRoomSim {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    ///
    /// The listener is bound before this returns, so clients may connect at once.
    /// `SO_REUSEADDR` is set so a test can stop a device and start a new one on the
    /// same port while old connections linger in `TIME_WAIT`.
    pub async fn start(addr: SocketAddr) -> io::Result<EngineRoomSim> {
        let listener = bind_reusable(addr)?;
        let local_addr = listener.local_addr()?;

        let started = Instant::now();
        let mut jitter = Jitter::from_clock();
        let registers: Registers = Arc::new(RwLock::new(raw_registers(0.0, &mut jitter)));
        let (updates_tx, updates) = watch::channel(0u64);
        let cancel = CancellationToken::new();

        let update_task = tokio::spawn(update_loop(
            Arc::clone(&registers),
            started,
            jitter,
            updates_tx,
            cancel.clone(),
        ));
        let server_task = tokio::spawn(serve(
            listener,
            Arc::new(EngineRoomService {
                registers: Arc::clone(&registers),
            }),
            cancel.clone(),
        ));

        tracing::debug!(addr = %local_addr, "engine-room simulator listening");
        Ok(EngineRoomSim {
            local_addr,
            registers,
            updates,
            cancel,
            server_task,
            update_task,
        })
    }

    /// The address the device listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current raw register values, indexed by address.
    pub fn registers(&self) -> Vec<u16> {
        read_registers(&self.registers).to_vec()
    }

    /// A counter that increases each time the registers are recomputed, so a
    /// caller can wait for fresh values instead of sleeping.
    pub fn subscribe_updates(&self) -> watch::Receiver<u64> {
        self.updates.clone()
    }

    /// Stops the device: closes the listener, drops every open connection and
    /// stops the update task. When this returns the port is free again.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        // Join errors only say the task was aborted or panicked; either way it
        // has ended, which is all that stopping needs.
        let _ = (&mut self.server_task).await;
        let _ = (&mut self.update_task).await;
        tracing::debug!(addr = %self.local_addr, "engine-room simulator stopped");
    }
}

impl Drop for EngineRoomSim {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.server_task.abort();
        self.update_task.abort();
    }
}

/// Binds a listener with `SO_REUSEADDR`, matching the address family of `addr`.
pub(crate) fn bind_reusable(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Runs the Modbus server until cancelled.
///
/// The server future owns the listener and a guard that cancels every
/// per-connection task, so leaving the `select!` closes the port and all
/// connections together.
async fn serve(listener: TcpListener, service: Arc<EngineRoomService>, cancel: CancellationToken) {
    let server = Server::new(listener);
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        let service = Arc::clone(&service);
        async move {
            tracing::trace!(peer = %peer, "engine-room simulator accepted a connection");
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(peer = %peer, error = %e, "could not disable Nagle on simulator connection");
            }
            Ok(Some((service, stream)))
        }
    };
    let on_process_error = |e: io::Error| {
        tracing::debug!(error = %e, "engine-room simulator connection ended with an error");
    };
    tokio::select! {
        result = server.serve(&on_connected, on_process_error) => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "engine-room simulator stopped accepting connections");
            }
        }
        () = cancel.cancelled() => {}
    }
}

/// Recomputes the registers every [`UPDATE_PERIOD`] until cancelled.
async fn update_loop(
    registers: Registers,
    started: Instant,
    mut jitter: Jitter,
    updates: watch::Sender<u64>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(UPDATE_PERIOD);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick completes at once; the initial values were computed in
    // `start`, so skip it to keep the period even.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = cancel.cancelled() => return,
        }
        let t = started.elapsed().as_secs_f64();
        let fresh = raw_registers(t, &mut jitter);
        match registers.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        updates.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn read_registers(registers: &Registers) -> [u16; REGISTER_COUNT] {
    // A poisoned lock still holds a complete array of plain words, so reading
    // through the poison is safe and keeps the device serving.
    match registers.read() {
        Ok(guard) => *guard,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

/// The Modbus request handler: reads from the shared register array.
struct EngineRoomService {
    registers: Registers,
}

impl EngineRoomService {
    fn read(&self, address: u16, quantity: u16) -> Result<Vec<u16>, ExceptionCode> {
        if quantity == 0 || quantity > MAX_READ_QUANTITY {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let start = usize::from(address);
        let end = start + usize::from(quantity);
        if end > REGISTER_COUNT {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(read_registers(&self.registers)[start..end].to_vec())
    }
}

impl Service for EngineRoomService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let result = match request {
            Request::ReadHoldingRegisters(address, quantity) => self
                .read(address, quantity)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(address, quantity) => self
                .read(address, quantity)
                .map(Response::ReadInputRegisters),
            _ => Err(ExceptionCode::IllegalFunction),
        };
        future::ready(result)
    }
}

/// The engineering values at `t` seconds after start, indexed by address.
///
/// Each signal is a slow oscillation or ramp around a plausible operating point
/// plus a little noise. Some signals follow others (exhaust temperature follows
/// engine speed) so the data looks coherent on a trend chart.
fn engineering_values(t: f64, jitter: &mut Jitter) -> [f64; REGISTER_COUNT] {
    use std::f64::consts::TAU;

    let wave = |period_s: f64, phase: f64| (TAU * t / period_s + phase).sin();
    // The fraction of the way through a repeating cycle, for ramps.
    let cycle = |period_s: f64| (t / period_s).fract();

    let rpm = 100.0 + 3.5 * wave(45.0, 0.0) + 0.7 * jitter.next_signed();
    let exhaust = 350.0 + 2.0 * (rpm - 100.0) + 1.5 * jitter.next_signed();
    let lube_oil = 4.2 + 0.05 * wave(70.0, 1.0) + 0.02 * jitter.next_signed();
    let jcw_outlet = 82.5 + 1.5 * wave(240.0, 0.3) + 0.2 * jitter.next_signed();
    let fuel_inlet = 135.0 + 1.2 * wave(180.0, 2.0) + 0.3 * jitter.next_signed();
    let load = 420.0 + 60.0 * wave(90.0, 0.7) + 8.0 * jitter.next_signed();
    let frequency = 60.0 + 0.05 * wave(17.0, 0.0) + 0.02 * jitter.next_signed();
    // The starting air receiver bleeds down until the compressor tops it up.
    let start_air = 30.0 - 1.8 * cycle(300.0) + 0.05 * jitter.next_signed();
    let sea_water = 18.0 + 0.3 * wave(600.0, 0.0) + 0.05 * jitter.next_signed();
    // The bilge well fills slowly until the bilge pump empties it.
    let bilge = 12.0 + 48.0 * cycle(960.0) + 0.1 * jitter.next_signed();

    [
        rpm, exhaust, lube_oil, jcw_outlet, fuel_inlet, load, frequency, start_air, sea_water,
        bilge,
    ]
}

/// The raw register words at `t` seconds after start.
fn raw_registers(t: f64, jitter: &mut Jitter) -> [u16; REGISTER_COUNT] {
    let values = engineering_values(t, jitter);
    let mut raw = [0u16; REGISTER_COUNT];
    for (slot, register) in raw.iter_mut().zip(ENGINE_ROOM_MAP) {
        let value = values[usize::from(register.address)];
        // The clamp keeps the cast in range; `as` saturates anyway, but being
        // explicit documents that out-of-range values pin to the word limits.
        *slot = (value / register.scale)
            .round()
            .clamp(0.0, f64::from(u16::MAX)) as u16;
    }
    raw
}

/// A tiny linear congruential generator for sensor noise.
struct Jitter(u64);

impl Jitter {
    fn from_clock() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        Jitter(nanos | 1)
    }

    /// A value in `[-1, 1)`.
    fn next_signed(&mut self) -> f64 {
        // Knuth's MMIX constants; the top 53 bits have the best period.
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        unit * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_indexed_by_address() {
        assert_eq!(ENGINE_ROOM_MAP.len(), REGISTER_COUNT);
        for (i, register) in ENGINE_ROOM_MAP.iter().enumerate() {
            assert_eq!(usize::from(register.address), i);
        }
    }

    #[test]
    fn values_stay_in_documented_ranges() {
        let mut jitter = Jitter(12345);
        let ranges: [(f64, f64); REGISTER_COUNT] = [
            (95.0, 105.0),
            (335.0, 365.0),
            (4.0, 4.4),
            (80.0, 85.0),
            (133.0, 137.0),
            (350.0, 490.0),
            (59.9, 60.1),
            (28.0, 30.1),
            (17.5, 18.5),
            (11.8, 60.2),
        ];
        for step in 0..5000 {
            let t = f64::from(step) * 0.7;
            let raw = raw_registers(t, &mut jitter);
            for (i, register) in ENGINE_ROOM_MAP.iter().enumerate() {
                let value = f64::from(raw[i]) * register.scale;
                let (lo, hi) = ranges[i];
                assert!(
                    (lo..=hi).contains(&value),
                    "{} = {value} outside {lo}..={hi} at t = {t}",
                    register.tag
                );
            }
        }
    }

    #[test]
    fn out_of_map_reads_are_exceptions() {
        let service = EngineRoomService {
            registers: Arc::new(RwLock::new([7; REGISTER_COUNT])),
        };
        assert_eq!(service.read(0, 10).map(|v| v.len()), Ok(10));
        assert_eq!(service.read(9, 1).map(|v| v.len()), Ok(1));
        assert_eq!(service.read(9, 2), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(service.read(100, 1), Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(
            service.read(u16::MAX, 125),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(service.read(0, 0), Err(ExceptionCode::IllegalDataValue));
        assert_eq!(service.read(0, 126), Err(ExceptionCode::IllegalDataValue));
    }
}
