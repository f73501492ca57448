//! Modbus TCP ingest.
//!
//! A [`ModbusDeviceConfig`] describes one device (a PLC, a gateway, an engine
//! monitoring unit) and the registers to read from it. One source task per device
//! keeps a TCP connection open, reads the registers every poll interval and turns
//! the words into samples:
//!
//! - adjacent registers of the same kind share one read request (at most 125
//!   registers, the protocol limit), so a typical device costs one or two round
//!   trips per poll;
//! - a device exception (for example an unmapped address) marks only that
//!   request's tags bad and keeps the connection;
//! - a transport failure or timeout marks every tag of the device bad and
//!   reconnects with exponential back-off.

mod config;
pub(crate) mod source;

pub use config::{DataType, ModbusDeviceConfig, RegisterConfig, RegisterKind};
