//! Sensor ingest: polls devices, decodes their readings into [`Sample`]s and
//! hands them to storage and to the live view.
//!
//! Data flows one way:
//!
//! ```text
//! source task per device ──► bounded channel ──► batching writer ──► SampleSink (storage)
//!                                                      └──────────► LatestValues (live view)
//! ```
//!
//! Each protocol lives in its own folder with `config.rs`, `source.rs` and
//! `mod.rs`: Modbus TCP and RTU in [`modbus`], MQTT (plain, JSON and
//! Sparkplug B payloads) in [`mqtt`], OPC-UA (subscriptions and polling) in
//! [`opcua`]. Every source task feeds the same bounded
//! channel. Listeners (the UI's live view, the alarm engine in [`alarms`]) watch
//! [`LatestValues`]; a stale rule there marks tags that stop updating.
//!
//! Architecture invariant: this crate knows nothing about how samples are
//! stored. It writes through the [`SampleSink`] trait, so the store can change
//! (or be replaced by a test double) without touching ingest, and ingest never
//! waits on the satellite link.
//!
//! [`Sample`]: keelson_model::Sample

use std::{collections::HashMap, path::Path};

use serde::{Deserialize, Serialize};

pub mod alarms;
pub mod metrics;
pub mod modbus;
pub mod mqtt;
pub mod opcua;
pub mod pipeline;
mod ratelog;

pub use metrics::IngestMetrics;
pub use modbus::{
    DataType, ModbusDeviceConfig, Parity, RegisterConfig, RegisterKind, Transport, WordOrder,
};
pub use mqtt::{MqttBrokerConfig, MqttTagConfig, PayloadFormat, Qos};
pub use opcua::{OpcuaServerConfig, OpcuaTagConfig};
pub use pipeline::{IngestHandle, LatestValues, SampleSink, SinkError, start};

/// The `[ingest]` section of the agent's configuration.
///
/// ```toml
/// [[ingest.modbus]]
/// name = "engine-room"
/// address = "10.0.10.21:502"
///
/// [[ingest.modbus.registers]]
/// tag = "me.rpm"
/// address = 0
/// unit = "rpm"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// A tag whose last good value is older than this many milliseconds is
    /// shown as uncertain until it updates again; 0 turns the rule off.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    /// Modbus devices (TCP or RTU) to poll, each with its own registers.
    #[serde(default)]
    pub modbus: Vec<ModbusDeviceConfig>,
    /// MQTT brokers to subscribe to, each with its own tags.
    #[serde(default)]
    pub mqtt: Vec<MqttBrokerConfig>,
    /// OPC-UA servers to read, each with its own tags.
    #[serde(default)]
    pub opcua: Vec<OpcuaServerConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            stale_after_ms: default_stale_after_ms(),
            modbus: Vec::new(),
            mqtt: Vec::new(),
            opcua: Vec::new(),
        }
    }
}

fn default_stale_after_ms() -> u64 {
    10_000
}

