//! The Modbus source task: one per device.
//!
//! The task alternates between two states. Connected, it reads every planned
//! block each poll interval and sends the decoded samples down the pipeline.
//! Disconnected, it retries the connection with exponential back-off and, at most
//! once per poll interval, sends bad samples for all of the device's tags so the
//! live view shows the device is down instead of freezing on old values.
//!
//! tokio-modbus answers with a two-level result, and the two levels are handled
//! differently on purpose:
//!
//! - the outer error (I/O, protocol mismatch) or a timeout means the connection
//!   can no longer be trusted: a late reply would be taken as the answer to the
//!   next request. The connection is dropped and re-established; a timeout is
//!   first retried `retries` times on a fresh connection.
//! - the inner error is an exception from a device that is alive and answering;
//!   only the tags of that request are bad, and the connection is kept.
//!
//! TCP devices each own a connection. RTU devices on one serial port share an
//! [`RtuBus`]: a fair (first come, first served) lock around one serial
//! connection, which is the bus's request queue. Each request sets its unit id.

use std::{collections::HashMap, io, sync::Arc, time::Duration};

use chrono::Utc;
use keelson_model::{Quality, Sample};
use tokio::{
    net::TcpStream,
    sync::{Mutex, mpsc},
    time::{Instant, MissedTickBehavior},
};
use tokio_modbus::{
    ExceptionCode, Request, Response, Slave,
    client::{Client, Context, rtu, tcp},
    slave::SlaveContext,
};
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;

use super::config::{ModbusDeviceConfig, Parity, RegisterConfig, RegisterKind, Transport};
use crate::{metrics::IngestMetrics, ratelog::RateLimitedLog};

/// The first reconnection delay; it doubles after each failure.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a clean disconnect may take at shutdown before the socket is
/// simply dropped.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// One read request covering a run of nearby addresses of the same table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadBlock {
    pub(crate) kind: RegisterKind,
    pub(crate) start: u16,
    pub(crate) count: u16,
    /// Indices into the device's register list of the registers this block serves.
    pub(crate) members: Vec<usize>,
    /// The exception the last read of this block returned, so a persistent
    /// exception is logged once rather than every poll.
    last_exception: Option<ExceptionCode>,
}

impl ReadBlock {
    fn new(kind: RegisterKind, start: u16, count: u16, members: Vec<usize>) -> ReadBlock {
        ReadBlock {
            kind,
            start,
            count,
            members,
            last_exception: None,
        }
    }

    fn request(&self) -> Request<'static> {
        match self.kind {
            RegisterKind::Holding => Request::ReadHoldingRegisters(self.start, self.count),
            RegisterKind::Input => Request::ReadInputRegisters(self.start, self.count),
            RegisterKind::Coil => Request::ReadCoils(self.start, self.count),
            RegisterKind::DiscreteInput => Request::ReadDiscreteInputs(self.start, self.count),
        }
    }
}

/// Groups a device's registers into as few read requests as possible.
///
/// Registers of the same table share a request when they are at most
/// `max_gap` addresses apart and the request stays within
/// `max_registers_per_request` (or the 2000-bit limit for coils and discrete
/// inputs). With `one_request_per_tag` every tag gets its own request.
pub(crate) fn plan(device: &ModbusDeviceConfig) -> Vec<ReadBlock> {
    let registers = &device.registers;
    let mut order: Vec<usize> = (0..registers.len()).collect();
    order.sort_by_key(|&i| (registers[i].kind, registers[i].address));

    let mut blocks: Vec<ReadBlock> = Vec::new();
    for index in order {
        let register = &registers[index];
        let start = u32::from(register.address);
        let end = start + u32::from(register.width());
        let limit = if register.kind.is_bits() {
            register.kind.protocol_limit()
        } else {
            device.max_registers_per_request
        };
        if let Some(block) = blocks.last_mut() {
            let block_start = u32::from(block.start);
            let block_end = block_start + u32::from(block.count);
            let merged_end = block_end.max(end);
            if !device.one_request_per_tag
                && block.kind == register.kind
                && start <= block_end + u32::from(device.max_gap)
                && merged_end - block_start <= u32::from(limit)
            {
                // The length check above keeps the count within the limit.
                block.count = (merged_end - block_start) as u16;
                block.members.push(index);
                continue;
            }
        }
        blocks.push(ReadBlock::new(
            register.kind,
            register.address,
            register.width(),
            vec![index],
        ));
    }
    blocks
}

