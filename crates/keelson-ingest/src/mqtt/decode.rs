//! Decoding MQTT payloads into values.
//!
//! Every function here is total: any byte string gives a value or a
//! [`PayloadError`], never a panic.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// Why a payload could not be decoded for a tag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// Not UTF-8 text.
    #[error("payload is not text")]
    NotText,
    /// Text that is neither a number nor a boolean.
    #[error("payload {0:?} is not a number or boolean")]
    NotANumber(String),
    /// Not a JSON document.
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    /// The JSON pointer leads nowhere.
    #[error("nothing at JSON pointer {0}")]
    Missing(String),
    /// The JSON pointer leads to something other than a number or boolean.
    #[error("value at {0} is not a number or boolean")]
    WrongJsonType(String),
    /// The timestamp is neither epoch milliseconds nor RFC 3339.
    #[error("timestamp at {0} is not epoch milliseconds or RFC 3339")]
    BadTimestamp(String),
    /// Not a Sparkplug B payload.
    #[error("payload is not Sparkplug B: {0}")]
    NotSparkplug(String),
    /// The Sparkplug payload has no metric of that name.
    #[error("no metric named {0:?}")]
    NoMetric(String),
    /// The metric is null or of a type without a numeric value.
    #[error("metric {0:?} has no numeric value")]
    NotNumericMetric(String),
    /// NaN or infinite.
    #[error("value is not a finite number")]
    NotFinite,
}

fn finite(v: f64) -> Result<f64, PayloadError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PayloadError::NotFinite)
    }
}

/// A plain payload: a number, `true`/`false` (also `on`/`off`), surrounded by
/// optional whitespace.
pub fn plain(payload: &[u8]) -> Result<f64, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText)?;
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" => return Ok(1.0),
        "false" | "off" => return Ok(0.0),
        _ => {}
    }
    text.parse::<f64>()
        .map_err(|_| PayloadError::NotANumber(text.chars().take(32).collect()))
        .and_then(finite)
}

/// Parses a JSON payload once, for every tag that reads from it.
pub fn parse_json(payload: &[u8]) -> Result<Value, PayloadError> {
    serde_json::from_slice(payload).map_err(|e| PayloadError::NotJson(e.to_string()))
}

/// The number or boolean at `pointer` in `doc`. Numeric strings are accepted,
/// because some gateways quote every value.
pub fn json_value(doc: &Value, pointer: &str) -> Result<f64, PayloadError> {
    match doc.pointer(pointer) {
        None => Err(PayloadError::Missing(pointer.to_owned())),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| PayloadError::WrongJsonType(pointer.to_owned()))
            .and_then(finite),
        Some(Value::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| PayloadError::WrongJsonType(pointer.to_owned()))
            .and_then(finite),
        Some(_) => Err(PayloadError::WrongJsonType(pointer.to_owned())),
    }
}

/// The timestamp at `pointer`: integer milliseconds since 1970 or an RFC 3339
/// string.
pub fn json_timestamp(doc: &Value, pointer: &str) -> Result<DateTime<Utc>, PayloadError> {
    let bad = || PayloadError::BadTimestamp(pointer.to_owned());
    match doc.pointer(pointer) {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(bad),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_payloads() {
        assert_eq!(plain(b" 42.5\n"), Ok(42.5));
        assert_eq!(plain(b"-3"), Ok(-3.0));
        assert_eq!(plain(b"true"), Ok(1.0));
        assert_eq!(plain(b"OFF"), Ok(0.0));
        assert!(matches!(plain(b"hello"), Err(PayloadError::NotANumber(_))));
        assert_eq!(plain(b"NaN"), Err(PayloadError::NotFinite));
        assert_eq!(plain(&[0xff, 0xfe]), Err(PayloadError::NotText));
    }

    #[test]
    fn json_payloads() {
        let doc = parse_json(br#"{"me":{"rpm":98.5,"run":true,"p":"4.2"},"ts":1700000000123,"t":"2024-01-02T03:04:05Z","x":[1]}"#).unwrap();
        assert_eq!(json_value(&doc, "/me/rpm"), Ok(98.5));
        assert_eq!(json_value(&doc, "/me/run"), Ok(1.0));
        assert_eq!(json_value(&doc, "/me/p"), Ok(4.2));
        assert_eq!(json_value(&doc, "/x/0"), Ok(1.0));
        assert!(matches!(
            json_value(&doc, "/x"),
            Err(PayloadError::WrongJsonType(_))
        ));
        assert!(matches!(
            json_value(&doc, "/nope"),
            Err(PayloadError::Missing(_))
        ));
        assert_eq!(
            json_timestamp(&doc, "/ts").unwrap().timestamp_millis(),
            1_700_000_000_123
        );
        assert_eq!(
            json_timestamp(&doc, "/t").unwrap().timestamp(),
            1_704_164_645
        );
        assert!(json_timestamp(&doc, "/me").is_err());
        assert!(parse_json(b"{not json").is_err());
    }

    proptest! {
        /// Arbitrary bytes never panic any decoder, and decoded values are
        /// finite.
        #[test]
        fn decoders_are_total(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = plain(&payload) {
                prop_assert!(v.is_finite());
            }
            if let Ok(doc) = parse_json(&payload) {
                if let Ok(v) = json_value(&doc, "/a") {
                    prop_assert!(v.is_finite());
                }
                let _ = json_timestamp(&doc, "/ts");
            }
            let _ = crate::mqtt::sparkplug::decode(&payload);
        }

        /// Numbers as text read back as themselves.
        #[test]
        fn plain_numbers_round_trip(v in -1e12f64..1e12) {
            prop_assert_eq!(plain(v.to_string().as_bytes()), Ok(v));
        }
    }
}
