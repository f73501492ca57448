//! The alarm state machine: tag values and clock ticks in, transitions out.
//!
//! Each rule has one alarm per kind (high-high, high, low, low-low, stale,
//! bad quality), and each alarm goes through the ISA-18.2 states:
//!
//! ```text
//! normal ──condition──► pending ──held for delay──► active, unacknowledged
//!   ▲                      │                          │ ack          │ condition gone
//!   └──condition gone──────┘                          ▼              ▼
//!   ◄──condition gone── active, acknowledged   returned, unacknowledged ──ack──► normal
//! ```
//!
//! - A limit condition starts when the value reaches the limit and ends only
//!   when the value is back past it by the deadband.
//! - Levels are separate alarms: a value above high-high has both the high
//!   and the high-high alarm active. High-high outranks high and low-low
//!   outranks low ([`AlarmKind::priority`]), which orders the alarm list and
//!   sets the severity of a fault made from the alarm.
//! - A bad-quality reading says nothing about the process, so it holds the
//!   limit alarms where they are and raises a bad-quality alarm instead
//!   (when the rule asks for it), after the same delay.
//! - A stale alarm raises when the tag's last good value is older than the
//!   stale limit (counted from the engine's start for a tag that never had
//!   one) and returns with the next good value.
//!
//! The engine does no I/O and reads no clock: every call takes the time, so
//! tests drive it step by step and the caller stores what it returns.

use super::config::{AlarmRule, AlarmsConfig};
use keelson_model::Quality;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// At or above the high-high limit.
    HighHigh,
    /// At or above the high limit.
    High,
    /// At or below the low limit.
    Low,
    /// At or below the low-low limit.
    LowLow,
    /// No good value for longer than the stale limit.
    Stale,
    /// The latest reading has bad quality.
    BadQuality,
}

impl AlarmKind {
    /// Every kind.
    pub const ALL: [AlarmKind; 6] = [
        AlarmKind::HighHigh,
        AlarmKind::High,
        AlarmKind::Low,
        AlarmKind::LowLow,
        AlarmKind::Stale,
        AlarmKind::BadQuality,
    ];

    /// The kind's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::HighHigh => "high_high",
            AlarmKind::High => "high",
            AlarmKind::Low => "low",
            AlarmKind::LowLow => "low_low",
            AlarmKind::Stale => "stale",
            AlarmKind::BadQuality => "bad_quality",
        }
    }

    /// How urgent the alarm is: 3 for high-high and low-low, 2 for high and
    /// low, 1 for stale and bad quality.
    pub fn priority(self) -> u8 {
        match self {
            AlarmKind::HighHigh | AlarmKind::LowLow => 3,
            AlarmKind::High | AlarmKind::Low => 2,
            AlarmKind::Stale | AlarmKind::BadQuality => 1,
        }
    }

    /// The configured limit of this kind in `rule`, if it has one.
    fn limit(self, rule: &AlarmRule) -> Option<f64> {
        match self {
            AlarmKind::HighHigh => rule.high_high,
            AlarmKind::High => rule.high,
            AlarmKind::Low => rule.low,
            AlarmKind::LowLow => rule.low_low,
            AlarmKind::Stale | AlarmKind::BadQuality => None,
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlarmKind {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlarmKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AlarmError::UnknownName(s.to_owned()))
    }
}

/// Where an alarm in the list stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// The condition holds and nobody has acknowledged it.
    ActiveUnacknowledged,
    /// The condition holds and somebody acknowledged it.
    ActiveAcknowledged,
    /// The condition is gone but nobody acknowledged the alarm yet.
    ReturnedUnacknowledged,
}

impl AlarmState {
    /// Every state.
    pub const ALL: [AlarmState; 3] = [
        AlarmState::ActiveUnacknowledged,
        AlarmState::ActiveAcknowledged,
        AlarmState::ReturnedUnacknowledged,
    ];

