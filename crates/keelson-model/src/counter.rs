//! Counters: running hours (or any other total that only grows) of a piece
//! of equipment.
//!
//! A counter starts from a starting total (zero for a new component, the
//! hours it already has for a replaced or second-hand one). Readings are
//! totals, recorded by hand or by the sensor rule, and never go backwards:
//! only the chief engineer's correction, with a reason, may set a total
//! below the current one. Readings and corrections are append-only lists,
//! so two sites that record at the same time both keep what they recorded,
//! and the current total is simply the latest of them by time.

use crate::ValidationError;
use crate::fault::check_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest counter name or unit, in characters.
pub const MAX_NAME: usize = 100;
/// Longest correction reason, in characters.
pub const MAX_REASON: usize = 2_000;
/// Largest total a counter may hold: a century of running hours, with room.
pub const MAX_TOTAL: f64 = 10_000_000.0;

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingSource {
    /// Read off the meter and typed in by a person.
    Manual,
    /// Accumulated by the edge agent from the counter's sensor rule.
    Sensor,
}

impl ReadingSource {
    /// The source's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingSource::Manual => "manual",
            ReadingSource::Sensor => "sensor",
        }
    }
}

impl fmt::Display for ReadingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReadingSource {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "manual" => Ok(ReadingSource::Manual),
            "sensor" => Ok(ReadingSource::Sensor),
            _ => Err(ValidationError::new("source", "must be manual or sensor")),
        }
    }
}

/// One reading: the counter's total at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Unique id of the entry.
    pub id: String,
    /// When the total was read.
    pub at: DateTime<Utc>,
    /// The total at that moment.
    pub value: f64,
    /// Typed in or accumulated from a sensor.
    pub source: ReadingSource,
    /// Who recorded it (the agent's own name for sensor readings).
    pub by: String,
}

/// The chief engineer's correction of a total, for example after a meter
/// was replaced or a reading was mistyped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// Unique id of the entry.
    pub id: String,
    /// When the correction was made.
    pub at: DateTime<Utc>,
    /// The corrected total; may be below the last reading.
    pub value: f64,
    /// Why the total was corrected.
    pub reason: String,
    /// Who corrected it.
    pub by: String,
}

/// "Running while `tag` > `threshold`": the edge agent counts the time the
/// tag's latest good value stays above the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorRule {
    /// The tag to watch, for example `me_rpm`.
    pub tag: String,
    /// The equipment runs while the tag's value is above this.
    pub threshold: f64,
}

/// A counter as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// Unique id of the counter (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// The equipment record it counts for.
    pub equipment_id: String,
    /// What it counts, for example "Running hours".
    pub name: String,
    /// The unit of its totals, for example "hours".
    pub unit: String,
    /// The total when the counter was created.
    pub start_total: f64,
    /// The sensor rule, if the agent counts from a tag.
    pub sensor: Option<SensorRule>,
    /// The readings, oldest first; never changed or removed.
    pub readings: Vec<Reading>,
    /// The corrections, oldest first; never changed or removed.
    pub corrections: Vec<Correction>,
    /// The current total: the latest reading or correction by time, or the
    /// starting total when there is none.
    pub total: f64,
    /// When the current total was read or corrected (the creation time when
    /// there is neither).
    pub total_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The current total of a counter and when it was set: the latest reading
/// or correction by time (a correction wins a tie, being the deliberate
/// word on that moment), or the starting total at creation.
pub fn current_total(
    start_total: f64,
    created_at: DateTime<Utc>,
    readings: &[Reading],
    corrections: &[Correction],
) -> (f64, DateTime<Utc>) {
    let mut best = (start_total, created_at, 0u8);
    for r in readings {
        if (r.at, 1) >= (best.1, best.2) {
            best = (r.value, r.at, 1);
        }
    }
    for c in corrections {
        if (c.at, 2) >= (best.1, best.2) {
            best = (c.value, c.at, 2);
        }
    }
    (best.0, best.1)
}

