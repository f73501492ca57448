//! Modbus ingest, over TCP or RTU (RS-485).
//!
//! A [`ModbusDeviceConfig`] describes one device (a PLC, a gateway, an engine
//! monitoring unit) and the registers to read from it. One source task per
//! device reads the registers every poll interval and turns the words into
//! samples:
//!
//! - registers of the same table that touch (or lie within `max_gap` of each
//!   other) share one read request of at most `max_registers_per_request`
//!   registers, so a typical device costs one or two round trips per poll;
//! - a device exception (for example an unmapped address) marks only that
//!   request's tags bad and keeps the connection;
//! - a timeout is retried `retries` times; a transport failure marks every tag
//!   of the device bad and reconnects with exponential back-off;
//! - RTU devices on the same serial port share one connection and one request
//!   queue ([`source::RtuBus`]), since the bus carries one request at a time.

mod config;
pub mod decode;
pub(crate) mod source;

pub use config::{
    DataType, DecodeError, ModbusDeviceConfig, Parity, RegisterConfig, RegisterKind, Transport,
    WordOrder,
};
