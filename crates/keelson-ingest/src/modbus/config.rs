//! Configuration of Modbus devices (TCP or RTU) and their registers.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

pub use super::decode::{DataType, DecodeError, WordOrder};
use super::decode::{DecodeError as TextError, decode_registers, decode_text};
use crate::ConfigError;

/// How the agent reaches a Modbus device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP to `address`.
    #[default]
    Tcp,
    /// Modbus RTU on the serial line `serial_port` (RS-485). Every device on
    /// the same port shares one request queue, because a serial bus carries one
    /// request at a time.
    Rtu,
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity (the Modbus specification's default).
    Even,
    /// Odd parity.
    Odd,
}

/// One Modbus device, as `[[ingest.modbus]]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDeviceConfig {
    /// A short name for the device, used in logs and metrics (for example
    /// `engine-room`).
    pub name: String,
    /// `tcp` (the default) or `rtu`.
    #[serde(default)]
    pub transport: Transport,
    /// TCP only: the device's `host:port`, for example `10.0.10.21:502`. Host
    /// names are resolved at each connection attempt.
    #[serde(default)]
    pub address: String,
    /// RTU only: the serial device, for example `/dev/ttyUSB0`.
    #[serde(default)]
    pub serial_port: String,
    /// RTU only: the line speed in bit/s.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// RTU only: `none`, `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// RTU only: 1 or 2 stop bits.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// The Modbus unit identifier (slave id); gateways and RS-485 buses use it
    /// to pick a device.
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    /// How often every register is read, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long to wait for a connection or a reply, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How many times a request that timed out is sent again before the
    /// connection is considered lost.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The largest run of unconfigured registers a combined read may bridge.
    /// 0 reads only touching registers together. If the device refuses a
    /// combined read with "illegal data address", its tags are read one by one.
    #[serde(default)]
    pub max_gap: u16,
    /// The most registers one read request may ask for (at most 125, the
    /// protocol limit; some devices need less).
    #[serde(default = "default_max_registers")]
    pub max_registers_per_request: u16,
    /// Read every tag with its own request, for devices that mishandle
    /// combined reads.
    #[serde(default)]
    pub one_request_per_tag: bool,
    /// The byte and word order of multi-register values on this device;
    /// a register's own `order` overrides it.
    #[serde(default)]
    pub order: WordOrder,
    /// The registers to read and the tags they feed.
    #[serde(default)]
    pub registers: Vec<RegisterConfig>,
}

impl Default for ModbusDeviceConfig {
    fn default() -> Self {
        ModbusDeviceConfig {
            name: String::new(),
            transport: Transport::Tcp,
            address: String::new(),
            serial_port: String::new(),
            baud_rate: default_baud_rate(),
            parity: Parity::None,
            stop_bits: default_stop_bits(),
            unit_id: default_unit_id(),
            poll_interval_ms: default_poll_interval_ms(),
            timeout_ms: default_timeout_ms(),
            retries: default_retries(),
            max_gap: 0,
            max_registers_per_request: default_max_registers(),
            one_request_per_tag: false,
            order: WordOrder::Abcd,
            registers: Vec::new(),
        }
    }
}

/// One register (or coil) and the tag it feeds, as `[[ingest.modbus.registers]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// The tag name samples are stored under, unique across all devices (for
    /// example `me.rpm`).
    pub tag: String,
    /// The zero-based protocol address of the (first) register or bit.
    pub address: u16,
    /// Which table to read: `holding`, `input`, `coil` or `discrete_input`.
    #[serde(default)]
    pub kind: RegisterKind,
    /// How to decode the value: `u16`, `i16`, `u32`, `i32`, `u64`, `i64`,
    /// `f32`, `f64`, `bool`, `bit` or `string`. Coils and discrete inputs are
    /// always `bool`.
    #[serde(default)]
    pub data_type: DataType,
    /// The byte and word order, overriding the device's `order`.
    #[serde(default)]
    pub order: Option<WordOrder>,
    /// For `bit`: which bit of the register, 0 (least significant) to 15.
    #[serde(default)]
    pub bit: u8,
    /// For `string`: how many registers the text occupies.
    #[serde(default)]
    pub length: u16,
    /// Multiplier from the decoded raw value to the engineering value.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Added after scaling: `value = raw * scale + offset`.
    #[serde(default)]
    pub offset: f64,
    /// The engineering unit shown with the value, for example `°C`.
    #[serde(default)]
    pub unit: String,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            tag: String::new(),
            address: 0,
            kind: RegisterKind::Holding,
            data_type: DataType::U16,
            order: None,
            bit: 0,
            length: 0,
            scale: 1.0,
            offset: 0.0,
            unit: String::new(),
        }
    }
}

