//! The edge agent's configuration file.

pub use keelson_config::{ConfigError, HttpConfig, StorageConfig};
use keelson_ingest::IngestConfig;
use keelson_ingest::alarms::AlarmsConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/keelson-edge.toml");

/// The whole edge configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Which vessel this is.
    pub vessel: VesselConfig,
    /// The ship LAN listener.
    pub http: HttpConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// Disk budget, retention and compaction of sensor data.
    #[serde(default)]
    pub retention: crate::storage::RetentionConfig,
    /// Sync with the shore.
    pub sync: SyncConfig,
    /// Sensor sources.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Alarm rules on the ingested tags.
    #[serde(default)]
    pub alarms: AlarmsConfig,
    /// Running-hour counters fed by sensor rules.
    #[serde(default)]
    pub counters: CountersConfig,
    /// Photos and files attached to faults and work orders.
    #[serde(default)]
    pub attachments: AttachmentsConfig,
}

/// Photos and files attached to faults and work orders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// Largest file that may be attached, in bytes (1 KiB to 1 GiB). A
    /// phone's photo is a few megabytes; every attached byte also crosses
    /// the satellite link once.
    #[serde(default = "default_attachment_max_bytes")]
    pub max_bytes: u64,
}

fn default_attachment_max_bytes() -> u64 {
    10 * 1024 * 1024
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            max_bytes: default_attachment_max_bytes(),
        }
    }
}

/// Running-hour counters fed by sensor rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountersConfig {
    /// Minutes between two sensor readings of one counter (1 to 1440). The
    /// running time is added up every few seconds but written as a reading
    /// at most this often, so a counter's change log grows per interval,
    /// not per sample.
    #[serde(default = "default_sensor_reading_minutes")]
    pub sensor_reading_minutes: u64,
}

fn default_sensor_reading_minutes() -> u64 {
    15
}

impl Default for CountersConfig {
    fn default() -> Self {
        CountersConfig {
            sensor_reading_minutes: default_sensor_reading_minutes(),
        }
    }
}

/// Which vessel this is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VesselConfig {
    /// The vessel's id as registered at the shore.
    pub id: String,
    /// The vessel's name.
    pub name: String,
}

/// Sync with the shore.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Whether to sync at all.
    #[serde(default)]
    pub enabled: bool,
    /// The shore's base URL.
    pub shore_url: String,
    /// The vessel's private key file.
    pub key_file: PathBuf,
    /// Seconds between attempts.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Target chunk size before compression, in bytes.
    #[serde(default = "default_chunk")]
    pub chunk_bytes: usize,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Bytes sync may move over the link per UTC day, both ways; 0 means
    /// no limit.
    #[serde(default)]
    pub daily_budget_bytes: u64,
    /// Bytes one session may move; 0 means no limit.
    #[serde(default)]
    pub session_cap_bytes: u64,
    /// PEM file of the certificates trusted for the shore (a private CA or
    /// the shore's own self-signed certificate), instead of the public web
    /// roots.
    #[serde(default)]
    pub shore_ca_file: Option<PathBuf>,
    /// The SHA-256 fingerprint the shore's own certificate must have.
    #[serde(default)]
    pub shore_cert_sha256: Option<crate::shore_tls::CertFingerprint>,
}

fn default_interval() -> u64 {
    300
}

fn default_chunk() -> usize {
    32 * 1024
}

fn default_timeout() -> u64 {
    120
}