impl IngestConfig {
    /// Checks what serde cannot: names present and unique across all devices,
    /// addresses parseable, intervals non-zero, scales finite.
    ///
    /// The error names the offending key, for example
    /// `ingest.modbus[0].registers[2].tag`, so an operator can find it in the file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut device_names: HashMap<&str, usize> = HashMap::new();
        // Tags are global names (storage and the UI key on them), so they must
        // be unique across every device, not just within one.
        let mut tags: HashMap<&str, String> = HashMap::new();
        for (index, device) in self.modbus.iter().enumerate() {
            let path = format!("ingest.modbus[{index}]");
            device.validate(&path)?;
            if let Some(first) = device_names.insert(device.name.as_str(), index) {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!(
                        "device name `{}` is already used by ingest.modbus[{first}]",
                        device.name
                    ),
                ));
            }
            for (register_index, register) in device.registers.iter().enumerate() {
                let tag_path = format!("{path}.registers[{register_index}].tag");
                if let Some(first) = tags.get(register.tag.as_str()) {
                    return Err(ConfigError::new(
                        tag_path,
                        format!("tag `{}` is already defined at {first}", register.tag),
                    ));
                }
                tags.insert(register.tag.as_str(), tag_path);
            }
        }
        for (index, broker) in self.mqtt.iter().enumerate() {
            let path = format!("ingest.mqtt[{index}]");
            broker.validate(&path)?;
            if let Some(first) = device_names.insert(broker.name.as_str(), index) {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!(
                        "source name `{}` is already used (source {first})",
                        broker.name
                    ),
                ));
            }
            for (tag_index, tag) in broker.tags.iter().enumerate() {
                let tag_path = format!("{path}.tags[{tag_index}].tag");
                if let Some(first) = tags.get(tag.tag.as_str()) {
                    return Err(ConfigError::new(
                        tag_path,
                        format!("tag `{}` is already defined at {first}", tag.tag),
                    ));
                }
                tags.insert(tag.tag.as_str(), tag_path);
            }
        }
        for (index, server) in self.opcua.iter().enumerate() {
            let path = format!("ingest.opcua[{index}]");
            server.validate(&path)?;
            if device_names.insert(server.name.as_str(), index).is_some() {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!(
                        "source name `{}` is already used by another source",
                        server.name
                    ),
                ));
            }
            for (tag_index, tag) in server.tags.iter().enumerate() {
                let tag_path = format!("{path}.tags[{tag_index}].tag");
                if let Some(first) = tags.get(tag.tag.as_str()) {
                    return Err(ConfigError::new(
                        tag_path,
                        format!("tag `{}` is already defined at {first}", tag.tag),
                    ));
                }
                tags.insert(tag.tag.as_str(), tag_path);
            }
        }
        Ok(())
    }

    /// Gives every OPC-UA server without a `pki_dir` the directory `dir`,
    /// so all of them share the agent's one certificate and trust store. The
    /// agent passes `opcua-pki` in its data directory.
    pub fn set_default_pki_dir(&mut self, dir: &Path) {
        for server in &mut self.opcua {
            if server.pki_dir.is_none() {
                server.pki_dir = Some(dir.to_path_buf());
            }
        }
    }

    /// Every configured tag with its engineering unit, in configuration order.
    pub fn tags(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let modbus = self.modbus.iter().flat_map(|device| {
            device
                .registers
                .iter()
                .map(|register| (register.tag.as_str(), register.unit.as_str()))
        });
        let mqtt = self.mqtt.iter().flat_map(|broker| {
            broker
                .tags
                .iter()
                .map(|tag| (tag.tag.as_str(), tag.unit.as_str()))
        });
        let opcua = self.opcua.iter().flat_map(|server| {
            server
                .tags
                .iter()
                .map(|tag| (tag.tag.as_str(), tag.unit.as_str()))
        });
        modbus.chain(mqtt).chain(opcua)
    }
}

