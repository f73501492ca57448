//! The part of the Sparkplug B payload schema that ingest reads.
//!
//! Sparkplug B payloads are protobuf messages (`org.eclipse.tahu.protobuf`).
//! The messages are declared here with prost's derive macros, field numbers
//! as in the Sparkplug B specification; fields ingest does not need (metadata,
//! properties, data sets, templates) are left out, and protobuf decoding skips
//! them. Declaring the schema in Rust keeps protoc off the build machine.

use chrono::{DateTime, TimeZone, Utc};

use super::decode::PayloadError;

/// A Sparkplug B payload (`NBIRTH`, `NDATA`, `DBIRTH`, `DDATA`, …).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Milliseconds since 1970 when the message was created.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics carried by the message.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// The sequence number (0–255).
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
}

/// One metric of a payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// The metric's name (may be omitted in DATA messages that use aliases).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The alias announced in the BIRTH message.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Milliseconds since 1970 when the value was taken.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// The Sparkplug data type (Int8 = 1 … Boolean = 11).
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// The value is null.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15")]
    pub value: Option<MetricValue>,
}

/// A metric's value.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    /// Int8/16/32 and UInt8/16/32.
    #[prost(uint32, tag = "10")]
    IntValue(u32),
    /// Int64, UInt64 and DateTime.
    #[prost(uint64, tag = "11")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "12")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "13")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    BooleanValue(bool),
    /// String and Text.
    #[prost(string, tag = "15")]
    StringValue(String),
}

/// Sparkplug data types whose integers are signed.
const INT8: u32 = 1;
const INT16: u32 = 2;
const INT32: u32 = 3;
const INT64: u32 = 4;

/// Decodes a payload.
pub fn decode(payload: &[u8]) -> Result<Payload, PayloadError> {
    <Payload as prost::Message>::decode(payload)
        .map_err(|e| PayloadError::NotSparkplug(e.to_string()))
}

/// The value and timestamp of the metric `name`: the metric's own timestamp,
/// else the payload's, else `None`.
pub fn metric_value(
    payload: &Payload,
    name: &str,
) -> Result<(f64, Option<DateTime<Utc>>), PayloadError> {
    let metric = payload
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(name))
        .ok_or_else(|| PayloadError::NoMetric(name.to_owned()))?;
    let not_numeric = || PayloadError::NotNumericMetric(name.to_owned());
    if metric.is_null == Some(true) {
        return Err(not_numeric());
    }
    let datatype = metric.datatype.unwrap_or(0);
    let value = match metric.value.as_ref().ok_or_else(not_numeric)? {
        // Signed types travel as two's complement in the unsigned fields.
        MetricValue::IntValue(v) => match datatype {
            INT8 => f64::from(*v as u8 as i8),
            INT16 => f64::from(*v as u16 as i16),
            INT32 => f64::from(*v as i32),
            _ => f64::from(*v),
        },
        MetricValue::LongValue(v) => {
            if datatype == INT64 {
                *v as i64 as f64
            } else {
                *v as f64
            }
        }
        MetricValue::FloatValue(v) => f64::from(*v),
        MetricValue::DoubleValue(v) => *v,
        MetricValue::BooleanValue(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        MetricValue::StringValue(s) => s.trim().parse::<f64>().map_err(|_| not_numeric())?,
    };
    if !value.is_finite() {
        return Err(PayloadError::NotFinite);
    }
    let ts = metric
        .timestamp
        .or(payload.timestamp)
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    Ok((value, ts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn metric(name: &str, datatype: u32, value: MetricValue) -> Metric {
        Metric {
            name: Some(name.to_owned()),
            alias: None,
            timestamp: None,
            datatype: Some(datatype),
            is_null: None,
            value: Some(value),
        }
    }

    #[test]
    fn reads_metrics_of_every_numeric_type() {
        let mut temp = metric("temp", 10, MetricValue::DoubleValue(81.5));
        temp.timestamp = Some(1_700_000_000_500);
        let payload = Payload {
            timestamp: Some(1_700_000_000_000),
            seq: Some(3),
            metrics: vec![
                temp,
                metric("neg", INT16, MetricValue::IntValue((-5i16) as u16 as u32)),
                metric("big", INT64, MetricValue::LongValue((-9i64) as u64)),
                metric("f", 9, MetricValue::FloatValue(1.5)),
                metric("run", 11, MetricValue::BooleanValue(true)),
                metric("txt", 12, MetricValue::StringValue("x".into())),
            ],
        };
        let bytes = payload.encode_to_vec();
        let decoded = decode(&bytes).unwrap();
        let (v, ts) = metric_value(&decoded, "temp").unwrap();
        assert_eq!(v, 81.5);
        assert_eq!(ts.unwrap().timestamp_millis(), 1_700_000_000_500);
        let (v, ts) = metric_value(&decoded, "neg").unwrap();
        assert_eq!(v, -5.0);
        assert_eq!(ts.unwrap().timestamp_millis(), 1_700_000_000_000);
        assert_eq!(metric_value(&decoded, "big").unwrap().0, -9.0);
        assert_eq!(metric_value(&decoded, "f").unwrap().0, 1.5);
        assert_eq!(metric_value(&decoded, "run").unwrap().0, 1.0);
        assert!(matches!(
            metric_value(&decoded, "txt"),
            Err(PayloadError::NotNumericMetric(_))
        ));
        assert!(matches!(
            metric_value(&decoded, "nope"),
            Err(PayloadError::NoMetric(_))
        ));
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
