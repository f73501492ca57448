//! Maintenance plans: a job that comes back by the calendar, by running
//! hours, or by whichever comes first, and the pure scheduling function
//! that says when it is due.
//!
//! # Scheduling
//!
//! A plan was last done at a date and, for an hours plan, at a counter
//! total. The next due date is the last date plus `interval_days`; the next
//! due total is the last total plus `interval_hours`. A postponement made
//! after the last time the job was done replaces either or both (the
//! latest postponement wins); one made before belongs to an earlier round
//! and counts no longer.
//!
//! Against each due point the plan is:
//!
//! - `ok` before the tolerance window opens (due minus tolerance);
//! - `due` inside the window, from due minus tolerance to due plus
//!   tolerance (both ends included);
//! - `overdue` after due plus tolerance.
//!
//! With both intervals the plan takes the worse of the two states
//! (whichever comes first). The state is computed from the counter's
//! current total, so a correction that moves the total back moves the
//! state back too.

use crate::ValidationError;
use crate::counter::validate_total;
use crate::fault::check_text;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest instructions or reason, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Longest calendar interval or tolerance: ten years.
pub const MAX_DAYS: u32 = 3_660;

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Not yet in its tolerance window.
    Ok,
    /// Inside the tolerance window around the due point.
    Due,
    /// Past the due point and its tolerance.
    Overdue,
}

impl PlanState {
    /// Every state, best first.
    pub const ALL: [PlanState; 3] = [PlanState::Ok, PlanState::Due, PlanState::Overdue];

    /// The state's name as used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Ok => "ok",
            PlanState::Due => "due",
            PlanState::Overdue => "overdue",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            PlanState::Ok => "OK",
            PlanState::Due => "Due",
            PlanState::Overdue => "Overdue",
        }
    }
}

impl fmt::Display for PlanState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlanState {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlanState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ValidationError::new("state", "must be ok, due or overdue"))
    }
}

/// The chief engineer's postponement of a plan's next due point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postponement {
    /// Unique id of the entry.
    pub id: String,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The new due date, if the calendar due point moves.
    pub until_date: Option<DateTime<Utc>>,
    /// The new due total, if the hours due point moves.
    pub until_hours: Option<f64>,
    /// Why.
    pub reason: String,
    /// Who postponed it.
    pub by: String,
}

/// A maintenance plan as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Unique id of the plan (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// The equipment record it maintains.
    pub equipment_id: String,
    /// One line saying what is to be done.
    pub title: String,
    /// How to do it; may be empty.
    pub instructions: String,
    /// Days between jobs, if the plan runs by the calendar.
    pub interval_days: Option<u32>,
    /// Hours between jobs, if the plan runs by a counter.
    pub interval_hours: Option<f64>,
    /// The counter an hours plan follows.
    pub counter_id: Option<String>,
    /// Days either side of the due date that count as due.
    pub tolerance_days: u32,
    /// Hours either side of the due total that count as due.
    pub tolerance_hours: f64,
    /// When the job was last done (or the plan's starting point).
    pub last_done_at: DateTime<Utc>,
    /// The counter's total when the job was last done.
    pub last_done_hours: Option<f64>,
    /// The postponements, oldest first; never changed or removed.
    pub postponements: Vec<Postponement>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// When a plan is next due and how it stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The calendar due point, for a calendar plan.
    pub due_at: Option<DateTime<Utc>>,
    /// The counter total due point, for an hours plan.
    pub due_hours: Option<f64>,
    /// The counter's current total, for an hours plan whose counter is known.
    pub hours_now: Option<f64>,
    /// The worse of the calendar and the hours states.
    pub state: PlanState,
}