/// Why a request had to give up on the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error(transparent)]
    Modbus(#[from] tokio_modbus::Error),
}

impl TransportError {
    fn kind(&self) -> &'static str {
        match self {
            TransportError::Timeout(_) => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Modbus(_) => "transport",
        }
    }
}

/// A transport failure and the request it happened on.
struct PollFailure {
    kind: RegisterKind,
    start: u16,
    count: u16,
    error: TransportError,
}

/// One serial line shared by every RTU device configured on it.
///
/// The tokio mutex is fair, so devices take turns in the order they asked:
/// it is the bus's request queue. The connection is opened on first use and
/// after every transport failure.
pub(crate) struct RtuBus {
    path: String,
    baud_rate: u32,
    parity: Parity,
    stop_bits: u8,
    conn: Mutex<Option<Context>>,
}

impl RtuBus {
    fn new(device: &ModbusDeviceConfig) -> RtuBus {
        RtuBus {
            path: device.serial_port.clone(),
            baud_rate: device.baud_rate,
            parity: device.parity,
            stop_bits: device.stop_bits,
            conn: Mutex::new(None),
        }
    }

    fn open(&self) -> io::Result<Context> {
        let parity = match self.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        };
        let stop_bits = if self.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        };
        let port = tokio_serial::new(self.path.as_str(), self.baud_rate)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(parity)
            .stop_bits(stop_bits)
            .open_native_async()
            .map_err(io::Error::from)?;
        Ok(rtu::attach(port))
    }

    /// Opens the serial port if it is not open, so an unplugged adapter is
    /// reported like an unreachable TCP device.
    async fn ensure_open(&self) -> io::Result<()> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(self.open()?);
        }
        Ok(())
    }

    /// Sends one request to `unit` and waits for its reply, holding the bus
    /// for the whole exchange.
    async fn call(
        &self,
        unit: u8,
        request: Request<'static>,
        timeout: Duration,
    ) -> Result<Result<Response, ExceptionCode>, TransportError> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(self.open().map_err(TransportError::Connect)?);
        }
        let Some(ctx) = conn.as_mut() else {
            return Err(TransportError::Connect(io::Error::other("not connected")));
        };
        ctx.set_slave(Slave(unit));
        let reply = tokio::time::timeout(timeout, ctx.call(request)).await;
        match reply {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                // Reopen on the next request: whatever is left in the
                // buffers belongs to the failed exchange.
                *conn = None;
                Err(TransportError::Modbus(e))
            }
            Err(_) => {
                *conn = None;
                Err(TransportError::Timeout(timeout))
            }
        }
    }
}

/// The RTU buses of a configuration, one per serial port.
pub(crate) fn rtu_buses(devices: &[ModbusDeviceConfig]) -> HashMap<String, Arc<RtuBus>> {
    let mut buses = HashMap::new();
    for device in devices.iter().filter(|d| d.transport == Transport::Rtu) {
        buses
            .entry(device.serial_port.clone())
            .or_insert_with(|| Arc::new(RtuBus::new(device)));
    }
    buses
}

/// How a device is reached.
enum Link {
    Tcp(Option<Context>),
    Rtu(Arc<RtuBus>),
}

/// A device's polling state: its configuration, read plan and link.
struct ModbusSource {
    device: ModbusDeviceConfig,
    blocks: Vec<ReadBlock>,
    link: Link,
    metrics: IngestMetrics,
    decode_log: RateLimitedLog,
}

impl ModbusSource {
    fn new(device: ModbusDeviceConfig, link: Link, metrics: IngestMetrics) -> ModbusSource {
        let blocks = plan(&device);
        ModbusSource {
            device,
            blocks,
            link,
            metrics,
            decode_log: RateLimitedLog::default(),
        }
    }

    fn endpoint(&self) -> &str {
        match self.device.transport {
            Transport::Tcp => &self.device.address,
            Transport::Rtu => &self.device.serial_port,
        }
    }

