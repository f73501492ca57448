//! Configuration of OPC-UA servers and the tags read from them.

use std::{path::PathBuf, str::FromStr as _, time::Duration};

use ::opcua::types::NodeId;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// One OPC-UA server, as `[[ingest.opcua]]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpcuaServerConfig {
    /// A short name for the server, used in logs and metrics.
    pub name: String,
    /// The server's endpoint URL, for example `opc.tcp://10.0.10.30:4840/`.
    pub endpoint_url: String,
    /// `none` or `basic256sha256`.
    #[serde(default)]
    pub security_policy: SecurityPolicy,
    /// `none` (only with the `none` policy), `sign` or `sign_and_encrypt`.
    #[serde(default)]
    pub security_mode: SecurityMode,
    /// The user name to log in with; without it the session is anonymous.
    #[serde(default)]
    pub username: Option<String>,
    /// The password that goes with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Where the agent keeps its own OPC-UA certificate (`own/cert.der`), its
    /// private key (`private/private.pem`), the trusted server certificates
    /// (`trusted/`) and the ones it refused (`rejected/`). The agent fills in
    /// `opcua-pki` in its data directory when this is not set.
    #[serde(default)]
    pub pki_dir: Option<PathBuf>,
    /// Trust a server certificate the first time it is seen and store it in
    /// `trusted/`. Off by default: an unknown certificate lands in `rejected/`
    /// until fleet IT moves it to `trusted/`.
    #[serde(default)]
    pub trust_server_certs: bool,
    /// `subscription` (the server reports changes) or `poll` (the agent reads
    /// every tag each `poll_interval_ms`).
    #[serde(default)]
    pub mode: ReadMode,
    /// How often the server sends the changes it collected, in milliseconds
    /// (subscription mode).
    #[serde(default = "default_interval_ms")]
    pub publishing_interval_ms: u64,
    /// How often tags are read in poll mode, and tags the server would not
    /// monitor in subscription mode, in milliseconds.
    #[serde(default = "default_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long one request to the server may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The tags read from this server.
    #[serde(default)]
    pub tags: Vec<OpcuaTagConfig>,
}

/// One tag read from an OPC-UA server, as `[[ingest.opcua.tags]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpcuaTagConfig {
    /// The tag name samples are stored under, unique across all sources.
    pub tag: String,
    /// The variable's node id in OPC-UA text form, for example
    /// `ns=2;s=Engine.Rpm` or `ns=3;i=1042`.
    pub node_id: String,
    /// How often the server samples the value, in milliseconds (subscription
    /// mode). Without it the server samples at the publishing interval.
    #[serde(default)]
    pub sampling_interval_ms: Option<u64>,
    /// Report a change only when the value moved by more than this
    /// (subscription mode). Without it every change is reported.
    #[serde(default)]
    pub deadband: Option<f64>,
    /// `absolute` (the deadband is in the variable's own units) or `percent`
    /// (of the variable's EURange, which the server must provide).
    #[serde(default)]
    pub deadband_type: DeadbandType,
    /// Multiplier from the server's value to the engineering value.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Added after scaling.
    #[serde(default)]
    pub offset: f64,
    /// The engineering unit, for example `bar`.
    #[serde(default)]
    pub unit: String,
}

/// The OPC-UA security policy of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SecurityPolicy {
    /// No signatures and no encryption.
    #[default]
    #[serde(rename = "none", alias = "None")]
    None,
    /// RSA 2048 and SHA-256 signatures, AES-256 encryption.
    #[serde(rename = "basic256sha256", alias = "Basic256Sha256")]
    Basic256Sha256,
}

/// The OPC-UA message security mode of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SecurityMode {
    /// Messages are neither signed nor encrypted.
    #[default]
    #[serde(rename = "none", alias = "None")]
    None,
    /// Messages are signed.
    #[serde(rename = "sign", alias = "Sign")]
    Sign,
    /// Messages are signed and encrypted.
    #[serde(rename = "sign_and_encrypt", alias = "SignAndEncrypt")]
    SignAndEncrypt,
}

/// How values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// A subscription with one monitored item per tag. Tags the server will
    /// not monitor, and every tag when the server refuses subscriptions, are
    /// polled instead.
    #[default]
    Subscription,
    /// Every tag is read each `poll_interval_ms`.
    Poll,
}