/// A Modbus data table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    /// Holding registers, read with function 0x03.
    #[default]
    Holding,
    /// Input registers, read with function 0x04.
    Input,
    /// Coils, read with function 0x01.
    Coil,
    /// Discrete inputs, read with function 0x02.
    DiscreteInput,
}

impl RegisterKind {
    /// Whether this table holds single bits rather than 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::DiscreteInput)
    }

    /// The most addresses one read of this table may cover.
    pub fn protocol_limit(self) -> u16 {
        if self.is_bits() { 2000 } else { 125 }
    }
}

impl RegisterConfig {
    /// How many addresses this tag occupies.
    pub fn width(&self) -> u16 {
        if self.kind.is_bits() {
            1
        } else {
            self.data_type.width(self.length)
        }
    }

    /// Decodes this tag from `words` (starting at its address) in `order` and
    /// applies scale and offset.
    pub fn engineering_value(&self, words: &[u16], order: WordOrder) -> Result<f64, DecodeError> {
        let raw = decode_registers(
            words,
            self.data_type,
            self.order.unwrap_or(order),
            self.bit,
            self.length,
        )?;
        self.scaled(raw)
    }

    /// The text of a `string` register, `None` for every other type.
    pub fn text_value(&self, words: &[u16], order: WordOrder) -> Option<Result<String, TextError>> {
        (self.data_type == DataType::String).then(|| {
            let needed = usize::from(self.length);
            let words = words.get(..needed).ok_or(TextError::TooShort {
                needed,
                got: words.len(),
            })?;
            decode_text(words, self.order.unwrap_or(order))
        })
    }

    /// Applies scale and offset to a raw value.
    pub fn scaled(&self, raw: f64) -> Result<f64, DecodeError> {
        let value = raw * self.scale + self.offset;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(DecodeError::NotFinite)
        }
    }
}