impl EdgeConfig {
    /// Parses configuration text and checks what serde cannot.
    pub fn parse(file: &str, text: &str) -> Result<EdgeConfig, ConfigError> {
        let c: EdgeConfig = keelson_config::parse(file, text)?;
        let invalid = |key: &str, msg: String| keelson_config::invalid(file, text, key, msg);
        if let Err(e) = keelson_model::validate_vessel_id(&c.vessel.id) {
            return Err(invalid("vessel.id", e.reason));
        }
        if c.vessel.name.trim().is_empty() {
            return Err(invalid("vessel.name", "must not be empty".into()));
        }
        if !(1..=1440).contains(&c.counters.sensor_reading_minutes) {
            return Err(invalid(
                "counters.sensor_reading_minutes",
                "must be 1 to 1440 minutes".into(),
            ));
        }
        if !(1024..=keelson_model::attachment::MAX_ATTACHMENT_BYTES)
            .contains(&c.attachments.max_bytes)
        {
            return Err(invalid(
                "attachments.max_bytes",
                format!(
                    "must be between 1024 and {}",
                    keelson_model::attachment::MAX_ATTACHMENT_BYTES
                ),
            ));
        }
        if !(c.sync.shore_url.starts_with("http://") || c.sync.shore_url.starts_with("https://")) {
            return Err(invalid(
                "sync.shore_url",
                "must start with http:// or https://".into(),
            ));
        }
        let trust_keys = [
            ("sync.shore_ca_file", c.sync.shore_ca_file.is_some()),
            ("sync.shore_cert_sha256", c.sync.shore_cert_sha256.is_some()),
        ];
        for (key, set) in trust_keys {
            if set && !c.sync.shore_url.starts_with("https://") {
                return Err(invalid(
                    key,
                    "is only used with an https:// sync.shore_url".into(),
                ));
            }
        }
        // The CA file is read now, the way the sync client reads it, so a
        // missing or wrong file stops `check-config` and the start, not a
        // sync session at sea.
        if let Err(e) = crate::shore_tls::client_config(&c.sync) {
            return Err(invalid("sync.shore_ca_file", e.to_string()));
        }
        if c.sync.interval_secs == 0 {
            return Err(invalid("sync.interval_secs", "must be at least 1".into()));
        }
        if !(1024..=keelson_sync::wire::MAX_CHUNK_BYTES).contains(&c.sync.chunk_bytes) {
            return Err(invalid(
                "sync.chunk_bytes",
                format!(
                    "must be between 1024 and {}",
                    keelson_sync::wire::MAX_CHUNK_BYTES
                ),
            ));
        }
        if c.sync.request_timeout_secs == 0 {
            return Err(invalid(
                "sync.request_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        if let Err(e) = c.ingest.validate() {
            return Err(invalid(&e.path, e.message));
        }
        if let Err(e) = c.alarms.validate(c.ingest.tags().map(|(tag, _)| tag)) {
            return Err(invalid(&e.path, e.message));
        }
        Ok(c)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let (file, text) = keelson_config::read(path)?;
        Self::parse(&file, &text)
    }
}

/// The configuration `keelson-edge init` writes: the default file with the
/// vessel, the shore and the key filled in and sync switched on, comments
/// kept. The result is checked before it is returned.
pub fn init_config(
    vessel_id: &str,
    name: &str,
    shore_url: &str,
    key_file: &Path,
) -> Result<String, ConfigError> {
    let mut doc: toml_edit::DocumentMut =
        DEFAULT_CONFIG
            .parse()
            .map_err(|e: toml_edit::TomlError| ConfigError {
                file: "default configuration".into(),
                line: 0,
                column: 0,
                key: String::new(),
                message: e.to_string(),
            })?;
    doc["vessel"]["id"] = toml_edit::value(vessel_id);
    doc["vessel"]["name"] = toml_edit::value(name);
    doc["sync"]["enabled"] = toml_edit::value(true);
    doc["sync"]["shore_url"] = toml_edit::value(shore_url);
    doc["sync"]["key_file"] = toml_edit::value(key_file.display().to_string());
    let text = doc.to_string();
    EdgeConfig::parse("the new configuration", &text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = EdgeConfig::parse("default", DEFAULT_CONFIG).expect("default config");
        assert_eq!(c.http.listen.port(), 8080);
        assert!(!c.sync.enabled);
    }

    /// The default file documents each ingest source with a commented-out
    /// example; with the comment marks taken off they must be valid.
    #[test]
    fn commented_ingest_examples_parse() {
        let is_toml = |line: &str| {
            line.starts_with('[')
                || line.split_once(" = ").is_some_and(|(key, _)| {
                    key.trim()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_')
                })
        };
        let text: String = DEFAULT_CONFIG
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if is_toml(rest) => rest,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let c = EdgeConfig::parse("examples", &text).expect("examples");
        assert_eq!(c.ingest.modbus.len(), 1);
        assert_eq!(c.ingest.mqtt.len(), 1);
        assert_eq!(c.ingest.opcua.len(), 1);
        assert_eq!(c.ingest.opcua[0].tags[0].deadband, Some(0.05));
        assert_eq!(c.alarms.stale_after_secs, Some(60));
        assert_eq!(c.alarms.rules.len(), 1);
        assert_eq!(c.alarms.rules[0].low_low, Some(2.5));
        assert_eq!(c.alarms.rules[0].delay_secs, 5);
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let text = DEFAULT_CONFIG.replace("interval_secs = 300", "interval_secs = \"often\"");
        let e = EdgeConfig::parse("/etc/keelson/edge.toml", &text).expect_err("must fail");
        let line = text
            .lines()
            .position(|l| l.starts_with("interval_secs"))
            .expect("line")
            + 1;
        assert_eq!(e.key, "sync.interval_secs");
        assert_eq!(e.line, line);
        assert!(
            e.to_string()
                .starts_with(&format!("/etc/keelson/edge.toml:{line}:")),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));

        let text = DEFAULT_CONFIG.replace("[storage]", "[storage]\ndata_directory = \"/tmp\"");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "storage.data_directory");
        assert!(e.message.contains("unknown field"), "{e}");

        let text = DEFAULT_CONFIG.replace("id = \"unnamed-vessel\"", "id = \"Bad Vessel\"");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "vessel.id");
        assert_eq!(
            e.line,
            text.lines()
                .position(|l| l.starts_with("id ="))
                .expect("line")
                + 1
        );
    }

    #[test]
    fn attachment_limits_are_checked_with_their_place() {
        let c = EdgeConfig::parse("default", DEFAULT_CONFIG).expect("default config");
        assert_eq!(c.attachments.max_bytes, 10 * 1024 * 1024);
        let text = DEFAULT_CONFIG.replace("max_bytes = 10485760", "max_bytes = 12");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "attachments.max_bytes");
        assert_eq!(
            e.line,
            text.lines()
                .position(|l| l.starts_with("max_bytes = 12"))
                .expect("line")
                + 1
        );
        let text = DEFAULT_CONFIG.replace("max_bytes = 10485760", "max_size = 1");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "attachments.max_size");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn alarm_rules_are_checked_with_their_place() {
        let text =
            format!("{DEFAULT_CONFIG}\n[[alarms.rules]]\ntag = \"no.such.tag\"\nhigh = 1.0\n");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert_eq!(e.key, "alarms.rules[0].tag");
        assert_eq!(e.line, text.lines().count() - 1);
        assert!(e.message.contains("no.such.tag"), "{e}");

        let text = format!("{DEFAULT_CONFIG}\n[[alarms.rules]]\ntag = \"x\"\nloud = true\n");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("must fail");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    /// The default file with `keys` added to `[sync]`.
    fn with_sync_keys(keys: &str) -> String {
        DEFAULT_CONFIG.replace(
            "session_cap_bytes = 0\n",
            &format!("session_cap_bytes = 0\n{keys}\n"),
        )
    }

    fn line_of(text: &str, start: &str) -> usize {
        text.lines()
            .position(|l| l.starts_with(start))
            .expect("line")
            + 1
    }

    #[test]
    fn shore_trust_keys_are_checked_with_their_place() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let shore = rcgen::generate_simple_self_signed(vec!["shore.example.com".to_owned()])
            .expect("a certificate");
        let ca = dir.path().join("shore-ca.pem");
        std::fs::write(&ca, shore.cert.pem()).expect("write");
        let pin = crate::shore_tls::CertFingerprint::of(shore.cert.der());
        let upper = pin.to_string().to_uppercase();
        let openssl_form = (0..32)
            .map(|i| &upper[2 * i..2 * i + 2])
            .collect::<Vec<_>>()
            .join(":");

        // Both keys, the pin as openssl prints it.
        let text = with_sync_keys(&format!(
            "shore_ca_file = {:?}\nshore_cert_sha256 = \"{openssl_form}\"",
            ca.display().to_string()
        ));
        let c = EdgeConfig::parse("edge.toml", &text).expect("valid trust keys");
        assert_eq!(c.sync.shore_ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(c.sync.shore_cert_sha256, Some(pin));

        // A pin that is not 64 hexadecimal digits.
        for bad in ["abc", &"g".repeat(64), &format!("{pin}00")] {
            let text = with_sync_keys(&format!("shore_cert_sha256 = \"{bad}\""));
            let e = EdgeConfig::parse("edge.toml", &text).expect_err("a bad pin");
            assert_eq!(e.key, "sync.shore_cert_sha256", "{e}");
            assert_eq!(e.line, line_of(&text, "shore_cert_sha256"), "{e}");
            assert!(e.column > 1, "{e}");
            assert!(e.message.contains("64 hexadecimal digits"), "{e}");
        }

        // A CA file that is not there, or holds no certificate.
        let missing = dir.path().join("missing.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, shore.signing_key.serialize_pem()).expect("write");
        for (path, why) in [
            (&missing, "cannot read"),
            (&key_file, "holds no PEM certificate"),
        ] {
            let text = with_sync_keys(&format!("shore_ca_file = {:?}", path.display().to_string()));
            let e = EdgeConfig::parse("/etc/keelson/edge.toml", &text).expect_err("a bad CA file");
            assert_eq!(e.key, "sync.shore_ca_file", "{e}");
            assert_eq!(e.line, line_of(&text, "shore_ca_file"), "{e}");
            assert!(e.message.contains(why), "{e}");
            assert!(e.message.contains(&path.display().to_string()), "{e}");
            assert!(e.to_string().starts_with("/etc/keelson/edge.toml:"), "{e}");
        }

        // Trust keys for a shore spoken to in plain HTTP protect nothing.
        let text = with_sync_keys(&format!("shore_cert_sha256 = \"{pin}\""))
            .replace("https://shore.example.com", "http://shore.example.com");
        let e = EdgeConfig::parse("edge.toml", &text).expect_err("plain HTTP");
        assert_eq!(e.key, "sync.shore_cert_sha256", "{e}");
        assert!(e.message.contains("https://"), "{e}");
    }
}
