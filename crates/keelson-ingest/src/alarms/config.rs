//! The `[alarms]` section of the agent's configuration.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Alarm rules on ingested tags.
///
/// ```toml
/// [alarms]
/// stale_after_secs = 60
///
/// [[alarms.rules]]
/// tag = "me.lube_oil_pressure"
/// low = 3.0
/// low_low = 2.5
/// deadband = 0.1
/// delay_secs = 5
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// A rule's tag whose last good value is older than this many seconds
    /// raises a stale alarm, unless the rule sets its own limit; absent or
    /// 0 means no stale alarms by default.
    #[serde(default)]
    pub stale_after_secs: Option<u64>,
    /// One rule per tag.
    #[serde(default)]
    pub rules: Vec<AlarmRule>,
}

/// The alarm limits of one tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// The tag, as named in the `[ingest]` section.
    pub tag: String,
    /// A value at or above this raises a high alarm.
    #[serde(default)]
    pub high: Option<f64>,
    /// A value at or above this raises a high-high alarm, which outranks
    /// the high one.
    #[serde(default)]
    pub high_high: Option<f64>,
    /// A value at or below this raises a low alarm.
    #[serde(default)]
    pub low: Option<f64>,
    /// A value at or below this raises a low-low alarm, which outranks the
    /// low one.
    #[serde(default)]
    pub low_low: Option<f64>,
    /// How far (in the tag's unit) the value must go back past a limit
    /// before its alarm returns to normal, so a value hovering at the limit
    /// does not raise and clear over and over.
    #[serde(default)]
    pub deadband: f64,
    /// How many seconds a limit or bad-quality condition must hold before
    /// its alarm raises.
    #[serde(default)]
    pub delay_secs: u64,
    /// Seconds without a good value before a stale alarm raises; overrides
    /// `alarms.stale_after_secs`, and 0 turns stale alarms off for this tag.
    #[serde(default)]
    pub stale_after_secs: Option<u64>,
    /// Whether a bad-quality reading (the device refused, the value did not
    /// decode) raises a bad-quality alarm.
    #[serde(default = "default_true")]
    pub bad_quality: bool,
}

fn default_true() -> bool {
    true
}

impl AlarmRule {
    /// The stale limit in force for this rule, in seconds, if any.
    pub fn stale_limit(&self, global: Option<u64>) -> Option<u64> {
        self.stale_after_secs.or(global).filter(|&s| s > 0)
    }
}

impl AlarmsConfig {
    /// Checks what serde cannot: every rule names a known tag once, limits
    /// are finite and in order, and the deadband is not negative.
    ///
    /// `known_tags` are the tags ingest defines. Errors name the key, for
    /// example `alarms.rules[1].high`.
    pub fn validate<'a>(
        &self,
        known_tags: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let known: HashSet<&str> = known_tags.into_iter().collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let path = format!("alarms.rules[{index}]");
            if !known.contains(rule.tag.as_str()) {
                return Err(ConfigError::new(
                    format!("{path}.tag"),
                    format!("no ingest source defines the tag `{}`", rule.tag),
                ));
            }
            if let Some(first) = seen.insert(rule.tag.as_str(), index) {
                return Err(ConfigError::new(
                    format!("{path}.tag"),
                    format!(
                        "tag `{}` already has a rule at alarms.rules[{first}]; put its limits in one rule",
                        rule.tag
                    ),
                ));
            }
            let limits = [
                ("low_low", rule.low_low),
                ("low", rule.low),
                ("high", rule.high),
                ("high_high", rule.high_high),
            ];
            for (key, limit) in limits {
                if limit.is_some_and(|v| !v.is_finite()) {
                    return Err(ConfigError::new(
                        format!("{path}.{key}"),
                        "must be a finite number",
                    ));
                }
            }
            // Each limit must lie above every lower one, in the order
            // low-low, low, high, high-high, so the levels nest.
            let present: Vec<(&str, f64)> = limits
                .iter()
                .filter_map(|&(k, v)| v.map(|v| (k, v)))
                .collect();
            for pair in present.windows(2) {
                let ((lower_key, lower), (key, value)) = (pair[0], pair[1]);
                if value <= lower {
                    return Err(ConfigError::new(
                        format!("{path}.{key}"),
                        format!("must be above {lower_key} ({lower})"),
                    ));
                }
            }
            if !rule.deadband.is_finite() || rule.deadband < 0.0 {
                return Err(ConfigError::new(
                    format!("{path}.deadband"),
                    "must be a finite number, 0 or more",
                ));
            }
            if present.is_empty()
                && !rule.bad_quality
                && rule.stale_limit(self.stale_after_secs).is_none()
            {
                return Err(ConfigError::new(
                    format!("{path}.tag"),
                    "the rule raises nothing: give a limit, a stale limit or bad_quality = true",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(tag: &str) -> AlarmRule {
        AlarmRule {
            tag: tag.into(),
            high: None,
            high_high: None,
            low: None,
            low_low: None,
            deadband: 0.0,
            delay_secs: 0,
            stale_after_secs: None,
            bad_quality: true,
        }
    }

    #[test]
    fn validation_names_the_key() {
        let tags = ["a", "b"];
        let mut c = AlarmsConfig {
            stale_after_secs: None,
            rules: vec![rule("a"), rule("c")],
        };
        let e = c.validate(tags).expect_err("unknown tag");
        assert_eq!(e.path, "alarms.rules[1].tag");

        c.rules[1] = rule("a");
        let e = c.validate(tags).expect_err("twice");
        assert_eq!(e.path, "alarms.rules[1].tag");

        c.rules[1] = AlarmRule {
            high: Some(10.0),
            high_high: Some(9.0),
            ..rule("b")
        };
        let e = c.validate(tags).expect_err("order");
        assert_eq!(e.path, "alarms.rules[1].high_high");

        c.rules[1] = AlarmRule {
            low: Some(f64::NAN),
            ..rule("b")
        };
        assert_eq!(
            c.validate(tags).expect_err("nan").path,
            "alarms.rules[1].low"
        );

        c.rules[1] = AlarmRule {
            deadband: -1.0,
            ..rule("b")
        };
        assert_eq!(
            c.validate(tags).expect_err("deadband").path,
            "alarms.rules[1].deadband"
        );

        c.rules[1] = AlarmRule {
            bad_quality: false,
            ..rule("b")
        };
        assert!(c.validate(tags).is_err());
        c.stale_after_secs = Some(30);
        c.validate(tags).expect("stale alone is a rule");
    }
}