/// A configuration value that cannot work, with the path of its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The key's path, for example `ingest.modbus[0].registers[2].tag`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error for the key at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The configuration failed validation.
    #[error("invalid ingest configuration: {0}")]
    Config(#[from] ConfigError),
    /// [`start`] was called outside a Tokio runtime, so there is nowhere to run
    /// the source and writer tasks.
    #[error("ingest must be started from within a Tokio runtime")]
    NoRuntime,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        ingest: IngestConfig,
    }

    const EXAMPLE: &str = r#"
        [[ingest.modbus]]
        name = "engine-room"
        address = "127.0.0.1:502"

        [[ingest.modbus.registers]]
        tag = "me.rpm"
        address = 0
        unit = "rpm"

        [[ingest.modbus.registers]]
        tag = "me.exhaust_temp"
        address = 1
        kind = "input"
        data_type = "i16"
        scale = 0.1
        offset = -1.5
        unit = "°C"

        [[ingest.modbus]]
        name = "ballast"
        address = "ballast-plc.local:1502"
        unit_id = 7
        poll_interval_ms = 500
        timeout_ms = 300

        [[ingest.modbus.registers]]
        tag = "ballast.tank1"
        address = 100
    "#;

    fn example() -> IngestConfig {
        toml::from_str::<File>(EXAMPLE).unwrap().ingest
    }

    #[test]
    fn parses_toml_with_defaults() {
        let config = example();
        assert_eq!(config.modbus.len(), 2);
        let engine = &config.modbus[0];
        assert_eq!(engine.unit_id, 1);
        assert_eq!(engine.poll_interval_ms, 1000);
        assert_eq!(engine.timeout_ms, 1000);
        let rpm = &engine.registers[0];
        assert_eq!(rpm.kind, RegisterKind::Holding);
        assert_eq!(rpm.data_type, DataType::U16);
        assert_eq!((rpm.scale, rpm.offset), (1.0, 0.0));
        let exhaust = &engine.registers[1];
        assert_eq!(exhaust.kind, RegisterKind::Input);
        assert_eq!(exhaust.data_type, DataType::I16);
        assert_eq!((exhaust.scale, exhaust.offset), (0.1, -1.5));
        assert_eq!(exhaust.unit, "°C");
        let ballast = &config.modbus[1];
        assert_eq!(ballast.unit_id, 7);
        assert_eq!(ballast.registers[0].unit, "");
        assert!(config.validate().is_ok());
        assert_eq!(
            config.tags().collect::<Vec<_>>(),
            vec![
                ("me.rpm", "rpm"),
                ("me.exhaust_temp", "°C"),
                ("ballast.tank1", "")
            ]
        );
    }

    #[test]
    fn rejects_unknown_keys() {
        let typo = EXAMPLE.replace("unit_id = 7", "unitid = 7");
        assert!(toml::from_str::<File>(&typo).is_err());
        let bad_kind = EXAMPLE.replace(r#"kind = "input""#, r#"kind = "coils""#);
        assert!(toml::from_str::<File>(&bad_kind).is_err());
    }

    #[test]
    fn empty_section_is_valid() {
        let config: IngestConfig = toml::from_str("").unwrap();
        assert!(config.modbus.is_empty());
        assert!(config.validate().is_ok());
    }

    fn error_path(edit: impl FnOnce(&mut IngestConfig)) -> String {
        let mut config = example();
        edit(&mut config);
        config.validate().unwrap_err().path
    }

    #[test]
    fn validation_errors_name_the_key() {
        assert_eq!(
            error_path(|c| c.modbus[1].registers[0].tag = "me.rpm".into()),
            "ingest.modbus[1].registers[0].tag"
        );
        assert_eq!(
            error_path(|c| c.modbus[0].registers[1].tag = "me.rpm".into()),
            "ingest.modbus[0].registers[1].tag"
        );
        assert_eq!(
            error_path(|c| c.modbus[0].registers[1].tag = String::new()),
            "ingest.modbus[0].registers[1].tag"
        );
        assert_eq!(
            error_path(|c| c.modbus[1].name = " ".into()),
            "ingest.modbus[1].name"
        );
        assert_eq!(
            error_path(|c| c.modbus[1].name = "engine-room".into()),
            "ingest.modbus[1].name"
        );
        assert_eq!(
            error_path(|c| c.modbus[0].poll_interval_ms = 0),
            "ingest.modbus[0].poll_interval_ms"
        );
        assert_eq!(
            error_path(|c| c.modbus[0].timeout_ms = 0),
            "ingest.modbus[0].timeout_ms"
        );
        assert_eq!(
            error_path(|c| c.modbus[1].address = "not an address".into()),
            "ingest.modbus[1].address"
        );
        assert_eq!(
            error_path(|c| c.modbus[0].registers[0].scale = f64::NAN),
            "ingest.modbus[0].registers[0].scale"
        );
        assert_eq!(
            error_path(|c| c.modbus[1].registers.clear()),
            "ingest.modbus[1].registers"
        );
    }

    const OPCUA_EXAMPLE: &str = r#"
        [[ingest.opcua]]
        name = "ams"
        endpoint_url = "opc.tcp://10.0.10.30:4840/"
        security_policy = "basic256sha256"
        security_mode = "sign_and_encrypt"
        username = "keelson"
        password = "secret"

        [[ingest.opcua.tags]]
        tag = "me.rpm"
        node_id = "ns=2;s=Engine.Rpm"
        sampling_interval_ms = 250
        deadband = 0.5
        unit = "rpm"

        [[ingest.opcua.tags]]
        tag = "me.running"
        node_id = "ns=2;i=1042"
        deadband = 2
        deadband_type = "percent"

        [[ingest.opcua]]
        name = "bridge"
        endpoint_url = "opc.tcp://bridge.local:4840"
        mode = "poll"
        poll_interval_ms = 2000

        [[ingest.opcua.tags]]
        tag = "nav.sog"
        node_id = "ns=1;s=SOG"
        scale = 0.514
    "#;

    fn opcua_example() -> IngestConfig {
        toml::from_str::<File>(OPCUA_EXAMPLE).unwrap().ingest
    }

    #[test]
    fn parses_opcua_servers_with_defaults() {
        use crate::opcua::{DeadbandType, ReadMode, SecurityMode, SecurityPolicy};
        let mut config = opcua_example();
        assert!(config.validate().is_ok());
        let ams = &config.opcua[0];
        assert_eq!(ams.security_policy, SecurityPolicy::Basic256Sha256);
        assert_eq!(ams.security_mode, SecurityMode::SignAndEncrypt);
        assert_eq!(ams.mode, ReadMode::Subscription);
        assert_eq!(ams.publishing_interval_ms, 1000);
        assert!(!ams.trust_server_certs);
        assert_eq!(ams.tags[0].sampling_interval_ms, Some(250));
        assert_eq!(ams.tags[0].deadband, Some(0.5));
        assert_eq!(ams.tags[0].deadband_type, DeadbandType::Absolute);
        assert_eq!(ams.tags[1].deadband_type, DeadbandType::Percent);
        let bridge = &config.opcua[1];
        assert_eq!(bridge.security_policy, SecurityPolicy::None);
        assert_eq!(bridge.mode, ReadMode::Poll);
        assert_eq!(bridge.username, None);
        assert_eq!(
            config.tags().collect::<Vec<_>>(),
            vec![("me.rpm", "rpm"), ("me.running", ""), ("nav.sog", "")]
        );
        // The OPC-UA spellings of the security settings are accepted too.
        let spelled = OPCUA_EXAMPLE
            .replace(r#""basic256sha256""#, r#""Basic256Sha256""#)
            .replace(r#""sign_and_encrypt""#, r#""SignAndEncrypt""#);
        assert_eq!(toml::from_str::<File>(&spelled).unwrap().ingest, config);
        config.set_default_pki_dir(Path::new("/var/lib/keelson/opcua-pki"));
        assert_eq!(
            config.opcua[0].pki_dir.as_deref(),
            Some(Path::new("/var/lib/keelson/opcua-pki"))
        );
    }

    #[test]
    fn opcua_errors_name_the_key() {
        let typo = OPCUA_EXAMPLE.replace("sampling_interval_ms", "sampling_ms");
        assert!(toml::from_str::<File>(&typo).is_err());
        let bad_policy = OPCUA_EXAMPLE.replace(r#""basic256sha256""#, r#""basic128rsa15""#);
        assert!(toml::from_str::<File>(&bad_policy).is_err());
        let path = |edit: fn(&mut IngestConfig)| {
            let mut config = opcua_example();
            edit(&mut config);
            config.validate().unwrap_err().path
        };
        assert_eq!(
            path(|c| c.opcua[0].endpoint_url = "http://10.0.10.30".into()),
            "ingest.opcua[0].endpoint_url"
        );
        assert_eq!(
            path(|c| c.opcua[0].security_mode = crate::opcua::SecurityMode::None),
            "ingest.opcua[0].security_mode"
        );
        assert_eq!(
            path(|c| c.opcua[1].security_mode = crate::opcua::SecurityMode::Sign),
            "ingest.opcua[1].security_mode"
        );
        assert_eq!(
            path(|c| c.opcua[0].password = None),
            "ingest.opcua[0].password"
        );
        assert_eq!(
            path(|c| c.opcua[0].tags[0].node_id = "Engine.Rpm".into()),
            "ingest.opcua[0].tags[0].node_id"
        );
        assert_eq!(
            path(|c| c.opcua[0].tags[1].deadband = Some(150.0)),
            "ingest.opcua[0].tags[1].deadband"
        );
        assert_eq!(
            path(|c| c.opcua[0].tags[0].deadband = Some(-1.0)),
            "ingest.opcua[0].tags[0].deadband"
        );
        assert_eq!(
            path(|c| c.opcua[1].poll_interval_ms = 0),
            "ingest.opcua[1].poll_interval_ms"
        );
        assert_eq!(
            path(|c| c.opcua[1].tags[0].tag = "me.rpm".into()),
            "ingest.opcua[1].tags[0].tag"
        );
        assert_eq!(
            path(|c| c.opcua[1].name = "ams".into()),
            "ingest.opcua[1].name"
        );
        assert_eq!(path(|c| c.opcua[1].tags.clear()), "ingest.opcua[1].tags");
    }

    #[test]
    fn duplicate_tag_message_points_at_the_first() {
        let mut config = example();
        config.modbus[1].registers[0].tag = "me.exhaust_temp".into();
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "ingest.modbus[1].registers[0].tag: tag `me.exhaust_temp` is already defined at \
             ingest.modbus[0].registers[1].tag"
        );
    }
}
