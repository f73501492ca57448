//! From OPC-UA data values to samples.
//!
//! Every function here is total: whatever a server sends gives a value or a
//! reason, never a panic.

use ::opcua::types::{DataValue, DateTime, StatusCode, Variant};
use chrono::Utc;
use keelson_model::Quality;

/// Why a data value gives no number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The server reported a good or uncertain status but no value.
    #[error("the server sent no value")]
    NoValue,
    /// The value is of a type that is not a number, a boolean or numeric text.
    #[error("a value of type {0} is not a number")]
    Unsupported(String),
    /// The value is an array; a tag holds one number.
    #[error("an array of {0} is not a single number")]
    Array(String),
    /// The value is text that does not read as a number.
    #[error("text {0:?} is not a number")]
    NotANumber(String),
    /// The value, after scale and offset, is infinite or not a number.
    #[error("the value is not a finite number")]
    NotFinite,
}

/// What one data value says about a tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The engineering value; `None` when the quality is bad.
    pub value: Option<f64>,
    /// The quality from the status code, or bad when the value is unusable.
    pub quality: Quality,
    /// The source timestamp, else the server timestamp, when either is set.
    pub ts: Option<chrono::DateTime<Utc>>,
    /// Why the reading is bad, when it is.
    pub problem: Option<Problem>,
    /// For a String value, the text (trimmed); `value` is then the number
    /// it spells, if any.
    pub text: Option<String>,
}

/// Why a reading is bad.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The server reported a bad status for the value.
    Status(StatusCode),
    /// The value could not be turned into a number.
    Value(ValueError),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Status(status) => write!(f, "the server reports status {status}"),
            Problem::Value(e) => e.fmt(f),
        }
    }
}

/// The sample quality an OPC-UA status code stands for: its severity bits
/// say good, uncertain or bad.
pub fn quality(status: StatusCode) -> Quality {
    if status.is_good() {
        Quality::Good
    } else if status.is_uncertain() {
        Quality::Uncertain
    } else {
        Quality::Bad
    }
}

/// The number a variant holds: numbers as they are, booleans as 1 and 0,
/// text when it reads as a number (as some gateways report readings).
pub fn number(value: &Variant) -> Result<f64, ValueError> {
    if let Some(n) = value.as_f64() {
        return Ok(n);
    }
    match value {
        Variant::Empty => Err(ValueError::NoValue),
        Variant::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Variant::String(text) => {
            let text = text.as_ref().trim();
            text.parse::<f64>()
                .map_err(|_| ValueError::NotANumber(text.chars().take(40).collect()))
        }
        Variant::Array(array) => Err(ValueError::Array(array.value_type.to_string())),
        other => Err(ValueError::Unsupported(
            other
                .scalar_type_id()
                .map_or_else(|| "empty".to_owned(), |t| t.to_string()),
        )),
    }
}

/// Reads one data value as a tag with `scale` and `offset`.
pub fn reading(data: &DataValue, scale: f64, offset: f64) -> Reading {
    let status = data.status.unwrap_or(StatusCode::Good);
    let ts = timestamp(data.source_timestamp.as_ref())
        .or_else(|| timestamp(data.server_timestamp.as_ref()));
    let quality = quality(status);
    if quality == Quality::Bad {
        return Reading {
            value: None,
            quality,
            ts,
            problem: Some(Problem::Status(status)),
            text: None,
        };
    }
    let value = data
        .value
        .as_ref()
        .map_or(Err(ValueError::NoValue), number)
        .and_then(|raw| {
            let value = raw * scale + offset;
            if value.is_finite() {
                Ok(value)
            } else {
                Err(ValueError::NotFinite)
            }
        });
    // A String is a text tag (a mode, a state name) and good as text; the
    // number it may spell is its value.
    let text = match data.value.as_ref() {
        Some(Variant::String(text)) => Some(text.as_ref().trim().to_owned()),
        _ => None,
    };
    match (value, text) {
        (value, Some(text)) => Reading {
            value: value.ok(),
            quality,
            ts,
            problem: None,
            text: Some(text),
        },
        (Ok(value), None) => Reading {
            value: Some(value),
            quality,
            ts,
            problem: None,
            text: None,
        },
        (Err(e), None) => Reading {
            value: None,
            quality: Quality::Bad,
            ts,
            problem: Some(Problem::Value(e)),
            text: None,
        },
    }
}

