//! The Modbus TCP source task: one per device.
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
//!   next request. The connection is dropped and re-established.
//! - the inner error is an exception from a device that is alive and answering;
//!   only the tags of that request are bad, and the connection is kept.

use std::{io, time::Duration};

use chrono::Utc;
use keelson_model::{Quality, Sample};
use tokio::{
    net::TcpStream,
    sync::mpsc,
    time::{Instant, MissedTickBehavior},
};
use tokio_modbus::{
    ExceptionCode, Request, Response, Slave,
    client::{Client, Context, tcp},
};
use tokio_util::sync::CancellationToken;

use super::config::{ModbusDeviceConfig, RegisterConfig, RegisterKind};

/// The most registers one read request may ask for (the Modbus limit).
const MAX_REGISTERS_PER_REQUEST: u16 = 125;

/// The first reconnection delay; it doubles after each failure.
const BACKOFF_INITIAL: Duration = Duration::from_millis(250);

/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a clean disconnect may take at shutdown before the socket is
/// simply dropped.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// One read request covering a run of adjacent registers of the same kind.
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
        }
    }
}

/// Groups registers into as few read requests as possible.
///
/// Only registers that touch or overlap share a request: bridging a gap would
/// read addresses nobody configured, which many devices refuse with an
/// exception, spoiling the whole request.
pub(crate) fn plan(registers: &[RegisterConfig]) -> Vec<ReadBlock> {
    let mut order: Vec<usize> = (0..registers.len()).collect();
    order.sort_by_key(|&i| (registers[i].kind, registers[i].address));

    let mut blocks: Vec<ReadBlock> = Vec::new();
    for index in order {
        let register = &registers[index];
        let start = u32::from(register.address);
        let end = start + u32::from(register.data_type.width());
        if let Some(block) = blocks.last_mut() {
            let block_start = u32::from(block.start);
            let block_end = block_start + u32::from(block.count);
            let merged_end = block_end.max(end);
            if block.kind == register.kind
                && start <= block_end
                && merged_end - block_start <= u32::from(MAX_REGISTERS_PER_REQUEST)
            {
                // The length check above keeps the count within 125.
                block.count = (merged_end - block_start) as u16;
                block.members.push(index);
                continue;
            }
        }
        blocks.push(ReadBlock::new(
            register.kind,
            register.address,
            register.data_type.width(),
            vec![index],
        ));
    }
    blocks
}

/// Why a poll had to give up on the connection.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Modbus(#[from] tokio_modbus::Error),
}

/// A transport failure and the request it happened on.
struct PollFailure {
    kind: RegisterKind,
    start: u16,
    count: u16,
    error: TransportError,
}

/// A device's polling state: its configuration and read plan.
struct ModbusSource {
    device: ModbusDeviceConfig,
    blocks: Vec<ReadBlock>,
}

impl ModbusSource {
    fn new(device: ModbusDeviceConfig) -> ModbusSource {
        let blocks = plan(&device.registers);
        ModbusSource { device, blocks }
    }

    async fn connect(&self) -> io::Result<Context> {
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
        Ok(tcp::attach_slave(stream, Slave(self.device.unit_id)))
    }

