//! The shore's configuration file.

pub use keelson_config::{ConfigError, StorageConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default configuration, embedded in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/keelson-shore.toml");

/// The whole shore configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShoreConfig {
    /// The HTTP(S) listener.
    pub http: ShoreHttpConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// Sync endpoint limits.
    #[serde(default)]
    pub sync: SyncConfig,
}

/// The shore's `[http]` section: the ship's keys, and the certificate the
/// shore serves HTTPS with itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShoreHttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Mark the session cookie `Secure` (when users come in over HTTPS);
    /// implied when the shore serves HTTPS itself.
    #[serde(default)]
    pub secure_cookies: bool,
    /// PEM file of the certificate chain to serve HTTPS with, the shore's
    /// own certificate first; plain HTTP without it.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the private key of that certificate.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

impl ShoreHttpConfig {
    /// The certificate and key files, when the shore serves HTTPS.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((
            self.tls_cert_file.as_deref()?,
            self.tls_key_file.as_deref()?,
        ))
    }
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
        match (&c.http.tls_cert_file, &c.http.tls_key_file) {
            (Some(_), None) => {
                return Err(keelson_config::invalid(
                    file,
                    text,
                    "http.tls_cert_file",
                    "needs `http.tls_key_file`, the certificate's private key",
                ));
            }
            (None, Some(_)) => {
                return Err(keelson_config::invalid(
                    file,
                    text,
                    "http.tls_key_file",
                    "needs `http.tls_cert_file`, the certificate it belongs to",
                ));
            }
            _ => {}
        }
        // The files are read now, the way serving reads them, so a missing
        // or wrong certificate stops `check-config` and the start, not the
        // first vessel.
        if let Err(e) = crate::tls::server_config(&c.http) {
            return Err(keelson_config::invalid(file, text, e.key(), e.to_string()));
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

    /// The default file with the TLS keys switched on, naming `cert` and
    /// `key`.
    fn with_tls(cert: &Path, key: &Path) -> String {
        DEFAULT_CONFIG
            .replace(
                "# tls_cert_file = \"/etc/keelson/shore-cert.pem\"",
                &format!("tls_cert_file = {:?}", cert.display().to_string()),
            )
            .replace(
                "# tls_key_file = \"/etc/keelson/shore-key.pem\"",
                &format!("tls_key_file = {:?}", key.display().to_string()),
            )
    }

    fn line_of(text: &str, start: &str) -> usize {
        text.lines()
            .position(|l| l.starts_with(start))
            .expect("line")
            + 1
    }

    #[test]
    fn tls_files_are_checked_with_their_place() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write");
            path
        };
        let shore = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let cert = write("cert.pem", shore.cert.pem());
        let key = write("key.pem", shore.signing_key.serialize_pem());
        let other_key = write("other-key.pem", other.signing_key.serialize_pem());

        let c = ShoreConfig::parse("shore.toml", &with_tls(&cert, &key)).expect("valid TLS");
        assert_eq!(c.http.tls_files(), Some((cert.as_path(), key.as_path())));
        assert!(
            crate::tls::server_config(&c.http)
                .expect("usable")
                .is_some()
        );
        let plain = ShoreConfig::parse("shore.toml", DEFAULT_CONFIG).expect("default");
        assert!(
            crate::tls::server_config(&plain.http)
                .expect("plain")
                .is_none()
        );

        // A certificate without its key.
        let text = with_tls(&cert, &key).replace("tls_key_file", "# tls_key_file");
        let e = ShoreConfig::parse("shore.toml", &text).expect_err("no key");
        assert_eq!(e.key, "http.tls_cert_file");
        assert_eq!(e.line, line_of(&text, "tls_cert_file"));

        // A certificate file that is not there.
        let missing = dir.path().join("missing.pem");
        let text = with_tls(&missing, &key);
        let e = ShoreConfig::parse("shore.toml", &text).expect_err("missing file");
        assert_eq!(e.key, "http.tls_cert_file");
        assert_eq!(e.line, line_of(&text, "tls_cert_file"));
        assert!(e.message.contains("missing.pem"), "{e}");

        // A key file holding a certificate.
        let text = with_tls(&cert, &cert);
        let e = ShoreConfig::parse("shore.toml", &text).expect_err("no key in it");
        assert_eq!(e.key, "http.tls_key_file");
        assert_eq!(e.line, line_of(&text, "tls_key_file"));
        assert!(e.message.contains("no PEM private key"), "{e}");

        // Another certificate's key.
        let e = ShoreConfig::parse("shore.toml", &with_tls(&cert, &other_key))
            .expect_err("the wrong key");
        assert_eq!(e.key, "http.tls_key_file");
        assert!(e.message.contains("does not belong to"), "{e}");
        assert!(e.message.contains("other-key.pem"), "{e}");
    }
}