    /// The state's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::ActiveUnacknowledged => "active_unacknowledged",
            AlarmState::ActiveAcknowledged => "active_acknowledged",
            AlarmState::ReturnedUnacknowledged => "returned_unacknowledged",
        }
    }

    /// Whether the condition still holds.
    pub fn is_active(self) -> bool {
        !matches!(self, AlarmState::ReturnedUnacknowledged)
    }

    /// Whether somebody acknowledged it.
    pub fn is_acknowledged(self) -> bool {
        matches!(self, AlarmState::ActiveAcknowledged)
    }
}

impl FromStr for AlarmState {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlarmState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AlarmError::UnknownName(s.to_owned()))
    }
}

/// An alarm in the list: active, or returned and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// The rule's tag.
    pub tag: String,
    /// What it is about.
    pub kind: AlarmKind,
    /// Where it stands.
    pub state: AlarmState,
    /// The limit crossed (the stale limit in seconds for a stale alarm).
    pub limit: Option<f64>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// When it raised (ms since the epoch).
    pub raised_ms: i64,
    /// When its state last changed (ms since the epoch).
    pub changed_ms: i64,
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The condition held long enough: the alarm is active.
    Raised,
    /// Somebody acknowledged it.
    Acknowledged,
    /// The condition went away before anybody acknowledged it.
    Returned,
    /// The alarm left the list: it is normal again.
    Cleared,
}

impl EventKind {
    /// Every event kind.
    pub const ALL: [EventKind; 4] = [
        EventKind::Raised,
        EventKind::Acknowledged,
        EventKind::Returned,
        EventKind::Cleared,
    ];

    /// The event's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Raised => "raised",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Returned => "returned",
            EventKind::Cleared => "cleared",
        }
    }
}

impl FromStr for EventKind {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AlarmError::UnknownName(s.to_owned()))
    }
}

/// One change of one alarm, for the caller to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The rule's tag.
    pub tag: String,
    /// The alarm's kind.
    pub kind: AlarmKind,
    /// What happened.
    pub event: EventKind,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The tag's value at the time, if any.
    pub value: Option<f64>,
    /// Who acknowledged, for an acknowledgement.
    pub by: Option<String>,
    /// The alarm after the change; `None` once it is cleared.
    pub alarm: Option<Alarm>,
}

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// No such alarm is in the list.
    #[error("no {kind} alarm on `{tag}` is in the list")]
    NotInList {
        /// The tag asked for.
        tag: String,
        /// The kind asked for.
        kind: AlarmKind,
    },
    /// The alarm was acknowledged already.
    #[error("the {kind} alarm on `{tag}` is already acknowledged")]
    AlreadyAcknowledged {
        /// The tag asked for.
        tag: String,
        /// The kind asked for.
        kind: AlarmKind,
    },
    /// A stored name is not a kind, state or event this build knows.
    #[error("`{0}` is not a known alarm kind, state or event")]
    UnknownName(String),
}

#[derive(Debug, Clone, Default)]
struct Slot {
    alarm: Option<Alarm>,
    pending_since: Option<i64>,
}

#[derive(Debug, Clone)]
struct TagAlarms {
    rule: AlarmRule,
    stale_ms: Option<i64>,
    last_good_ms: i64,
    /// The latest reading: value and quality.
    input: Option<(Option<f64>, Quality)>,
    slots: BTreeMap<AlarmKind, Slot>,
}

/// The alarm engine for every configured rule.
#[derive(Debug, Clone)]
pub struct Engine {
    tags: BTreeMap<String, TagAlarms>,
}