/// How a deadband is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadbandType {
    /// In the variable's own units.
    #[default]
    Absolute,
    /// In percent of the variable's EURange.
    Percent,
}

impl OpcuaServerConfig {
    /// How often tags are polled.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// How often the subscription publishes.
    pub fn publishing_interval(&self) -> Duration {
        Duration::from_millis(self.publishing_interval_ms)
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks this server on its own; `path` is its key, for example
    /// `ingest.opcua[0]`.
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError::new(format!("{path}.{key}"), msg));
        if self.name.trim().is_empty() {
            return err("name", "must not be empty");
        }
        if let Err(message) = check_endpoint_url(&self.endpoint_url) {
            return err("endpoint_url", &message);
        }
        match (self.security_policy, self.security_mode) {
            (SecurityPolicy::None, SecurityMode::None) => {}
            (SecurityPolicy::None, _) => {
                return err(
                    "security_mode",
                    "signing and encryption need security_policy = \"basic256sha256\"",
                );
            }
            (SecurityPolicy::Basic256Sha256, SecurityMode::None) => {
                return err(
                    "security_mode",
                    "basic256sha256 needs \"sign\" or \"sign_and_encrypt\"",
                );
            }
            (SecurityPolicy::Basic256Sha256, _) => {}
        }
        match (&self.username, &self.password) {
            (Some(user), _) if user.trim().is_empty() => {
                return err("username", "must not be empty");
            }
            (Some(_), None) => return err("password", "a username needs a password"),
            (None, Some(_)) => return err("password", "a password needs a username"),
            _ => {}
        }
        if self.publishing_interval_ms == 0 {
            return err("publishing_interval_ms", "must be greater than 0");
        }
        if self.poll_interval_ms == 0 {
            return err("poll_interval_ms", "must be greater than 0");
        }
        if self.timeout_ms == 0 {
            return err("timeout_ms", "must be greater than 0");
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
            if NodeId::from_str(&tag.node_id).is_err() {
                return terr(
                    "node_id",
                    "is not an OPC-UA node id such as \"ns=2;s=Engine.Rpm\" or \"ns=3;i=1042\"",
                );
            }
            if tag.sampling_interval_ms == Some(0) {
                return terr("sampling_interval_ms", "must be greater than 0");
            }
            if let Some(deadband) = tag.deadband {
                if !deadband.is_finite() || deadband < 0.0 {
                    return terr("deadband", "must be a number of at least 0");
                }
                if tag.deadband_type == DeadbandType::Percent && deadband > 100.0 {
                    return terr("deadband", "a percent deadband must be at most 100");
                }
            }
            if !tag.scale.is_finite() {
                return terr("scale", "must be a finite number");
            }
            if !tag.offset.is_finite() {
                return terr("offset", "must be a finite number");
            }
        }
        Ok(())
    }
}

/// Checks that `url` is an `opc.tcp://host[:port][/path]` URL.
fn check_endpoint_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("opc.tcp://") else {
        return Err("must start with opc.tcp://, for example opc.tcp://10.0.10.30:4840/".into());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    // An IPv6 address is written in brackets, so its colons are not a port.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("has text after the IPv6 address".into()),
            },
            None => return Err("has an unclosed [ in the host".into()),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("names no host".into());
    }
    match port.map(|p| (p, p.parse::<u16>())) {
        Some((port, Ok(0) | Err(_))) => Err(format!("`{port}` is not a port number")),
        _ => Ok(()),
    }
}

fn default_interval_ms() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_scale() -> f64 {
    1.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        assert!(check_endpoint_url("opc.tcp://10.0.10.30:4840/").is_ok());
        assert!(check_endpoint_url("opc.tcp://plc.local:4840").is_ok());
        assert!(check_endpoint_url("opc.tcp://plc.local").is_ok());
        assert!(check_endpoint_url("opc.tcp://[::1]:4840/ua").is_ok());
        assert!(check_endpoint_url("http://plc.local:4840").is_err());
        assert!(check_endpoint_url("opc.tcp://:4840").is_err());
        assert!(check_endpoint_url("opc.tcp://plc:port").is_err());
        assert!(check_endpoint_url("opc.tcp://plc:0").is_err());
        assert!(check_endpoint_url("opc.tcp://[::1]/").is_ok());
        assert!(check_endpoint_url("opc.tcp://[::1/").is_err());
    }
}