/// An OPC-UA timestamp as UTC, or `None` when it is unset (OPC-UA's null
/// time is 1601-01-01, which no sensor reading carries).
fn timestamp(ts: Option<&DateTime>) -> Option<chrono::DateTime<Utc>> {
    let ts = ts?;
    if ts.is_null() {
        return None;
    }
    let ts = ts.as_chrono();
    (ts.timestamp() > 0).then_some(ts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ::opcua::types::UAString;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn numbers_of_every_type() {
        assert_eq!(number(&Variant::Double(2.5)), Ok(2.5));
        assert_eq!(number(&Variant::Float(-1.5)), Ok(-1.5));
        assert_eq!(number(&Variant::Int32(-7)), Ok(-7.0));
        assert_eq!(number(&Variant::UInt16(65535)), Ok(65535.0));
        assert_eq!(number(&Variant::Int64(1 << 40)), Ok((1u64 << 40) as f64));
        assert_eq!(number(&Variant::Byte(3)), Ok(3.0));
        assert_eq!(number(&Variant::Boolean(true)), Ok(1.0));
        assert_eq!(number(&Variant::Boolean(false)), Ok(0.0));
        assert_eq!(number(&Variant::String(UAString::from(" 42.5 "))), Ok(42.5));
        assert_eq!(
            number(&Variant::String(UAString::from("open"))),
            Err(ValueError::NotANumber("open".into()))
        );
        assert_eq!(number(&Variant::Empty), Err(ValueError::NoValue));
        assert!(matches!(
            number(&Variant::StatusCode(StatusCode::Good)),
            Err(ValueError::Unsupported(_))
        ));
        assert!(matches!(
            number(&Variant::from(vec![1.0f64, 2.0])),
            Err(ValueError::Array(_))
        ));
    }

    #[test]
    fn status_codes_map_to_quality() {
        assert_eq!(quality(StatusCode::Good), Quality::Good);
        assert_eq!(
            quality(StatusCode::UncertainLastUsableValue),
            Quality::Uncertain
        );
        assert_eq!(quality(StatusCode::BadSensorFailure), Quality::Bad);
        assert_eq!(quality(StatusCode::BadNodeIdUnknown), Quality::Bad);
    }

    #[test]
    fn readings_scale_and_keep_the_source_time() {
        let mut data = DataValue::new_now(Variant::UInt16(1000));
        let source = data.source_timestamp.unwrap().as_chrono();
        let r = reading(&data, 0.1, -5.0);
        assert_eq!(r.value, Some(95.0));
        assert_eq!(r.quality, Quality::Good);
        assert_eq!(r.ts, Some(source));
        assert_eq!(r.problem, None);

        data.status = Some(StatusCode::UncertainSensorNotAccurate);
        let r = reading(&data, 1.0, 0.0);
        assert_eq!((r.value, r.quality), (Some(1000.0), Quality::Uncertain));

        data.status = Some(StatusCode::BadSensorFailure);
        let r = reading(&data, 1.0, 0.0);
        assert_eq!((r.value, r.quality), (None, Quality::Bad));
        assert_eq!(
            r.problem,
            Some(Problem::Status(StatusCode::BadSensorFailure))
        );
        assert!(r.problem.unwrap().to_string().contains("BadSensorFailure"));
    }

    #[test]
    fn unusable_values_are_bad_with_a_reason() {
        let r = reading(&DataValue::new_now(Variant::Double(f64::MAX)), 10.0, 0.0);
        assert_eq!(r.quality, Quality::Bad);
        assert_eq!(r.problem, Some(Problem::Value(ValueError::NotFinite)));
        let r = reading(&DataValue::null(), 1.0, 0.0);
        assert_eq!(r.problem, Some(Problem::Value(ValueError::NoValue)));
        assert_eq!(r.ts, None);
    }

    proptest! {
        #[test]
        fn any_text_reads_as_text_with_the_number_it_spells(text in ".{0,64}") {
            let data = DataValue::new_now(Variant::String(UAString::from(text.as_str())));
            let r = reading(&data, 1.0, 0.0);
            prop_assert!(r.problem.is_none());
            prop_assert_eq!(r.quality, Quality::Good);
            prop_assert_eq!(r.text.as_deref(), Some(text.trim()));
            let spells = text.trim().parse::<f64>().is_ok_and(f64::is_finite);
            prop_assert_eq!(r.value.is_some(), spells);
        }

        #[test]
        fn any_status_gives_a_quality(bits in any::<u32>(), value in any::<f64>()) {
            let mut data = DataValue::new_now(Variant::Double(value));
            data.status = Some(StatusCode::from(bits));
            let r = reading(&data, 1.0, 0.0);
            prop_assert_eq!(r.value.is_some(), r.quality != Quality::Bad);
            prop_assert!(r.value.is_none_or(f64::is_finite));
        }
    }
}
