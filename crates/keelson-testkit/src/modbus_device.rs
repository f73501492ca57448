//! A configurable Modbus device for tests: TCP or RTU, any register contents,
//! exceptions on demand, and restarts.
//!
//! [`DeviceMemory`] holds the four Modbus tables (holding and input registers,
//! coils, discrete inputs) over the whole 16-bit address space. Tests write
//! values into it in whatever layout they want to exercise (byte and word
//! orders, floats, strings) and can make chosen addresses answer with an
//! exception such as `ServerDeviceBusy`. A request touching such an address
//! gets the exception, as a real device would answer.
//!
//! [`ModbusTcpDevice`] serves one memory over Modbus TCP; stopping it and
//! starting it again on the same port with the same memory is a device
//! restart. [`serve_rtu`] serves several unit ids, each with its memory, on a
//! serial port (a pseudo-terminal in tests); a request to a unit id that is not
//! on the bus goes unanswered, as on RS-485.

use std::{
    collections::HashMap,
    future, io,
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_modbus::{
    ExceptionCode, Request, Response, SlaveRequest,
    server::{Service, rtu, tcp::Server},
};
use tokio_util::sync::CancellationToken;

use crate::modbus::bind_reusable;

/// A Modbus data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Holding registers (function 0x03).
    Holding,
    /// Input registers (function 0x04).
    Input,
    /// Coils (function 0x01).
    Coil,
    /// Discrete inputs (function 0x02).
    DiscreteInput,
}

const SPACE: usize = 1 << 16;

struct Tables {
    holding: Vec<u16>,
    input: Vec<u16>,
    coils: Vec<bool>,
    discrete: Vec<bool>,
    exceptions: HashMap<(Table, u16), ExceptionCode>,
    requests: u64,
}

/// The contents of a simulated device; clones share the same memory.
#[derive(Clone)]
pub struct DeviceMemory {
    inner: Arc<RwLock<Tables>>,
}

impl std::fmt::Debug for DeviceMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceMemory")
    }
}

impl Default for DeviceMemory {
    fn default() -> Self {
        DeviceMemory::new()
    }
}

impl DeviceMemory {
    /// All registers zero, all bits off, no exceptions.
    pub fn new() -> DeviceMemory {
        DeviceMemory {
            inner: Arc::new(RwLock::new(Tables {
                holding: vec![0; SPACE],
                input: vec![0; SPACE],
                coils: vec![false; SPACE],
                discrete: vec![false; SPACE],
                exceptions: HashMap::new(),
                requests: 0,
            })),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        // The tables are plain data, valid even if a writer panicked.
        match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Writes `words` into the holding (or input) registers from `address`.
    pub fn set_registers(&self, table: Table, address: u16, words: &[u16]) {
        let mut t = self.write();
        let target = match table {
            Table::Input => &mut t.input,
            _ => &mut t.holding,
        };
        for (i, w) in words.iter().enumerate() {
            if let Some(slot) = target.get_mut(usize::from(address) + i) {
                *slot = *w;
            }
        }
    }

    /// Sets a coil (or discrete input).
    pub fn set_bit(&self, table: Table, address: u16, value: bool) {
        let mut t = self.write();
        let target = match table {
            Table::DiscreteInput => &mut t.discrete,
            _ => &mut t.coils,
        };
        target[usize::from(address)] = value;
    }

    /// Makes every read touching `address` of `table` answer `exception`.
    pub fn fail(&self, table: Table, address: u16, exception: ExceptionCode) {
        self.write().exceptions.insert((table, address), exception);
    }

    /// Removes every configured exception.
    pub fn clear_failures(&self) {
        self.write().exceptions.clear();
    }

    /// How many requests the device has answered (including exceptions).
    pub fn requests(&self) -> u64 {
        self.read().requests
    }

    fn answer(&self, request: &Request<'_>) -> Result<Response, ExceptionCode> {
        let (table, address, count) = match *request {
            Request::ReadHoldingRegisters(a, n) => (Table::Holding, a, n),
            Request::ReadInputRegisters(a, n) => (Table::Input, a, n),
            Request::ReadCoils(a, n) => (Table::Coil, a, n),
            Request::ReadDiscreteInputs(a, n) => (Table::DiscreteInput, a, n),
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        let mut t = self.write();
        t.requests += 1;
        let limit = if matches!(table, Table::Coil | Table::DiscreteInput) {
            2000
        } else {
            125
        };
        if count == 0 || count > limit {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let start = usize::from(address);
        let end = start + usize::from(count);
        if end > SPACE {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        for a in start..end {
            if let Some(e) = t.exceptions.get(&(table, a as u16)) {
                return Err(*e);
            }
        }
        Ok(match table {
            Table::Holding => Response::ReadHoldingRegisters(t.holding[start..end].to_vec()),
            Table::Input => Response::ReadInputRegisters(t.input[start..end].to_vec()),
            Table::Coil => Response::ReadCoils(t.coils[start..end].to_vec()),
            Table::DiscreteInput => Response::ReadDiscreteInputs(t.discrete[start..end].to_vec()),
        })
    }
}

/// Answers requests for the unit ids it holds memory for.
struct UnitsService {
    /// `None` serves every unit id from one memory (TCP).
    units: HashMap<u8, DeviceMemory>,
    any: Option<DeviceMemory>,
}

impl Service for UnitsService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let memory = self.any.as_ref().or_else(|| self.units.get(&request.slave));
        future::ready(match memory {
            Some(memory) => memory.answer(&request.request).map(Some),
            // Not on this bus: stay silent.
            None => Ok(None),
        })
    }
}

/// A Modbus TCP device serving a [`DeviceMemory`].
pub struct ModbusTcpDevice {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ModbusTcpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusTcpDevice")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl ModbusTcpDevice {
    /// Binds `addr` (port 0 picks a free port) and serves `memory` to any unit
    /// id. The listener is bound before this returns.
    pub async fn start(addr: SocketAddr, memory: DeviceMemory) -> io::Result<ModbusTcpDevice> {
        let listener = bind_reusable(addr)?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let service = Arc::new(UnitsService {
            units: HashMap::new(),
            any: Some(memory),
        });
        let task = tokio::spawn(serve_tcp(listener, service, cancel.clone()));
        Ok(ModbusTcpDevice {
            local_addr,
            cancel,
            task,
        })
    }

    /// The address the device listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the device: closes the listener and every connection.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ModbusTcpDevice {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

async fn serve_tcp(listener: TcpListener, service: Arc<UnitsService>, cancel: CancellationToken) {
    let server = Server::new(listener);
    let on_connected = |stream: TcpStream, _peer: SocketAddr| {
        let service = Arc::clone(&service);
        async move { Ok(Some((service, stream))) }
    };
    let on_process_error = |e: io::Error| {
        tracing::debug!(error = %e, "test modbus device connection ended with an error");
    };
    tokio::select! {
        result = server.serve(&on_connected, on_process_error) => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "test modbus device stopped accepting connections");
            }
        }
        () = cancel.cancelled() => {}
    }
}

/// Serves `units` (unit id → memory) as Modbus RTU on the serial port at
/// `path` until `cancel` fires.
pub fn serve_rtu(
    path: &str,
    baud_rate: u32,
    units: HashMap<u8, DeviceMemory>,
    cancel: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let server = rtu::Server::new_from_path(path, baud_rate)?;
    let service = UnitsService { units, any: None };
    Ok(tokio::spawn(async move {
        if let Err(e) = server
            .serve_until(service, async move { cancel.cancelled().await })
            .await
        {
            tracing::debug!(error = %e, "test rtu device stopped");
        }
    }))
}
