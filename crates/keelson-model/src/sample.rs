//! Sensor samples: a tag's value at a moment, with its quality.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far a sample can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read from the device and decoded as configured.
    Good,
    /// A value exists but may be wrong (stale, out of range, substituted).
    Uncertain,
    /// No trustworthy value: the device refused, the reply did not decode.
    Bad,
}

impl Quality {
    /// The quality's stable numeric code, as stored on disk.
    pub fn code(self) -> u8 {
        match self {
            Quality::Good => 0,
            Quality::Uncertain => 1,
            Quality::Bad => 2,
        }
    }

    /// The quality for a stored code; unknown codes read as bad.
    pub fn from_code(code: u8) -> Quality {
        match code {
            0 => Quality::Good,
            1 => Quality::Uncertain,
            _ => Quality::Bad,
        }
    }

    /// The quality's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Uncertain => "uncertain",
            Quality::Bad => "bad",
        }
    }
}

/// One reading of one tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The tag's configured name, for example `me.rpm`.
    pub tag: String,
    /// When the value was read (the source's timestamp where it gives one).
    pub ts: DateTime<Utc>,
    /// The value in engineering units; `None` when the quality is bad.
    pub value: Option<f64>,
    /// How far the value can be trusted.
    pub quality: Quality,
    /// For a text tag (an ASCII string register, say), the text as read;
    /// `value` is then the number it spells, if it spells one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The latest value of a tag, as shown on the dashboard and by `GET /api/v1/tags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagValue {
    /// The tag's configured name.
    pub name: String,
    /// The latest value in engineering units, if any.
    pub value: Option<f64>,
    /// The engineering unit, for example `rpm` or `°C`.
    pub unit: String,
    /// The latest sample's quality.
    pub quality: Quality,
    /// When the latest sample was taken.
    pub ts: Option<DateTime<Utc>>,
    /// For a text tag, the latest text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
