//! The shore's configuration file.

pub use keelson_config::{ConfigError, HttpConfig, StorageConfig};
use serde::Deserialize;
use std::path::Path;

/// The default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/keelson-shore.toml");

/// The whole shore configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShoreConfig {
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// Sync endpoint limits.
    #[serde(default)]
    pub sync: SyncConfig,
}

/// Sync endpoint limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// Largest clock difference accepted on signed requests, in seconds.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_request_bytes: default_max_request(),
            max_clock_skew_secs: default_skew(),
        }
    }
}

fn default_max_request() -> usize {
    1 << 20
}

fn default_skew() -> i64 {
    300
}

impl ShoreConfig {
    /// Parses configuration text and checks values serde cannot.
    pub fn parse(file: &str, text: &str) -> Result<ShoreConfig, ConfigError> {
        let c: ShoreConfig = keelson_config::parse(file, text)?;
        if c.sync.max_request_bytes < 64 * 1024 {
            return Err(keelson_config::invalid(
                file,
                text,
                "sync.max_request_bytes",
                "must be at least 65536 so one sync chunk fits",
            ));
        }
        if !(10..=86_400).contains(&c.sync.max_clock_skew_secs) {
            return Err(keelson_config::invalid(
                file,
                text,
                "sync.max_clock_skew_secs",
                "must be between 10 and 86400 seconds",
            ));
        }
        Ok(c)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ShoreConfig, ConfigError> {
        let (file, text) = keelson_config::read(path)?;
        Self::parse(&file, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = ShoreConfig::parse("default", DEFAULT_CONFIG).expect("default config");
        assert_eq!(c.http.listen.port(), 8090);
    }

    #[test]
    fn out_of_range_value_is_located() {
        let text = DEFAULT_CONFIG.replace("max_clock_skew_secs = 300", "max_clock_skew_secs = 1");
        let e = ShoreConfig::parse("shore.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "sync.max_clock_skew_secs");
        assert!(e.to_string().starts_with("shore.toml:"), "{e}");
        assert!(e.line > 1);
    }
}