/// What a user supplies to create a counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCounter {
    /// The equipment record it counts for.
    pub equipment_id: String,
    /// What it counts; "Running hours" when empty.
    #[serde(default)]
    pub name: String,
    /// The unit; "hours" when empty.
    #[serde(default)]
    pub unit: String,
    /// The starting total (0 for a new component).
    #[serde(default)]
    pub start_total: f64,
    /// The sensor rule, if any.
    #[serde(default)]
    pub sensor: Option<SensorRule>,
}

impl NewCounter {
    /// Checks every field, fills in the default name and unit, and trims
    /// texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.equipment_id = check_text("equipment_id", &self.equipment_id, 1, 64)?;
        self.name = check_text("name", &self.name, 0, MAX_NAME)?;
        if self.name.is_empty() {
            "Running hours".clone_into(&mut self.name);
        }
        self.unit = check_text("unit", &self.unit, 0, MAX_NAME)?;
        if self.unit.is_empty() {
            "hours".clone_into(&mut self.unit);
        }
        validate_total("start_total", self.start_total)?;
        if let Some(rule) = self.sensor.take() {
            self.sensor = Some(rule.validated()?);
        }
        Ok(self)
    }
}

impl SensorRule {
    /// Checks the tag name and the threshold.
    pub fn validated(self) -> Result<Self, ValidationError> {
        let tags = crate::equipment::validate_tags(std::slice::from_ref(&self.tag))
            .map_err(|e| ValidationError::new("sensor.tag", e.reason))?;
        if !self.threshold.is_finite() {
            return Err(ValidationError::new(
                "sensor.threshold",
                "must be a finite number",
            ));
        }
        Ok(SensorRule {
            tag: tags.into_iter().next().unwrap_or_default(),
            threshold: self.threshold,
        })
    }
}

/// What a user supplies to record a reading by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReading {
    /// The total read off the meter.
    pub value: f64,
}

/// What the chief engineer supplies to correct a total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCorrection {
    /// The corrected total.
    pub value: f64,
    /// Why; required.
    pub reason: String,
}

impl NewCorrection {
    /// Checks the total and the reason, and trims the reason.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        validate_total("value", self.value)?;
        self.reason = check_text("reason", &self.reason, 1, MAX_REASON)?;
        Ok(self)
    }
}

/// Checks a total: finite, 0 to [`MAX_TOTAL`].
pub fn validate_total(field: &'static str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && (0.0..=MAX_TOTAL).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be a number from 0 to {MAX_TOTAL}"),
        ))
    }
}

/// Whether a reading of `value` may follow the current `total`: a reading
/// never goes backwards (a correction is the way to go back).
pub fn reading_allowed(total: f64, value: f64) -> bool {
    value >= total
}