/// Computes a plan's next due points and its state at `now`, given its
/// counter's current total (`None` when it has no counter or the counter
/// is unknown, in which case the hours interval cannot fall due).
pub fn schedule(plan: &Plan, counter_total: Option<f64>, now: DateTime<Utc>) -> Schedule {
    // Only postponements of the current round count: one made before the
    // job was last done belonged to the round that job closed.
    let current: Vec<&Postponement> = plan
        .postponements
        .iter()
        .filter(|p| p.at > plan.last_done_at)
        .collect();
    let latest_date = current
        .iter()
        .filter(|p| p.until_date.is_some())
        .max_by_key(|p| (p.at, p.id.clone()))
        .and_then(|p| p.until_date);
    let latest_hours = current
        .iter()
        .filter(|p| p.until_hours.is_some())
        .max_by_key(|p| (p.at, p.id.clone()))
        .and_then(|p| p.until_hours);

    let due_at = plan
        .interval_days
        .map(|days| latest_date.unwrap_or(plan.last_done_at + Duration::days(i64::from(days))));
    let due_hours = plan
        .interval_hours
        .map(|hours| latest_hours.unwrap_or(plan.last_done_hours.unwrap_or(0.0) + hours));

    let tol_days = Duration::days(i64::from(plan.tolerance_days));
    let by_date = due_at.map_or(PlanState::Ok, |due| {
        if now > due + tol_days {
            PlanState::Overdue
        } else if now >= due - tol_days {
            PlanState::Due
        } else {
            PlanState::Ok
        }
    });
    let hours_now = counter_total.filter(|_| plan.interval_hours.is_some());
    let by_hours = match (due_hours, hours_now) {
        (Some(due), Some(total)) => {
            if total > due + plan.tolerance_hours {
                PlanState::Overdue
            } else if total >= due - plan.tolerance_hours {
                PlanState::Due
            } else {
                PlanState::Ok
            }
        }
        _ => PlanState::Ok,
    };
    Schedule {
        due_at,
        due_hours,
        hours_now,
        state: by_date.max(by_hours),
    }
}

/// What a user supplies to create a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// The equipment record it maintains.
    pub equipment_id: String,
    /// One line saying what is to be done.
    pub title: String,
    /// How to do it.
    #[serde(default)]
    pub instructions: String,
    /// Days between jobs, if by the calendar.
    #[serde(default)]
    pub interval_days: Option<u32>,
    /// Hours between jobs, if by a counter.
    #[serde(default)]
    pub interval_hours: Option<f64>,
    /// The counter an hours plan follows.
    #[serde(default)]
    pub counter_id: Option<String>,
    /// Days either side of the due date that count as due.
    #[serde(default)]
    pub tolerance_days: u32,
    /// Hours either side of the due total that count as due.
    #[serde(default)]
    pub tolerance_hours: f64,
    /// When the job was last done; the plan's creation time when absent.
    #[serde(default)]
    pub last_done_at: Option<DateTime<Utc>>,
    /// The counter's total when the job was last done; the counter's
    /// current total when absent.
    #[serde(default)]
    pub last_done_hours: Option<f64>,
}

impl NewPlan {
    /// Checks every field and trims texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.equipment_id = check_text("equipment_id", &self.equipment_id, 1, 64)?;
        self.title = check_text("title", &self.title, 1, MAX_TITLE)?;
        self.instructions = check_text("instructions", &self.instructions, 0, MAX_TEXT)?;
        if let Some(c) = &self.counter_id {
            self.counter_id = Some(check_text("counter_id", c, 1, 64)?);
        }
        check_intervals(
            self.interval_days,
            self.interval_hours,
            self.counter_id.is_some(),
        )?;
        check_tolerance(self.tolerance_days, self.tolerance_hours)?;
        if let Some(h) = self.last_done_hours {
            validate_total("last_done_hours", h)?;
        }
        Ok(self)
    }
}

/// A partial update of a plan: only the fields present change. The
/// equipment and the counter never change; a new counter is a new plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// New title.
    pub title: Option<String>,
    /// New instructions.
    pub instructions: Option<String>,
    /// New calendar interval; 0 removes it.
    pub interval_days: Option<u32>,
    /// New hours interval; 0 removes it.
    pub interval_hours: Option<f64>,
    /// New tolerance in days.
    pub tolerance_days: Option<u32>,
    /// New tolerance in hours.
    pub tolerance_hours: Option<f64>,
}

impl PlanPatch {
    /// Checks lengths and ranges and trims texts. Whether the intervals
    /// that result still hold together is checked against the plan.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(t) = &self.title {
            self.title = Some(check_text("title", t, 1, MAX_TITLE)?);
        }
        if let Some(i) = &self.instructions {
            self.instructions = Some(check_text("instructions", i, 0, MAX_TEXT)?);
        }
        if let Some(d) = self.interval_days {
            check_days("interval_days", d)?;
        }
        if let Some(h) = self.interval_hours {
            validate_total("interval_hours", h)?;
        }
        if let Some(d) = self.tolerance_days {
            check_days("tolerance_days", d)?;
        }
        if let Some(h) = self.tolerance_hours {
            validate_total("tolerance_hours", h)?;
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.instructions.is_none()
            && self.interval_days.is_none()
            && self.interval_hours.is_none()
            && self.tolerance_days.is_none()
            && self.tolerance_hours.is_none()
    }
}

