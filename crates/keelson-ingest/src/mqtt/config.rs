//! Configuration of MQTT brokers and the tags read from them.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// One MQTT broker, as `[[ingest.mqtt]]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttBrokerConfig {
    /// A short name for the broker, used in logs and metrics.
    pub name: String,
    /// The broker's host name or IP address.
    pub host: String,
    /// The broker's port (1883 plain, 8883 with TLS).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The client id. It must be stable and unique on the broker, because the
    /// broker keeps the persistent session (and queued QoS 1 messages) under it.
    pub client_id: String,
    /// User name, if the broker asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password that goes with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Connect with TLS, verifying the broker against `ca_file`.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificate authorities trusted for the broker (TLS only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Keep-alive interval in seconds.
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// Keep the session (subscriptions and queued QoS 1 messages) on the broker
    /// while disconnected. Turn off only for brokers that cannot store sessions.
    #[serde(default = "default_true")]
    pub persistent_session: bool,
    /// The QoS of the subscriptions: 0 (at most once) or 1 (at least once).
    #[serde(default)]
    pub qos: Qos,
    /// The tags fed from this broker.
    #[serde(default)]
    pub tags: Vec<MqttTagConfig>,
}

/// One tag fed from MQTT, as `[[ingest.mqtt.tags]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTagConfig {
    /// The tag name samples are stored under, unique across all sources.
    pub tag: String,
    /// The topic filter to subscribe to; `+` and `#` wildcards are allowed,
    /// and every matching message feeds this tag.
    pub topic: String,
    /// How the payload is decoded: `plain`, `json` or `sparkplug`.
    #[serde(default)]
    pub format: PayloadFormat,
    /// For `json`: the JSON pointer (RFC 6901) of the value, for example
    /// `/engine/rpm`.
    #[serde(default)]
    pub pointer: Option<String>,
    /// For `json`: the JSON pointer of the source timestamp, either
    /// milliseconds since 1970 or an RFC 3339 string. Without it the time of
    /// arrival is used.
    #[serde(default)]
    pub timestamp_pointer: Option<String>,
    /// For `sparkplug`: the metric name in the NDATA/DDATA payload.
    #[serde(default)]
    pub metric: Option<String>,
    /// Multiplier from the decoded value to the engineering value.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
    /// The engineering unit, for example `bar`.
    #[serde(default)]
    pub unit: String,
}

/// How an MQTT payload is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// The payload is the value as text: a number, `true` or `false`.
    #[default]
    Plain,
    /// A JSON document; the value is at `pointer`.
    Json,
    /// A Sparkplug B payload (protobuf); the value is the metric `metric`.
    Sparkplug,
}

/// MQTT quality of service for subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Qos {
    /// At most once.
    AtMostOnce,
    /// At least once.
    #[default]
    AtLeastOnce,
}

impl TryFrom<u8> for Qos {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            other => Err(format!("qos must be 0 or 1, not {other}")),
        }
    }
}

impl From<Qos> for u8 {
    fn from(q: Qos) -> u8 {
        match q {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
        }
    }
}

impl MqttBrokerConfig {
    /// The keep-alive interval.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_s)
    }

    /// Checks this broker on its own; `path` is its key, for example
    /// `ingest.mqtt[0]`.
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError::new(format!("{path}.{key}"), msg));
        if self.name.trim().is_empty() {
            return err("name", "must not be empty");
        }
        if self.host.trim().is_empty() {
            return err("host", "must not be empty");
        }
        if self.port == 0 {
            return err("port", "must not be 0");
        }
        if self.client_id.trim().is_empty() {
            return err("client_id", "must not be empty");
        }
        if self.password.is_some() && self.username.is_none() {
            return err("password", "a password needs a username");
        }
        if self.keep_alive_s < 5 {
            return err("keep_alive_s", "must be at least 5 seconds");
        }
        if self.ca_file.is_some() && !self.tls {
            return err("ca_file", "is only used with tls = true");
        }
        if self.tags.is_empty() {
            return err("tags", "must list at least one tag");
        }
        for (index, tag) in self.tags.iter().enumerate() {
            let tag_path = format!("tags[{index}]");
            let terr = |key: &str, msg: &str| err(&format!("{tag_path}.{key}"), msg);
            if tag.tag.trim().is_empty() || tag.tag.trim() != tag.tag {
                return terr("tag", "must not be empty or start or end with whitespace");
            }
            if !rumqttc::valid_filter(&tag.topic) {
                return terr("topic", "is not a valid MQTT topic filter");
            }
            if !tag.scale.is_finite() {
                return terr("scale", "must be a finite number");
            }
            if !tag.offset.is_finite() {
                return terr("offset", "must be a finite number");
            }
            match tag.format {
                PayloadFormat::Json => match &tag.pointer {
                    Some(p) if p.is_empty() || p.starts_with('/') => {}
                    _ => {
                        return terr(
                            "pointer",
                            "a json tag needs a JSON pointer such as \"/engine/rpm\"",
                        );
                    }
                },
                PayloadFormat::Sparkplug => {
                    if tag.metric.as_deref().is_none_or(str::is_empty) {
                        return terr("metric", "a sparkplug tag needs a metric name");
                    }
                }
                PayloadFormat::Plain => {}
            }
            if let Some(p) = &tag.timestamp_pointer
                && (tag.format != PayloadFormat::Json || !p.starts_with('/'))
            {
                return terr(
                    "timestamp_pointer",
                    "is a JSON pointer such as \"/ts\" and needs format = \"json\"",
                );
            }
        }
        Ok(())
    }
}

fn default_port() -> u16 {
    1883
}

fn default_keep_alive_s() -> u64 {
    30
}

fn default_true() -> bool {
    true
}

fn default_scale() -> f64 {
    1.0
}