    /// Reads every block once. Device exceptions become bad samples; transport
    /// failures abort the poll.
    async fn poll(&mut self, ctx: &mut Context) -> Result<Vec<Sample>, PollFailure> {
        let timeout = self.device.timeout();
        let mut samples = Vec::with_capacity(self.device.registers.len());
        let mut i = 0;
        while i < self.blocks.len() {
            let block = &self.blocks[i];
            let reply = tokio::time::timeout(timeout, ctx.call(block.request())).await;
            let ts = Utc::now();
            let failure = |error: TransportError| PollFailure {
                kind: block.kind,
                start: block.start,
                count: block.count,
                error,
            };
            let reply = match reply {
                Err(_) => return Err(failure(TransportError::Timeout(timeout))),
                Ok(Err(e)) => return Err(failure(TransportError::Modbus(e))),
                Ok(Ok(reply)) => reply,
            };
            match reply {
                Ok(response) => {
                    let words = match response {
                        Response::ReadHoldingRegisters(words)
                        | Response::ReadInputRegisters(words) => words,
                        other => {
                            // The client already matches function codes, so this
                            // should not happen; treat it like a garbled reply.
                            tracing::warn!(
                                device = %self.device.name,
                                address = block.start,
                                response = ?other,
                                "unexpected modbus response"
                            );
                            Vec::new()
                        }
                    };
                    self.decode_block(i, &words, ts, &mut samples);
                }
                Err(exception) => {
                    if exception == ExceptionCode::IllegalDataAddress && self.split_block(i) {
                        // Re-read the same position, now a single register.
                        continue;
                    }
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
        words: &[u16],
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
        if words.len() < usize::from(block.count) {
            tracing::warn!(
                device = %self.device.name,
                kind = ?block.kind,
                address = block.start,
                expected = block.count,
                received = words.len(),
                "modbus reply is shorter than requested; marking tags bad"
            );
            push_bad(&self.device.registers, &block.members, ts, samples);
            return;
        }
        for &member in &block.members {
            let register = &self.device.registers[member];
            let offset = usize::from(register.address - block.start);
            let value = words
                .get(offset..)
                .and_then(|words| register.engineering_value(words));
            samples.push(match value {
                Some(value) => Sample {
                    tag: register.tag.clone(),
                    ts,
                    value: Some(value),
                    quality: Quality::Good,
                },
                None => bad_sample(register, ts),
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
                ReadBlock::new(
                    register.kind,
                    register.address,
                    register.data_type.width(),
                    vec![m],
                )
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
async fn send(
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

/// Polls one device until `cancel` fires or the pipeline closes.
pub(crate) async fn run(
    device: ModbusDeviceConfig,
    tx: mpsc::Sender<Vec<Sample>>,
    cancel: CancellationToken,
) {
    let poll_interval = device.poll_interval();
    let mut source = ModbusSource::new(device);
    let mut backoff = Backoff::new();
    let mut failed_attempts: u32 = 0;
    let mut last_bad: Option<Instant> = None;
    tracing::debug!(
        device = %source.device.name,
        address = %source.device.address,
        requests = source.blocks.len(),
        "modbus source starting"
    );

    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            connected = source.connect() => connected,
        };
        match connected {
            Ok(mut ctx) => {
                if failed_attempts > 0 {
                    tracing::info!(
                        device = %source.device.name,
                        address = %source.device.address,
                        failed_attempts,
                        "connected to modbus device"
                    );
                } else {
                    tracing::debug!(
                        device = %source.device.name,
                        address = %source.device.address,
                        "connected to modbus device"
                    );
                }
                failed_attempts = 0;
                match poll_connected(&mut source, &mut ctx, &tx, &cancel, &mut backoff).await {
                    Some(failure) => {
                        tracing::warn!(
                            device = %source.device.name,
                            address = %source.device.address,
                            kind = ?failure.kind,
                            register = failure.start,
                            count = failure.count,
                            error = %failure.error,
                            "lost modbus device; reconnecting"
                        );
                    }
                    None => {
                        // Cancelled or the pipeline closed: leave politely.
                        let _ = tokio::time::timeout(DISCONNECT_GRACE, ctx.disconnect()).await;
                        return;
                    }
                }
            }
            Err(e) => {
                failed_attempts = failed_attempts.saturating_add(1);
                if failed_attempts == 1 {
                    tracing::warn!(
                        device = %source.device.name,
                        address = %source.device.address,
                        error = %e,
                        "cannot connect to modbus device; retrying with back-off"
                    );
                } else {
                    tracing::debug!(
                        device = %source.device.name,
                        address = %source.device.address,
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
    ctx: &mut Context,
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
        let polled = tokio::select! {
            () = cancel.cancelled() => return None,
            polled = source.poll(ctx) => polled,
        };
        match polled {
            Ok(samples) => {
                // Only a working poll proves the device is healthy; a device
                // that accepts connections and then fails every request keeps
                // backing off.
                backoff.reset();
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
            data_type: DataType::U16,
            scale: 1.0,
            offset: 0.0,
            unit: String::new(),
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
        let blocks = plan(&registers);
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
        let blocks = plan(&registers);
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
            spans(&plan(&registers)),
            vec![(RegisterKind::Holding, u16::MAX - 1, 2)]
        );
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
            unit_id: 1,
            poll_interval_ms: 1000,
            timeout_ms: 1000,
            registers: vec![
                register("a", RegisterKind::Holding, 0),
                register("b", RegisterKind::Holding, 1),
                register("b2", RegisterKind::Holding, 1),
                register("z", RegisterKind::Input, 0),
            ],
        };
        let mut source = ModbusSource::new(device);
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