/// What the chief engineer supplies to postpone a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPostponement {
    /// The new due date.
    #[serde(default)]
    pub until_date: Option<DateTime<Utc>>,
    /// The new due total.
    #[serde(default)]
    pub until_hours: Option<f64>,
    /// Why; required.
    pub reason: String,
}

impl NewPostponement {
    /// Checks that it moves something and has a reason.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if self.until_date.is_none() && self.until_hours.is_none() {
            return Err(ValidationError::new(
                "until_date",
                "give a new due date, a new due total (until_hours), or both",
            ));
        }
        if let Some(h) = self.until_hours {
            validate_total("until_hours", h)?;
        }
        self.reason = check_text("reason", &self.reason, 1, MAX_TEXT)?;
        Ok(self)
    }
}

/// A plan needs at least one interval, and an hours interval needs a
/// counter. Zero counts as no interval.
pub fn check_intervals(
    days: Option<u32>,
    hours: Option<f64>,
    has_counter: bool,
) -> Result<(), ValidationError> {
    if let Some(d) = days {
        check_days("interval_days", d)?;
    }
    if let Some(h) = hours {
        validate_total("interval_hours", h)?;
    }
    let by_days = days.is_some_and(|d| d > 0);
    let by_hours = hours.is_some_and(|h| h > 0.0);
    if !by_days && !by_hours {
        return Err(ValidationError::new(
            "interval_days",
            "give interval_days, interval_hours, or both",
        ));
    }
    if by_hours && !has_counter {
        return Err(ValidationError::new(
            "counter_id",
            "an hours interval follows a counter: give counter_id",
        ));
    }
    Ok(())
}

fn check_tolerance(days: u32, hours: f64) -> Result<(), ValidationError> {
    check_days("tolerance_days", days)?;
    validate_total("tolerance_hours", hours)
}