impl Engine {
    /// An engine for `config` with every alarm normal, started at `now_ms`.
    pub fn new(config: &AlarmsConfig, now_ms: i64) -> Engine {
        let tags = config
            .rules
            .iter()
            .map(|rule| {
                let stale_ms = rule
                    .stale_limit(config.stale_after_secs)
                    .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX));
                let slots = AlarmKind::ALL
                    .into_iter()
                    .filter(|&kind| match kind {
                        AlarmKind::Stale => stale_ms.is_some(),
                        AlarmKind::BadQuality => rule.bad_quality,
                        _ => kind.limit(rule).is_some(),
                    })
                    .map(|kind| (kind, Slot::default()))
                    .collect();
                let alarms = TagAlarms {
                    rule: rule.clone(),
                    stale_ms,
                    last_good_ms: now_ms,
                    input: None,
                    slots,
                };
                (rule.tag.clone(), alarms)
            })
            .collect();
        Engine { tags }
    }

    /// Puts back alarms stored before a restart. Alarms whose rule or
    /// level is no longer configured cannot be evaluated or acknowledged
    /// any more; they come back as `Cleared` transitions at `now_ms` for
    /// the caller to store.
    pub fn restore(&mut self, alarms: Vec<Alarm>, now_ms: i64) -> Vec<Transition> {
        let mut gone = Vec::new();
        for alarm in alarms {
            match self
                .tags
                .get_mut(&alarm.tag)
                .and_then(|t| t.slots.get_mut(&alarm.kind))
            {
                Some(slot) => slot.alarm = Some(alarm),
                None => gone.push(Transition {
                    tag: alarm.tag,
                    kind: alarm.kind,
                    event: EventKind::Cleared,
                    at_ms: now_ms,
                    value: None,
                    by: None,
                    alarm: None,
                }),
            }
        }
        gone
    }

    /// Every alarm in the list, most urgent first, then oldest first.
    pub fn alarms(&self) -> Vec<Alarm> {
        let mut list: Vec<Alarm> = self
            .tags
            .values()
            .flat_map(|t| t.slots.values())
            .filter_map(|s| s.alarm.clone())
            .collect();
        list.sort_by(|a, b| {
            b.kind
                .priority()
                .cmp(&a.kind.priority())
                .then(a.raised_ms.cmp(&b.raised_ms))
        });
        list
    }

    /// Whether `tag` has a rule.
    pub fn has_rule(&self, tag: &str) -> bool {
        self.tags.contains_key(tag)
    }

    /// Takes a new reading of `tag` (taken at `ts_ms`) at time `now_ms`.
    /// Tags without a rule are ignored.
    pub fn update(
        &mut self,
        tag: &str,
        value: Option<f64>,
        quality: Quality,
        ts_ms: i64,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        if let Some(t) = self.tags.get_mut(tag) {
            if quality == Quality::Good {
                t.last_good_ms = t.last_good_ms.max(ts_ms);
            }
            t.input = Some((value, quality));
            evaluate(tag, t, now_ms, &mut out);
        }
        out
    }

    /// Lets time pass: delays run out and values go stale.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for (tag, t) in &mut self.tags {
            evaluate(tag, t, now_ms, &mut out);
        }
        out
    }

    /// Acknowledges an alarm in the list as `by`.
    ///
    /// An active alarm stays in the list, acknowledged; a returned one
    /// leaves it (an `Acknowledged` and a `Cleared` transition).
    pub fn acknowledge(
        &mut self,
        tag: &str,
        kind: AlarmKind,
        by: &str,
        now_ms: i64,
    ) -> Result<Vec<Transition>, AlarmError> {
        let not_in_list = || AlarmError::NotInList {
            tag: tag.to_owned(),
            kind,
        };
        let t = self.tags.get_mut(tag).ok_or_else(not_in_list)?;
        let value = t.input.and_then(|(v, _)| v);
        let slot = t.slots.get_mut(&kind).ok_or_else(not_in_list)?;
        let alarm = slot.alarm.as_mut().ok_or_else(not_in_list)?;
        let ack = |alarm: Option<Alarm>| Transition {
            tag: tag.to_owned(),
            kind,
            event: EventKind::Acknowledged,
            at_ms: now_ms,
            value,
            by: Some(by.to_owned()),
            alarm,
        };
        match alarm.state {
            AlarmState::ActiveAcknowledged => Err(AlarmError::AlreadyAcknowledged {
                tag: tag.to_owned(),
                kind,
            }),
            AlarmState::ActiveUnacknowledged => {
                alarm.state = AlarmState::ActiveAcknowledged;
                alarm.changed_ms = now_ms;
                Ok(vec![ack(Some(alarm.clone()))])
            }
            AlarmState::ReturnedUnacknowledged => {
                slot.alarm = None;
                let mut cleared = ack(None);
                cleared.event = EventKind::Cleared;
                cleared.by = None;
                Ok(vec![ack(None), cleared])
            }
        }
    }
}