impl ModbusDeviceConfig {
    /// The poll interval as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The connection and request timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks this device on its own; `path` is its key, for example
    /// `ingest.modbus[0]`. Uniqueness across devices is checked by the caller.
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{path}.name"),
                "must not be empty",
            ));
        }
        match self.transport {
            Transport::Tcp => {
                if let Err(message) = check_host_port(&self.address) {
                    return Err(ConfigError::new(format!("{path}.address"), message));
                }
            }
            Transport::Rtu => {
                if self.serial_port.trim().is_empty() {
                    return Err(ConfigError::new(
                        format!("{path}.serial_port"),
                        "an rtu device needs a serial port, for example /dev/ttyUSB0",
                    ));
                }
                if self.baud_rate == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.baud_rate"),
                        "must be greater than 0",
                    ));
                }
                if !matches!(self.stop_bits, 1 | 2) {
                    return Err(ConfigError::new(
                        format!("{path}.stop_bits"),
                        "must be 1 or 2",
                    ));
                }
            }
        }
        if self.max_registers_per_request == 0 || self.max_registers_per_request > 125 {
            return Err(ConfigError::new(
                format!("{path}.max_registers_per_request"),
                "must be between 1 and 125",
            ));
        }
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::new(
                format!("{path}.poll_interval_ms"),
                "must be greater than 0",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(
                format!("{path}.timeout_ms"),
                "must be greater than 0",
            ));
        }
        if self.registers.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.registers"),
                "must list at least one register",
            ));
        }
        for (index, register) in self.registers.iter().enumerate() {
            let register_path = format!("{path}.registers[{index}]");
            if register.tag.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("{register_path}.tag"),
                    "must not be empty",
                ));
            }
            if register.tag.trim() != register.tag {
                return Err(ConfigError::new(
                    format!("{register_path}.tag"),
                    "must not start or end with whitespace",
                ));
            }
            if !register.scale.is_finite() {
                return Err(ConfigError::new(
                    format!("{register_path}.scale"),
                    "must be a finite number",
                ));
            }
            if !register.offset.is_finite() {
                return Err(ConfigError::new(
                    format!("{register_path}.offset"),
                    "must be a finite number",
                ));
            }
            if register.kind.is_bits() && register.data_type != DataType::Bool {
                return Err(ConfigError::new(
                    format!("{register_path}.data_type"),
                    "coils and discrete inputs are single bits: use data_type = \"bool\"",
                ));
            }
            if register.data_type == DataType::Bit && register.bit > 15 {
                return Err(ConfigError::new(
                    format!("{register_path}.bit"),
                    "must be between 0 and 15",
                ));
            }
            if register.data_type == DataType::String
                && (register.length == 0 || register.length > 125)
            {
                return Err(ConfigError::new(
                    format!("{register_path}.length"),
                    "a string needs a length between 1 and 125 registers",
                ));
            }
            if !register.kind.is_bits() && register.width() > self.max_registers_per_request {
                return Err(ConfigError::new(
                    format!("{register_path}.data_type"),
                    "the value is wider than max_registers_per_request",
                ));
            }
            if u32::from(register.address) + u32::from(register.width()) > 0x1_0000 {
                return Err(ConfigError::new(
                    format!("{register_path}.address"),
                    "the value runs past the last register address (65535)",
                ));
            }
        }
        Ok(())
    }
}

/// Accepts `ip:port`, `[ipv6]:port` and `hostname:port` with a non-zero port.
fn check_host_port(address: &str) -> Result<(), String> {
    let invalid = || format!("`{address}` is not a host:port address with a non-zero port");
    if let Ok(socket_addr) = address.parse::<SocketAddr>() {
        return if socket_addr.port() == 0 {
            Err(invalid())
        } else {
            Ok(())
        };
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_ok || port == 0 {
        return Err(invalid());
    }
    Ok(())
}

fn default_baud_rate() -> u32 {
    9600
}

fn default_stop_bits() -> u8 {
    1
}

fn default_retries() -> u32 {
    2
}

fn default_max_registers() -> u16 {
    125
}

fn default_unit_id() -> u8 {
    1
}

fn default_poll_interval_ms() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    1000
}

fn default_scale() -> f64 {
    1.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn register(data_type: DataType, scale: f64, offset: f64) -> RegisterConfig {
        RegisterConfig {
            tag: "t".into(),
            data_type,
            scale,
            offset,
            ..RegisterConfig::default()
        }
    }

    #[test]
    fn applies_scale_then_offset() {
        let exhaust = register(DataType::U16, 0.1, 0.0);
        let v = exhaust.engineering_value(&[3512], WordOrder::Abcd).unwrap();
        assert!((v - 351.2).abs() < 1e-9, "{v}");

        // A signed temperature in tenths with a -40 offset.
        let temp = register(DataType::I16, 0.1, -40.0);
        let v = temp
            .engineering_value(&[(-125i16) as u16], WordOrder::Abcd)
            .unwrap();
        assert!((v - (-52.5)).abs() < 1e-9, "{v}");

        let identity = register(DataType::U16, 1.0, 0.0);
        assert_eq!(identity.engineering_value(&[42], WordOrder::Abcd), Ok(42.0));
        assert!(identity.engineering_value(&[], WordOrder::Abcd).is_err());
    }

    #[test]
    fn host_port_forms() {
        for ok in [
            "127.0.0.1:502",
            "[::1]:502",
            "plc-1.engine.local:1502",
            "gw:502",
        ] {
            assert!(check_host_port(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "502",
            "127.0.0.1",
            "127.0.0.1:0",
            "host:",
            ":502",
            "host:99999",
            "a b:502",
            "host:port",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }
}