fn check_days(field: &'static str, days: u32) -> Result<(), ValidationError> {
    if days <= MAX_DAYS {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be at most {MAX_DAYS} days"),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    fn plan(days: Option<u32>, hours: Option<f64>) -> Plan {
        Plan {
            id: "p-1".into(),
            vessel_id: "v1".into(),
            equipment_id: "e-1".into(),
            title: "Change lube oil filter".into(),
            instructions: String::new(),
            interval_days: days,
            interval_hours: hours,
            counter_id: hours.map(|_| "c-1".into()),
            tolerance_days: 0,
            tolerance_hours: 0.0,
            last_done_at: day(0),
            last_done_hours: hours.map(|_| 1000.0),
            postponements: vec![],
            created_by: "chief".into(),
            created_at: day(0),
            updated_at: day(0),
        }
    }

    fn postpone(at: i64, date: Option<i64>, hours: Option<f64>) -> Postponement {
        Postponement {
            id: format!("x{at}"),
            at: day(at),
            until_date: date.map(day),
            until_hours: hours,
            reason: "in port next week".into(),
            by: "chief".into(),
        }
    }

    use PlanState::{Due, Ok as Fine, Overdue};

    #[test]
    fn calendar_only() {
        let mut p = plan(Some(30), None);
        p.tolerance_days = 3;
        let s = schedule(&p, None, day(10));
        assert_eq!(
            (s.due_at, s.due_hours, s.state),
            (Some(day(30)), None, Fine)
        );
        assert_eq!(schedule(&p, None, day(26)).state, Fine);
        assert_eq!(schedule(&p, None, day(27)).state, Due);
        assert_eq!(schedule(&p, None, day(30)).state, Due);
        assert_eq!(schedule(&p, None, day(33)).state, Due);
        assert_eq!(
            schedule(&p, None, day(33) + Duration::seconds(1)).state,
            Overdue
        );
        // A counter total means nothing to a calendar plan.
        assert_eq!(schedule(&p, Some(1e6), day(10)).state, Fine);
        // With no tolerance the due point is a moment and right after it
        // the job is overdue.
        p.tolerance_days = 0;
        assert_eq!(schedule(&p, None, day(30)).state, Due);
        assert_eq!(schedule(&p, None, day(31)).state, Overdue);
    }

    #[test]
    fn hours_only() {
        let mut p = plan(None, Some(500.0));
        p.tolerance_hours = 25.0;
        let s = schedule(&p, Some(1200.0), day(400));
        assert_eq!((s.due_at, s.due_hours, s.state), (None, Some(1500.0), Fine));
        assert_eq!(s.hours_now, Some(1200.0));
        assert_eq!(schedule(&p, Some(1474.9), day(1)).state, Fine);
        assert_eq!(schedule(&p, Some(1475.0), day(1)).state, Due);
        assert_eq!(schedule(&p, Some(1525.0), day(1)).state, Due);
        assert_eq!(schedule(&p, Some(1525.1), day(1)).state, Overdue);
        // An unknown counter cannot make the plan due.
        assert_eq!(schedule(&p, None, day(1)).state, Fine);
        // A plan made without a last total counts from zero.
        p.last_done_hours = None;
        assert_eq!(schedule(&p, Some(480.0), day(1)).state, Due);
    }

    #[test]
    fn both_whichever_comes_first() {
        let p = plan(Some(90), Some(500.0));
        // Hours first.
        let s = schedule(&p, Some(1501.0), day(10));
        assert_eq!((s.due_at, s.due_hours), (Some(day(90)), Some(1500.0)));
        assert_eq!(s.state, Overdue);
        // Calendar first.
        assert_eq!(schedule(&p, Some(1100.0), day(90)).state, Due);
        assert_eq!(schedule(&p, Some(1100.0), day(91)).state, Overdue);
        // Neither.
        assert_eq!(schedule(&p, Some(1100.0), day(89)).state, Fine);
        // The worse of the two wins.
        assert_eq!(schedule(&p, Some(1500.0), day(91)).state, Overdue);
    }

    #[test]
    fn postponement_moves_the_due_point_for_the_current_round_only() {
        let mut p = plan(Some(30), Some(500.0));
        p.postponements.push(postpone(25, Some(45), None));
        let s = schedule(&p, Some(1100.0), day(35));
        assert_eq!((s.due_at, s.state), (Some(day(45)), Fine));
        // The hours due point did not move.
        assert_eq!(schedule(&p, Some(1501.0), day(35)).state, Overdue);
        // A later postponement wins, and may move the hours too.
        p.postponements.push(postpone(40, Some(50), Some(1600.0)));
        let s = schedule(&p, Some(1550.0), day(46));
        assert_eq!(
            (s.due_at, s.due_hours, s.state),
            (Some(day(50)), Some(1600.0), Fine)
        );
        // Once the job is done the old postponements no longer count.
        p.last_done_at = day(48);
        p.last_done_hours = Some(1560.0);
        let s = schedule(&p, Some(1570.0), day(49));
        assert_eq!(
            (s.due_at, s.due_hours, s.state),
            (Some(day(78)), Some(2060.0), Fine)
        );
    }

    #[test]
    fn a_counter_correction_moves_the_state_back() {
        let mut p = plan(None, Some(500.0));
        p.tolerance_hours = 10.0;
        // A mistyped reading makes the plan overdue ...
        assert_eq!(schedule(&p, Some(1600.0), day(1)).state, Overdue);
        // ... the chief engineer corrects the total, and it is due again,
        // then fine.
        assert_eq!(schedule(&p, Some(1495.0), day(1)).state, Due);
        assert_eq!(schedule(&p, Some(1300.0), day(1)).state, Fine);
    }

    #[test]
    fn input_validation() {
        let new = |days: Option<u32>, hours: Option<f64>, counter: Option<&str>| NewPlan {
            equipment_id: "e-1".into(),
            title: "Filter".into(),
            instructions: String::new(),
            interval_days: days,
            interval_hours: hours,
            counter_id: counter.map(str::to_owned),
            tolerance_days: 0,
            tolerance_hours: 0.0,
            last_done_at: None,
            last_done_hours: None,
        };
        assert_eq!(
            new(None, None, None).validated().unwrap_err().field,
            "interval_days"
        );
        assert_eq!(
            new(Some(0), Some(0.0), Some("c"))
                .validated()
                .unwrap_err()
                .field,
            "interval_days"
        );
        assert_eq!(
            new(None, Some(500.0), None).validated().unwrap_err().field,
            "counter_id"
        );
        assert_eq!(
            new(Some(99_999), None, None).validated().unwrap_err().field,
            "interval_days"
        );
        assert_eq!(
            new(None, Some(f64::NAN), Some("c"))
                .validated()
                .unwrap_err()
                .field,
            "interval_hours"
        );
        assert!(new(Some(30), None, None).validated().is_ok());
        assert!(new(Some(30), Some(500.0), Some("c")).validated().is_ok());
        let pp = NewPostponement {
            until_date: None,
            until_hours: None,
            reason: "x".into(),
        };
        assert_eq!(pp.validated().unwrap_err().field, "until_date");
        let pp = NewPostponement {
            until_date: Some(day(3)),
            until_hours: None,
            reason: " ".into(),
        };
        assert_eq!(pp.validated().unwrap_err().field, "reason");
        for s in PlanState::ALL {
            assert_eq!(s.as_str().parse::<PlanState>(), Ok(s));
        }
    }
}