/// Running time to add for one check of a sensor rule, in hours.
///
/// The agent checks the tag's latest value every few seconds. The time
/// since the previous check counts as running when the latest value is
/// good, above the threshold and no older than `max_age` (a stale value
/// says nothing about the last interval, so it counts as stopped). A clock
/// that went backwards adds nothing.
pub fn running_hours(
    previous_check: DateTime<Utc>,
    now: DateTime<Utc>,
    latest: Option<(f64, bool, DateTime<Utc>)>,
    threshold: f64,
    max_age: chrono::Duration,
) -> f64 {
    let Some((value, good, ts)) = latest else {
        return 0.0;
    };
    if !good || value <= threshold || now - ts > max_age || now <= previous_check {
        return 0.0;
    }
    (now - previous_check).num_milliseconds() as f64 / 3_600_000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn reading(at: i64, value: f64) -> Reading {
        Reading {
            id: format!("r{at}"),
            at: t(at),
            value,
            source: ReadingSource::Manual,
            by: "crew".into(),
        }
    }

    fn correction(at: i64, value: f64) -> Correction {
        Correction {
            id: format!("c{at}"),
            at: t(at),
            value,
            reason: "meter replaced".into(),
            by: "chief".into(),
        }
    }

    #[test]
    fn the_total_is_the_latest_reading_or_correction() {
        assert_eq!(current_total(120.0, t(0), &[], &[]), (120.0, t(0)));
        let readings = [reading(10, 130.0), reading(30, 150.0), reading(20, 140.0)];
        assert_eq!(current_total(120.0, t(0), &readings, &[]), (150.0, t(30)));
        // A correction after the last reading may go below it.
        let corrections = [correction(40, 90.0)];
        assert_eq!(
            current_total(120.0, t(0), &readings, &corrections),
            (90.0, t(40))
        );
        // A reading after the correction counts from the corrected total.
        let later = [reading(10, 130.0), reading(50, 95.0)];
        assert_eq!(
            current_total(120.0, t(0), &later, &corrections),
            (95.0, t(50))
        );
        // At the same moment the correction wins.
        let tie = [reading(40, 200.0)];
        assert_eq!(current_total(0.0, t(0), &tie, &corrections), (90.0, t(40)));
    }

    #[test]
    fn readings_never_go_backwards() {
        assert!(reading_allowed(100.0, 100.0));
        assert!(reading_allowed(100.0, 100.5));
        assert!(!reading_allowed(100.0, 99.9));
    }

    #[test]
    fn input_validation() {
        let new = NewCounter {
            equipment_id: "e-1".into(),
            name: " ".into(),
            unit: String::new(),
            start_total: 1200.0,
            sensor: None,
        }
        .validated()
        .unwrap();
        assert_eq!(
            (new.name.as_str(), new.unit.as_str()),
            ("Running hours", "hours")
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e9] {
            let c = NewCounter {
                start_total: bad,
                ..new.clone()
            };
            assert_eq!(c.validated().unwrap_err().field, "start_total");
            let c = NewCorrection {
                value: bad,
                reason: "x".into(),
            };
            assert_eq!(c.validated().unwrap_err().field, "value");
        }
        let c = NewCorrection {
            value: 1.0,
            reason: "  ".into(),
        };
        assert_eq!(c.validated().unwrap_err().field, "reason");
        let rule = |tag: &str, threshold| NewCounter {
            sensor: Some(SensorRule {
                tag: tag.into(),
                threshold,
            }),
            ..new.clone()
        };
        assert_eq!(
            rule("  ", 10.0).validated().unwrap_err().field,
            "sensor.tag"
        );
        assert_eq!(
            rule("me_rpm", f64::NAN).validated().unwrap_err().field,
            "sensor.threshold"
        );
        assert!(rule("me_rpm", 30.0).validated().is_ok());
    }

    #[test]
    fn running_time_counts_only_good_fresh_values_above_the_threshold() {
        let age = Duration::seconds(30);
        let running = Some((80.0, true, t(59)));
        assert_eq!(
            running_hours(t(0), t(60), running, 30.0, age),
            60.0 / 3600.0
        );
        // Below or at the threshold: stopped.
        assert_eq!(
            running_hours(t(0), t(60), Some((30.0, true, t(59))), 30.0, age),
            0.0
        );
        // Bad quality says nothing: stopped.
        assert_eq!(
            running_hours(t(0), t(60), Some((80.0, false, t(59))), 30.0, age),
            0.0
        );
        // Stale: the source has gone quiet.
        assert_eq!(
            running_hours(t(0), t(60), Some((80.0, true, t(10))), 30.0, age),
            0.0
        );
        // No value yet, or a clock that went backwards.
        assert_eq!(running_hours(t(0), t(60), None, 30.0, age), 0.0);
        assert_eq!(running_hours(t(60), t(0), running, 30.0, age), 0.0);
        // An hour of checks every 10 s adds up to one hour.
        let mut total = 0.0;
        for i in 0..360 {
            let now = t(10 * (i + 1));
            total += running_hours(t(10 * i), now, Some((80.0, true, now)), 30.0, age);
        }
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
}