    /// Opens the TCP connection, or makes sure the RTU bus's port is open.
    async fn connect(&mut self) -> io::Result<()> {
        let slot = match &mut self.link {
            Link::Tcp(slot) => slot,
            Link::Rtu(bus) => return bus.ensure_open().await,
        };
        let timeout = self.device.timeout();
        let stream =
            tokio::time::timeout(timeout, TcpStream::connect(self.device.address.as_str()))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    )
                })??;
        // Requests are small and latency-sensitive; Nagle would only delay them.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(device = %self.device.name, error = %e, "could not disable Nagle");
        }
        *slot = Some(tcp::attach_slave(stream, Slave(self.device.unit_id)));
        Ok(())
    }

    async fn disconnect(&mut self) {
        if let Link::Tcp(slot) = &mut self.link
            && let Some(mut ctx) = slot.take()
        {
            let _ = tokio::time::timeout(DISCONNECT_GRACE, ctx.disconnect()).await;
        }
    }

    /// One request/reply exchange.
    async fn call(
        &mut self,
        request: Request<'static>,
    ) -> Result<Result<Response, ExceptionCode>, TransportError> {
        let timeout = self.device.timeout();
        match &mut self.link {
            Link::Rtu(bus) => bus.call(self.device.unit_id, request, timeout).await,
            Link::Tcp(slot) => {
                let Some(ctx) = slot.as_mut() else {
                    return Err(TransportError::Connect(io::Error::other("not connected")));
                };
                match tokio::time::timeout(timeout, ctx.call(request)).await {
                    Err(_) => {
                        *slot = None;
                        Err(TransportError::Timeout(timeout))
                    }
                    Ok(Err(e)) => {
                        *slot = None;
                        Err(TransportError::Modbus(e))
                    }
                    Ok(Ok(reply)) => Ok(reply),
                }
            }
        }
    }

    /// One exchange, retrying timeouts on a fresh connection.
    async fn call_with_retries(
        &mut self,
        request: Request<'static>,
    ) -> Result<Result<Response, ExceptionCode>, TransportError> {
        let mut attempt = 0;
        loop {
            match self.call(request.clone()).await {
                Err(TransportError::Timeout(_)) if attempt < self.device.retries => {
                    attempt += 1;
                    self.metrics.error(&self.device.name, "timeout");
                    tracing::debug!(
                        device = %self.device.name,
                        attempt,
                        "modbus request timed out; retrying"
                    );
                    if let Err(e) = self.connect().await {
                        return Err(TransportError::Connect(e));
                    }
                }
                other => return other,
            }
        }
    }

    /// Reads every block once. Device exceptions become bad samples; transport
    /// failures abort the poll.
    async fn poll(&mut self) -> Result<Vec<Sample>, PollFailure> {
        let mut samples = Vec::with_capacity(self.device.registers.len());
        let mut i = 0;
        while i < self.blocks.len() {
            let request = self.blocks[i].request();
            let reply = self.call_with_retries(request).await;
            let ts = Utc::now();
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    let block = &self.blocks[i];
                    return Err(PollFailure {
                        kind: block.kind,
                        start: block.start,
                        count: block.count,
                        error,
                    });
                }
            };
            match reply {
                Ok(response) => self.decode_block(i, response, ts, &mut samples),
                Err(exception) => {
                    if exception == ExceptionCode::IllegalDataAddress && self.split_block(i) {
                        // Re-read the same position, now a single register.
                        continue;
                    }
                    self.metrics.error(&self.device.name, "exception");
                    self.note_exception(i, exception);
                    let block = &self.blocks[i];
                    push_bad(&self.device.registers, &block.members, ts, &mut samples);
                }
            }
            i += 1;
        }
        Ok(samples)
    }

    /// Turns a block's reply into samples, logging a recovery from an earlier
    /// exception once.
    fn decode_block(
        &mut self,
        index: usize,
        response: Response,
        ts: chrono::DateTime<Utc>,
        samples: &mut Vec<Sample>,
    ) {
        let block = &mut self.blocks[index];
        if let Some(exception) = block.last_exception.take() {
            tracing::info!(
                device = %self.device.name,
                kind = ?block.kind,
                address = block.start,
                count = block.count,
                previous = %exception,
                "modbus device answers again"
            );
        }
        let (words, bits) = match response {
            Response::ReadHoldingRegisters(words) | Response::ReadInputRegisters(words) => {
                (words, Vec::new())
            }
            Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => (Vec::new(), bits),
            other => {
                // The client already matches function codes, so this should
                // not happen; treat it like a garbled reply.
                tracing::warn!(
                    device = %self.device.name,
                    address = block.start,
                    response = ?other,
                    "unexpected modbus response"
                );
                (Vec::new(), Vec::new())
            }
        };
        let received = if block.kind.is_bits() {
            bits.len()
        } else {
            words.len()
        };
        if received < usize::from(block.count) {
            self.metrics.error(&self.device.name, "decode");
            tracing::warn!(
                device = %self.device.name,
                kind = ?block.kind,
                address = block.start,
                expected = block.count,
                received,
                "modbus reply is shorter than requested; marking tags bad"
            );
            push_bad(&self.device.registers, &block.members, ts, samples);
            return;
        }
        let start = block.start;
        let kind = block.kind;
        for &member in &self.blocks[index].members {
            let register = &self.device.registers[member];
            let offset = usize::from(register.address - start);
            let value = if kind.is_bits() {
                let raw = bits.get(offset).map_or(0.0, |&b| f64::from(u8::from(b)));
                register.scaled(raw)
            } else {
                register.engineering_value(words.get(offset..).unwrap_or(&[]), self.device.order)
            };
            let text = if kind.is_bits() {
                None
            } else {
                register.text_value(words.get(offset..).unwrap_or(&[]), self.device.order)
            };
            samples.push(match (value, text) {
                // A text register is good when it reads as text; its value
                // is the number it spells, if any.
                (value, Some(Ok(text))) => Sample {
                    tag: register.tag.clone(),
                    ts,
                    value: value.ok(),
                    quality: Quality::Good,
                    text: Some(text),
                },
                (Ok(value), None) => Sample {
                    tag: register.tag.clone(),
                    ts,
                    value: Some(value),
                    quality: Quality::Good,
                    text: None,
                },
                (Err(e), None) | (_, Some(Err(e))) => {
                    self.metrics.error(&self.device.name, "decode");
                    self.decode_log
                        .decode_failed(&self.device.name, &register.tag, &e.to_string());
                    bad_sample(register, ts)
                }
            });
        }
    }

    /// Replaces block `index` with one block per register, so one unmapped
    /// address no longer spoils its neighbours. Returns false when the block
    /// already reads a single address.
    fn split_block(&mut self, index: usize) -> bool {
        let block = &self.blocks[index];
        let registers = &self.device.registers;
        let first = registers[block.members[0]].address;
        if block.members.iter().all(|&m| registers[m].address == first) {
            return false;
        }
        tracing::info!(
            device = %self.device.name,
            kind = ?block.kind,
            address = block.start,
            count = block.count,
            "device refused a combined read; reading these registers one at a time"
        );
        let singles: Vec<ReadBlock> = block
            .members
            .iter()
            .map(|&m| {
                let register = &registers[m];
                ReadBlock::new(register.kind, register.address, register.width(), vec![m])
            })
            .collect();
        self.blocks.splice(index..=index, singles);
        true
    }

    /// Logs an exception the first time a block returns it.
    fn note_exception(&mut self, index: usize, exception: ExceptionCode) {
        let block = &mut self.blocks[index];
        if block.last_exception == Some(exception) {
            return;
        }
        block.last_exception = Some(exception);
        let tags: Vec<&str> = block
            .members
            .iter()
            .map(|&m| self.device.registers[m].tag.as_str())
            .collect();
        tracing::warn!(
            device = %self.device.name,
            kind = ?block.kind,
            address = block.start,
            count = block.count,
            tags = %tags.join(","),
            exception = %exception,
            "modbus device returned an exception; marking tags bad"
        );
    }

    /// Bad samples for every tag of the device, stamped now.
    fn all_bad(&self) -> Vec<Sample> {
        let ts = Utc::now();
        self.device
            .registers
            .iter()
            .map(|register| bad_sample(register, ts))
            .collect()
    }
}

