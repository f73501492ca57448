//! Test peers for Keelson: a simulated engine-room Modbus TCP device, an
//! OPC-UA server and a user-space satellite-link emulator.
//!
//! These are used by the end-to-end tests, the demo and the benchmarks. They are
//! real network peers bound to loopback (port 0 is fine), so code under test talks
//! to them exactly as it would talk to a device or a link on a ship.
//!
//! - [`modbus::EngineRoomSim`] serves holding and input registers whose values
//!   drift like a running main engine; the register map is
//!   [`modbus::ENGINE_ROOM_MAP`].
//! - [`modbus_device::ModbusTcpDevice`] and [`modbus_device::serve_rtu`] serve
//!   any register layout over TCP or RTU, with exceptions and restarts on demand.
//! - `opcua::OpcuaTestServer` (feature `opcua`) is an OPC-UA server with
//!   changing variables of several types, a bad-status node, None and
//!   Basic256Sha256 endpoints, a user with a password, and restarts.
//! - [`link::LinkEmulator`] is a TCP proxy that adds one-way latency, paces bytes
//!   to a link rate and can be switched down and up to cut connections.

pub mod link;
pub mod modbus;
pub mod modbus_device;
#[cfg(feature = "opcua")]
pub mod opcua;

pub use link::{LinkEmulator, LinkProfile};
pub use modbus::{ENGINE_ROOM_MAP, EngineRoomSim, SimRegister};
pub use modbus_device::{DeviceMemory, ModbusTcpDevice, Table, serve_rtu};