/// Runs every alarm of one tag against its latest reading at `now_ms`.
fn evaluate(tag: &str, t: &mut TagAlarms, now_ms: i64, out: &mut Vec<Transition>) {
    let (value, quality) = match t.input {
        Some((v, q)) => (v, Some(q)),
        None => (None, None),
    };
    let delay_ms = i64::try_from(t.rule.delay_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    for (&kind, slot) in &mut t.slots {
        let active = slot.alarm.as_ref().is_some_and(|a| a.state.is_active());
        let (condition, delay, limit) = match kind {
            AlarmKind::Stale => {
                let stale_ms = t.stale_ms.unwrap_or(i64::MAX);
                let stale = now_ms.saturating_sub(t.last_good_ms) > stale_ms;
                (Some(stale), 0, t.stale_ms.map(|ms| ms as f64 / 1000.0))
            }
            AlarmKind::BadQuality => (quality.map(|q| q == Quality::Bad), delay_ms, None),
            _ => {
                let Some(limit) = kind.limit(&t.rule) else {
                    continue;
                };
                // A bad reading, or none yet, holds the alarm where it is.
                let reading = match quality {
                    Some(Quality::Bad) | None => None,
                    Some(_) => value,
                };
                let band = if active { t.rule.deadband } else { 0.0 };
                let holds = reading.map(|v| match kind {
                    AlarmKind::HighHigh | AlarmKind::High => v >= limit - band,
                    _ => v <= limit + band,
                });
                (holds, delay_ms, Some(limit))
            }
        };
        let Some(condition) = condition else {
            continue;
        };
        let transition = |event, alarm: Option<Alarm>| Transition {
            tag: tag.to_owned(),
            kind,
            event,
            at_ms: now_ms,
            value,
            by: None,
            alarm,
        };
        if condition {
            if active {
                continue;
            }
            let since = *slot.pending_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= delay {
                slot.pending_since = None;
                let alarm = Alarm {
                    tag: tag.to_owned(),
                    kind,
                    state: AlarmState::ActiveUnacknowledged,
                    limit,
                    value,
                    raised_ms: now_ms,
                    changed_ms: now_ms,
                };
                slot.alarm = Some(alarm.clone());
                out.push(transition(EventKind::Raised, Some(alarm)));
            }
        } else {
            slot.pending_since = None;
            let Some(alarm) = slot.alarm.as_mut() else {
                continue;
            };
            match alarm.state {
                AlarmState::ActiveUnacknowledged => {
                    alarm.state = AlarmState::ReturnedUnacknowledged;
                    alarm.changed_ms = now_ms;
                    let alarm = alarm.clone();
                    out.push(transition(EventKind::Returned, Some(alarm)));
                }
                AlarmState::ActiveAcknowledged => {
                    slot.alarm = None;
                    out.push(transition(EventKind::Cleared, None));
                }
                AlarmState::ReturnedUnacknowledged => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn rule() -> AlarmRule {
        AlarmRule {
            tag: "t".into(),
            high: Some(80.0),
            high_high: Some(90.0),
            low: Some(20.0),
            low_low: Some(10.0),
            deadband: 2.0,
            delay_secs: 0,
            stale_after_secs: None,
            bad_quality: true,
        }
    }

    fn engine(rule: AlarmRule, stale: Option<u64>) -> Engine {
        Engine::new(
            &AlarmsConfig {
                stale_after_secs: stale,
                rules: vec![rule],
            },
            0,
        )
    }

    fn good(e: &mut Engine, v: f64, now: i64) -> Vec<(AlarmKind, EventKind)> {
        events(e.update("t", Some(v), Quality::Good, now, now))
    }

    fn events(ts: Vec<Transition>) -> Vec<(AlarmKind, EventKind)> {
        ts.into_iter().map(|t| (t.kind, t.event)).collect()
    }

    fn state(e: &Engine, kind: AlarmKind) -> Option<AlarmState> {
        e.alarms()
            .into_iter()
            .find(|a| a.kind == kind)
            .map(|a| a.state)
    }

    #[test]
    fn raises_at_the_limit_and_returns_past_the_deadband() {
        let mut e = engine(rule(), None);
        assert!(good(&mut e, 79.9, S).is_empty());
        assert_eq!(
            good(&mut e, 80.0, 2 * S),
            [(AlarmKind::High, EventKind::Raised)]
        );
        // Inside the deadband the alarm holds.
        assert!(good(&mut e, 78.5, 3 * S).is_empty());
        assert_eq!(
            state(&e, AlarmKind::High),
            Some(AlarmState::ActiveUnacknowledged)
        );
        assert_eq!(
            good(&mut e, 77.9, 4 * S),
            [(AlarmKind::High, EventKind::Returned)]
        );
        assert_eq!(
            state(&e, AlarmKind::High),
            Some(AlarmState::ReturnedUnacknowledged)
        );

        // Low side, mirrored.
        assert_eq!(
            good(&mut e, 20.0, 5 * S),
            [(AlarmKind::Low, EventKind::Raised)]
        );
        assert!(good(&mut e, 21.9, 6 * S).is_empty());
        assert_eq!(
            good(&mut e, 22.1, 7 * S),
            [(AlarmKind::Low, EventKind::Returned)]
        );
    }

    #[test]
    fn delay_needs_the_condition_to_hold() {
        let mut e = engine(
            AlarmRule {
                delay_secs: 5,
                ..rule()
            },
            None,
        );
        assert!(good(&mut e, 85.0, 0).is_empty());
        assert!(events(e.tick(4 * S)).is_empty());
        // Back below the limit: the delay starts over.
        assert!(good(&mut e, 79.0, 4 * S).is_empty());
        assert!(good(&mut e, 85.0, 6 * S).is_empty());
        assert!(events(e.tick(10 * S)).is_empty());
        assert_eq!(
            events(e.tick(11 * S)),
            [(AlarmKind::High, EventKind::Raised)]
        );
        let a = &e.alarms()[0];
        assert_eq!(a.raised_ms, 11 * S);
        assert_eq!(a.value, Some(85.0));
        assert_eq!(a.limit, Some(80.0));
    }

    #[test]
    fn both_levels_raise_and_high_high_comes_first() {
        let mut e = engine(rule(), None);
        let raised = good(&mut e, 95.0, S);
        assert!(raised.contains(&(AlarmKind::High, EventKind::Raised)));
        assert!(raised.contains(&(AlarmKind::HighHigh, EventKind::Raised)));
        let list = e.alarms();
        assert_eq!(list[0].kind, AlarmKind::HighHigh);
        assert_eq!(list[1].kind, AlarmKind::High);
        // Down to 85: high-high returns, high stays.
        assert_eq!(
            good(&mut e, 85.0, 2 * S),
            [(AlarmKind::HighHigh, EventKind::Returned)]
        );
        assert_eq!(
            good(&mut e, 5.0, 3 * S),
            [
                (AlarmKind::High, EventKind::Returned),
                (AlarmKind::Low, EventKind::Raised),
                (AlarmKind::LowLow, EventKind::Raised),
            ]
        );
    }

    #[test]
    fn acknowledge_before_return_then_clear() {
        let mut e = engine(rule(), None);
        good(&mut e, 85.0, S);
        let acked = e
            .acknowledge("t", AlarmKind::High, "anna", 2 * S)
            .expect("ack");
        assert_eq!(acked.len(), 1);
        assert_eq!(acked[0].event, EventKind::Acknowledged);
        assert_eq!(acked[0].by.as_deref(), Some("anna"));
        assert_eq!(
            state(&e, AlarmKind::High),
            Some(AlarmState::ActiveAcknowledged)
        );
        assert!(matches!(
            e.acknowledge("t", AlarmKind::High, "anna", 3 * S),
            Err(AlarmError::AlreadyAcknowledged { .. })
        ));
        assert_eq!(
            good(&mut e, 70.0, 4 * S),
            [(AlarmKind::High, EventKind::Cleared)]
        );
        assert!(e.alarms().is_empty());
        assert!(matches!(
            e.acknowledge("t", AlarmKind::High, "anna", 5 * S),
            Err(AlarmError::NotInList { .. })
        ));
    }

    #[test]
    fn acknowledge_after_return_clears() {
        let mut e = engine(rule(), None);
        good(&mut e, 85.0, S);
        good(&mut e, 70.0, 2 * S);
        let t = e
            .acknowledge("t", AlarmKind::High, "bo", 3 * S)
            .expect("ack");
        assert_eq!(
            events(t),
            [
                (AlarmKind::High, EventKind::Acknowledged),
                (AlarmKind::High, EventKind::Cleared)
            ]
        );
        assert!(e.alarms().is_empty());
    }

    #[test]
    fn returned_alarm_raises_again_while_unacknowledged() {
        let mut e = engine(rule(), None);
        good(&mut e, 85.0, S);
        good(&mut e, 70.0, 2 * S);
        assert_eq!(
            good(&mut e, 81.0, 3 * S),
            [(AlarmKind::High, EventKind::Raised)]
        );
        assert_eq!(
            state(&e, AlarmKind::High),
            Some(AlarmState::ActiveUnacknowledged)
        );
    }

    #[test]
    fn stale_raises_without_good_values_and_returns_with_one() {
        let mut e = engine(rule(), Some(10));
        good(&mut e, 50.0, S);
        assert!(events(e.tick(11 * S)).is_empty());
        assert_eq!(
            events(e.tick(12 * S)),
            [(AlarmKind::Stale, EventKind::Raised)]
        );
        // A bad reading is not a good value: still stale, and bad quality.
        assert_eq!(
            events(e.update("t", None, Quality::Bad, 13 * S, 13 * S)),
            [(AlarmKind::BadQuality, EventKind::Raised)]
        );
        assert_eq!(
            good(&mut e, 50.0, 14 * S),
            [
                (AlarmKind::Stale, EventKind::Returned),
                (AlarmKind::BadQuality, EventKind::Returned)
            ]
        );
    }

    #[test]
    fn a_tag_that_never_reports_goes_stale() {
        let mut e = engine(
            AlarmRule {
                stale_after_secs: Some(5),
                ..rule()
            },
            None,
        );
        assert_eq!(
            events(e.tick(6 * S)),
            [(AlarmKind::Stale, EventKind::Raised)]
        );
    }

    #[test]
    fn bad_quality_holds_limit_alarms() {
        let mut e = engine(
            AlarmRule {
                bad_quality: false,
                ..rule()
            },
            None,
        );
        good(&mut e, 85.0, S);
        assert!(
            events(e.update("t", Some(50.0), Quality::Bad, 2 * S, 2 * S)).is_empty(),
            "a bad reading neither clears nor raises"
        );
        assert_eq!(
            state(&e, AlarmKind::High),
            Some(AlarmState::ActiveUnacknowledged)
        );
    }

    #[test]
    fn restore_keeps_alarms_and_drops_unconfigured_ones() {
        let mut e = engine(rule(), None);
        good(&mut e, 85.0, S);
        let mut stored = e.alarms();
        stored.push(Alarm {
            tag: "gone".into(),
            ..stored[0].clone()
        });
        let mut after = engine(rule(), None);
        let cleared = after.restore(stored, 5 * S);
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].tag, "gone");
        assert_eq!(cleared[0].event, EventKind::Cleared);
        assert_eq!(
            state(&after, AlarmKind::High),
            Some(AlarmState::ActiveUnacknowledged)
        );
        // No reading yet after the restart: nothing changes on a tick.
        assert!(after.tick(6 * S).is_empty());
        after
            .acknowledge("t", AlarmKind::High, "anna", 7 * S)
            .expect("ack");
    }

    #[test]
    fn names_round_trip() {
        for k in AlarmKind::ALL {
            assert_eq!(k.as_str().parse::<AlarmKind>(), Ok(k));
        }
        for s in AlarmState::ALL {
            assert_eq!(s.as_str().parse::<AlarmState>(), Ok(s));
        }
        for e in EventKind::ALL {
            assert_eq!(e.as_str().parse::<EventKind>(), Ok(e));
        }
        assert!("loud".parse::<AlarmKind>().is_err());
    }
}