fn bad_sample(register: &RegisterConfig, ts: chrono::DateTime<Utc>) -> Sample {
    Sample {
        tag: register.tag.clone(),
        ts,
        value: None,
        quality: Quality::Bad,
        text: None,
    }
}

fn push_bad(
    registers: &[RegisterConfig],
    members: &[usize],
    ts: chrono::DateTime<Utc>,
    samples: &mut Vec<Sample>,
) {
    samples.extend(members.iter().map(|&m| bad_sample(&registers[m], ts)));
}

/// Exponential back-off between reconnection attempts.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: BACKOFF_INITIAL,
        }
    }

    /// The delay before the next attempt; doubles the one after it.
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = BACKOFF_INITIAL;
    }
}

/// Sends a batch down the pipeline. Returns false when ingest is shutting down.
pub(crate) async fn send(
    tx: &mpsc::Sender<Vec<Sample>>,
    samples: Vec<Sample>,
    cancel: &CancellationToken,
) -> bool {
    if samples.is_empty() {
        return true;
    }
    tokio::select! {
        () = cancel.cancelled() => false,
        sent = tx.send(samples) => sent.is_ok(),
    }
}

/// Polls one device until `cancel` fires or the pipeline closes. RTU devices
/// pass the bus of their serial port.
pub(crate) async fn run(
    device: ModbusDeviceConfig,
    bus: Option<Arc<RtuBus>>,
    tx: mpsc::Sender<Vec<Sample>>,
    metrics: IngestMetrics,
    cancel: CancellationToken,
) {
    let poll_interval = device.poll_interval();
    let link = match bus {
        Some(bus) => Link::Rtu(bus),
        None => Link::Tcp(None),
    };
    let mut source = ModbusSource::new(device, link, metrics);
    let mut backoff = Backoff::new();
    let mut failed_attempts: u32 = 0;
    let mut last_bad: Option<Instant> = None;
    tracing::debug!(
        device = %source.device.name,
        endpoint = %source.endpoint(),
        requests = source.blocks.len(),
        "modbus source starting"
    );

    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            connected = source.connect() => connected,
        };
        match connected {
            Ok(()) => {
                if failed_attempts > 0 {
                    tracing::info!(
                        device = %source.device.name,
                        endpoint = %source.endpoint(),
                        failed_attempts,
                        "connected to modbus device"
                    );
                }
                failed_attempts = 0;
                match poll_connected(&mut source, &tx, &cancel, &mut backoff).await {
                    Some(failure) => {
                        source
                            .metrics
                            .error(&source.device.name, failure.error.kind());
                        tracing::warn!(
                            device = %source.device.name,
                            endpoint = %source.endpoint(),
                            kind = ?failure.kind,
                            register = failure.start,
                            count = failure.count,
                            error = %failure.error,
                            "lost modbus device; reconnecting"
                        );
                        source.disconnect().await;
                    }
                    None => {
                        // Cancelled or the pipeline closed: leave politely.
                        source.disconnect().await;
                        return;
                    }
                }
            }
            Err(e) => {
                source.metrics.error(&source.device.name, "connect");
                failed_attempts = failed_attempts.saturating_add(1);
                if failed_attempts == 1 {
                    tracing::warn!(
                        device = %source.device.name,
                        endpoint = %source.endpoint(),
                        error = %e,
                        "cannot connect to modbus device; retrying with back-off"
                    );
                } else {
                    tracing::debug!(
                        device = %source.device.name,
                        endpoint = %source.endpoint(),
                        error = %e,
                        failed_attempts,
                        "modbus device still unreachable"
                    );
                }
            }
        }

        // Unreachable: show it, then wait before trying again.
        let bad_due = last_bad.is_none_or(|at| at.elapsed() >= poll_interval);
        if bad_due {
            if !send(&tx, source.all_bad(), &cancel).await {
                return;
            }
            last_bad = Some(Instant::now());
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Polls over an open connection. Returns the failure that ended it, or `None`
/// when ingest is shutting down.
async fn poll_connected(
    source: &mut ModbusSource,
    tx: &mpsc::Sender<Vec<Sample>>,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
) -> Option<PollFailure> {
    let mut ticker = tokio::time::interval(source.device.poll_interval());
    // After a slow poll, keep the full interval before the next one rather
    // than bursting to catch up: a slow device needs less load, not more.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return None,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let polled = tokio::select! {
            () = cancel.cancelled() => return None,
            polled = source.poll() => polled,
        };
        source
            .metrics
            .poll_took(&source.device.name, started.elapsed().as_secs_f64());
        match polled {
            Ok(samples) => {
                // Only a working poll proves the device is healthy; a device
                // that accepts connections and then fails every request keeps
                // backing off.
                backoff.reset();
                source.metrics.produced(&source.device.name, samples.len());
                if !send(tx, samples, cancel).await {
                    return None;
                }
            }
            Err(failure) => return Some(failure),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::modbus::DataType;

    fn register(tag: &str, kind: RegisterKind, address: u16) -> RegisterConfig {
        RegisterConfig {
            tag: tag.to_owned(),
            address,
            kind,
            data_type: if kind.is_bits() {
                DataType::Bool
            } else {
                DataType::U16
            },
            ..RegisterConfig::default()
        }
    }

    fn device_of(registers: Vec<RegisterConfig>) -> ModbusDeviceConfig {
        ModbusDeviceConfig {
            name: "d".into(),
            address: "127.0.0.1:502".into(),
            registers,
            ..ModbusDeviceConfig::default()
        }
    }

    fn spans(blocks: &[ReadBlock]) -> Vec<(RegisterKind, u16, u16)> {
        blocks.iter().map(|b| (b.kind, b.start, b.count)).collect()
    }

    #[test]
    fn adjacent_registers_of_one_kind_share_a_request() {
        use RegisterKind::{Holding, Input};
        let registers = vec![
            register("c", Holding, 2),
            register("a", Holding, 0),
            register("b", Holding, 1),
            register("gap", Holding, 5),
            register("dup", Holding, 5),
            register("in0", Input, 0),
            register("in1", Input, 1),
            register("in3", Input, 3),
        ];
        let blocks = plan(&device_of(registers));
        assert_eq!(
            spans(&blocks),
            vec![
                (Holding, 0, 3),
                (Holding, 5, 1),
                (Input, 0, 2),
                (Input, 3, 1)
            ]
        );
        assert_eq!(blocks[0].members, vec![1, 2, 0]);
        assert_eq!(blocks[1].members, vec![3, 4]);
    }

    #[test]
    fn requests_stop_at_125_registers() {
        let registers: Vec<RegisterConfig> = (0..300u16)
            .map(|a| register(&format!("t{a}"), RegisterKind::Holding, a))
            .collect();
        let blocks = plan(&device_of(registers));
        assert_eq!(
            spans(&blocks),
            vec![
                (RegisterKind::Holding, 0, 125),
                (RegisterKind::Holding, 125, 125),
                (RegisterKind::Holding, 250, 50)
            ]
        );
    }

    #[test]
    fn the_last_address_plans_without_overflow() {
        let registers = vec![
            register("end", RegisterKind::Holding, u16::MAX),
            register("before", RegisterKind::Holding, u16::MAX - 1),
        ];
        assert_eq!(
            spans(&plan(&device_of(registers))),
            vec![(RegisterKind::Holding, u16::MAX - 1, 2)]
        );
    }

    #[test]
    fn gaps_limits_and_one_request_per_tag() {
        use RegisterKind::{Coil, Holding};
        let mut registers = vec![
            register("a", Holding, 0),
            register("b", Holding, 4),
            register("c", Holding, 20),
            register("c0", Coil, 0),
            register("c9", Coil, 9),
        ];
        registers[1].data_type = DataType::F32;
        let mut device = device_of(registers);
        device.max_gap = 3;
        assert_eq!(
            spans(&plan(&device)),
            vec![
                (Holding, 0, 6),
                (Holding, 20, 1),
                (Coil, 0, 1),
                (Coil, 9, 1)
            ]
        );
        device.max_gap = 10;
        device.max_registers_per_request = 8;
        assert_eq!(
            spans(&plan(&device)),
            vec![(Holding, 0, 6), (Holding, 20, 1), (Coil, 0, 10)]
        );
        device.one_request_per_tag = true;
        assert_eq!(plan(&device).len(), 5);
    }

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            vec![250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), BACKOFF_INITIAL);
    }

    #[test]
    fn split_turns_a_block_into_single_reads() {
        let device = ModbusDeviceConfig {
            name: "d".into(),
            address: "127.0.0.1:502".into(),
            registers: vec![
                register("a", RegisterKind::Holding, 0),
                register("b", RegisterKind::Holding, 1),
                register("b2", RegisterKind::Holding, 1),
                register("z", RegisterKind::Input, 0),
            ],
            ..ModbusDeviceConfig::default()
        };
        let mut source = ModbusSource::new(device, Link::Tcp(None), IngestMetrics::new());
        assert!(source.split_block(0));
        assert_eq!(
            spans(&source.blocks),
            vec![
                (RegisterKind::Holding, 0, 1),
                (RegisterKind::Holding, 1, 1),
                (RegisterKind::Holding, 1, 1),
                (RegisterKind::Input, 0, 1)
            ]
        );
        assert!(!source.split_block(0));
        assert!(!source.split_block(3));
    }
}
