//! TOML configuration loading for both binaries, with errors a person can
//! act on: every error names the file, the line and column, the key, and
//! what is wrong, in one line such as
//!
//! ```text
//! /etc/keelson/edge.toml:12:1: `sync.interval_sec`: unknown field `interval_sec`, expected one of ...
//! ```

pub mod cli;
pub mod pem;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The `[http]` section both programs share: where the UI and API listen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Mark the session cookie `Secure` (when users come in over HTTPS).
    #[serde(default)]
    pub secure_cookies: bool,
}

/// The `[storage]` section both programs share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the database; created when missing.
    pub data_dir: PathBuf,
}

/// A configuration error located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line; 0 when the error has no position (an unreadable file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key path, for example `ingest.modbus[0].registers[2].tag`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else if self.key.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: `{}`: {}",
                self.file, self.line, self.column, self.key, self.message
            )
        }
    }
}

/// Reads a configuration file; returns its name for messages and its text.
pub fn read(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    Ok((file, text))
}

/// Parses configuration text; `file` names it in errors.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = one_line(inner.message());
        // serde reports an unknown or missing field at its parent; the key
        // a person has to fix is the field itself.
        let field = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "missing field `"));
        let key = match (field, path.as_str()) {
            (Some(f), p) if p == f || p.ends_with(&format!(".{f}")) => p.to_owned(),
            (Some(f), "." | "") => f.to_owned(),
            (Some(f), p) => format!("{p}.{f}"),
            (None, ".") => String::new(),
            (None, p) => p.to_owned(),
        };
        let (line, column) = match inner.span() {
            Some(span) => line_col(text, span.start),
            None => locate(text, &key).unwrap_or((1, 1)),
        };
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            key,
            message,
        }
    })
}

/// Builds an error for a key that parsed but failed validation, locating
/// the key in `text` (at the first line when it cannot be found, for
/// example when the key was left out and a default applied).
pub fn invalid(file: &str, text: &str, key: &str, message: impl Into<String>) -> ConfigError {
    let (line, column) = locate(text, key).unwrap_or((1, 1));
    ConfigError {
        file: file.to_owned(),
        line,
        column,
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Finds the line and column of a key path such as `a.b[2].c` in TOML text.
pub fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml_edit::{Item, TableLike, Value};
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn TableLike = doc.as_table();
    let mut span = None;
    let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
    for (n, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let Some((k, item)) = table.get_key_value(name) else {
            break;
        };
        span = k.span().or(span);
        let next: Option<&dyn TableLike> = match (index, item) {
            (Some(i), Item::ArrayOfTables(a)) => a.get(i).map(|t| t as &dyn TableLike),
            (Some(i), Item::Value(Value::Array(a))) => {
                let v = a.get(i)?;
                span = v.span().or(span);
                v.as_inline_table().map(|t| t as &dyn TableLike)
            }
            (_, item) => item.as_table_like(),
        };
        if n + 1 < parts.len() {
            match next {
                Some(t) => table = t,
                None => break,
            }
        }
    }
    span.map(|s| line_col(text, s.start))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        http: Http,
        #[serde(default)]
        devices: Vec<Device>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Http {
        listen: std::net::SocketAddr,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Device {
        name: String,
        port: u16,
    }

    #[test]
    fn unknown_key_is_named_with_its_position() {
        let text = "[http]\nlisten = \"127.0.0.1:80\"\nlisten_port = 3\n";
        let e = parse::<Conf>("edge.toml", text).unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert_eq!(e.key, "http.listen_port");
        assert!(
            e.to_string()
                .starts_with("edge.toml:3:1: `http.listen_port`: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let text = "[http]\nlisten = \"127.0.0.1:80\"\n\n[[devices]]\nname = \"a\"\nport = 1\n\n[[devices]]\nname = \"b\"\nport = \"x\"\n";
        let e = parse::<Conf>("edge.toml", text).unwrap_err();
        assert_eq!(e.key, "devices[1].port", "{e}");
        assert_eq!(e.line, 10, "{e}");
    }

    #[test]
    fn bad_address_and_missing_field() {
        let e = parse::<Conf>("c.toml", "[http]\nlisten = \"nowhere\"\n").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("http.listen", 2), "{e}");
        let e = parse::<Conf>("c.toml", "[http]\n").unwrap_err();
        assert_eq!(e.key, "http.listen", "{e}");
        assert!(e.message.contains("missing field"), "{e}");
    }

    #[test]
    fn validation_errors_are_located() {
        let text = "[http]\nlisten = \"127.0.0.1:80\"\n[[devices]]\nname = \"a\"\nport = 0\n";
        let e = invalid("c.toml", text, "devices[0].port", "must not be 0");
        assert_eq!((e.line, e.column), (5, 1));
        assert_eq!(
            e.to_string(),
            "c.toml:5:1: `devices[0].port`: must not be 0"
        );
    }
}
