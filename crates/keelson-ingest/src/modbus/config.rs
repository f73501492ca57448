//! Configuration of Modbus TCP devices and their registers.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// One Modbus TCP device, as `[[ingest.modbus]]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDeviceConfig {
    /// A short name for the device, used in logs (for example `engine-room`).
    pub name: String,
    /// The device's `host:port`, for example `10.0.10.21:502`. Host names are
    /// resolved at each connection attempt.
    pub address: String,
    /// The Modbus unit identifier; gateways use it to pick a device behind them.
    #[serde(default = "default_unit_id")]
    pub unit_id: u8,
    /// How often every register is read, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long to wait for a connection or a reply before treating the device
    /// as unreachable, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The registers to read and the tags they feed.
    #[serde(default)]
    pub registers: Vec<RegisterConfig>,
}

/// One register and the tag it feeds, as `[[ingest.modbus.registers]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// The tag name samples are stored under, unique across all devices (for
    /// example `me.rpm`).
    pub tag: String,
    /// The register's zero-based protocol address.
    pub address: u16,
    /// Which register table to read.
    #[serde(default)]
    pub kind: RegisterKind,
    /// How to interpret the register's word.
    #[serde(default)]
    pub data_type: DataType,
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

/// A Modbus register table.
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
}

/// How a register's 16-bit word is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Unsigned 16-bit integer.
    #[default]
    U16,
    /// Signed 16-bit integer (two's complement).
    I16,
}

impl DataType {
    /// How many consecutive registers a value of this type occupies.
    pub fn width(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
        }
    }

    /// The raw value of `words` (which hold at least [`DataType::width`] words),
    /// or `None` if there are too few.
    pub fn decode(self, words: &[u16]) -> Option<f64> {
        let word = *words.first()?;
        Some(match self {
            DataType::U16 => f64::from(word),
            DataType::I16 => f64::from(word as i16),
        })
    }
}

impl RegisterConfig {
    /// Decodes this register from `words` and applies scale and offset.
    pub fn engineering_value(&self, words: &[u16]) -> Option<f64> {
        self.data_type
            .decode(words)
            .map(|raw| raw * self.scale + self.offset)
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
        if let Err(message) = check_host_port(&self.address) {
            return Err(ConfigError::new(format!("{path}.address"), message));
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
            if u32::from(register.address) + u32::from(register.data_type.width()) > 0x1_0000 {
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
            address: 0,
            kind: RegisterKind::Holding,
            data_type,
            scale,
            offset,
            unit: String::new(),
        }
    }

    #[test]
    fn decodes_u16_and_i16() {
        assert_eq!(DataType::U16.decode(&[0]), Some(0.0));
        assert_eq!(DataType::U16.decode(&[65535]), Some(65535.0));
        assert_eq!(DataType::I16.decode(&[65535]), Some(-1.0));
        assert_eq!(DataType::I16.decode(&[0x8000]), Some(-32768.0));
        assert_eq!(DataType::I16.decode(&[0x7fff]), Some(32767.0));
        assert_eq!(DataType::U16.decode(&[]), None);
        // Only the first word counts for 16-bit types.
        assert_eq!(DataType::U16.decode(&[7, 9]), Some(7.0));
    }

    #[test]
    fn applies_scale_then_offset() {
        let exhaust = register(DataType::U16, 0.1, 0.0);
        let v = exhaust.engineering_value(&[3512]).unwrap();
        assert!((v - 351.2).abs() < 1e-9, "{v}");

        // A signed temperature in tenths with a -40 offset.
        let temp = register(DataType::I16, 0.1, -40.0);
        let v = temp.engineering_value(&[(-125i16) as u16]).unwrap();
        assert!((v - (-52.5)).abs() < 1e-9, "{v}");

        let identity = register(DataType::U16, 1.0, 0.0);
        assert_eq!(identity.engineering_value(&[42]), Some(42.0));
        assert_eq!(identity.engineering_value(&[]), None);
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
