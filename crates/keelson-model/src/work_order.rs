//! Work orders (job cards): a job on a piece of equipment, the work done
//! on it, and the chief engineer's sign-off.
//!
//! The sign-off is final. Once a work order holds a sign-off entry it reads
//! as signed off whatever its status field says, so an edit made elsewhere
//! before the sign-off was seen cannot undo it after the two merge.

use crate::ValidationError;
use crate::fault::{Comment, check_text};
use crate::part::PartUse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest title accepted, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest description, work-done text, entry or note, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Most hours one work entry may record.
pub const MAX_ENTRY_HOURS: f64 = 1_000.0;

/// Where a work order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkStatus {
    /// Planned, not started.
    Open,
    /// Someone is on it.
    InProgress,
    /// The work is done and waits for the chief engineer's sign-off.
    Done,
    /// Signed off by the chief engineer; final.
    SignedOff,
    /// Not going to be done.
    Cancelled,
}

impl WorkStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [WorkStatus; 5] = [
        WorkStatus::Open,
        WorkStatus::InProgress,
        WorkStatus::Done,
        WorkStatus::SignedOff,
        WorkStatus::Cancelled,
    ];

    /// The status's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkStatus::Open => "open",
            WorkStatus::InProgress => "in_progress",
            WorkStatus::Done => "done",
            WorkStatus::SignedOff => "signed_off",
            WorkStatus::Cancelled => "cancelled",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            WorkStatus::Open => "Open",
            WorkStatus::InProgress => "In progress",
            WorkStatus::Done => "Done",
            WorkStatus::SignedOff => "Signed off",
            WorkStatus::Cancelled => "Cancelled",
        }
    }

    /// Whether a user may move a work order from `self` to `to` by editing
    /// its status. Signing off is not an edit: it has its own operation and
    /// needs the work to be done.
    pub fn may_become(self, to: WorkStatus) -> bool {
        use WorkStatus::*;
        self == to
            || matches!(
                (self, to),
                (Open, InProgress)
                    | (Open, Cancelled)
                    | (InProgress, Open)
                    | (InProgress, Done)
                    | (InProgress, Cancelled)
                    | (Done, InProgress)
                    | (Cancelled, Open)
            )
    }
}

impl fmt::Display for WorkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkStatus {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "must be open, in_progress, done, signed_off or cancelled",
                )
            })
    }
}

/// One entry of the work log: who did what, when, for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkEntry {
    /// Unique id of the entry.
    pub id: String,
    /// Who recorded it.
    pub author: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What was done.
    pub text: String,
    /// Hours spent.
    pub hours: f64,
    /// The spare parts used, each taken out of stock in the same
    /// transaction as the entry; none in entries made before spare parts
    /// existed.
    #[serde(default)]
    pub parts: Vec<PartUse>,
}

/// The chief engineer's sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// Unique id of the entry.
    pub id: String,
    /// Who signed off.
    pub author: String,
    /// When.
    pub at: DateTime<Utc>,
    /// A remark; may be empty.
    pub note: String,
}

/// A work order as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    /// Unique id of the work order (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// One line saying what is to be done.
    pub title: String,
    /// The equipment record it is about.
    pub equipment_id: String,
    /// The maintenance plan that generated it, if any. Work orders made
    /// before plans existed have none.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// What is to be done, in detail; may be empty.
    pub description: String,
    /// Who is to do it (a user name); empty when unassigned.
    pub assignee: String,
    /// Where it stands; `signed_off` as soon as any sign-off exists.
    pub status: WorkStatus,
    /// A summary of the work done; may be empty.
    pub work_done: String,
    /// The sum of the hours of every work entry.
    pub hours_spent: f64,
    /// The work log, oldest first; entries are never changed or removed.
    pub entries: Vec<WorkEntry>,
    /// The sign-offs, oldest first (normally one); never changed or removed.
    pub sign_offs: Vec<SignOff>,
    /// Who opened it.
    pub created_by: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The comment thread, oldest first.
    pub comments: Vec<Comment>,
    /// The attached photos and files, oldest first; never changed or
    /// removed. Absent in projections written before attachments existed.
    #[serde(default)]
    pub attachments: Vec<crate::Attachment>,
}

impl WorkOrder {
    /// Whether the chief engineer has signed it off.
    pub fn is_signed_off(&self) -> bool {
        !self.sign_offs.is_empty()
    }
}

/// What a user supplies to open a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkOrder {
    /// One line saying what is to be done.
    pub title: String,
    /// The equipment record it is about.
    pub equipment_id: String,
    /// Details; may be empty.
    #[serde(default)]
    pub description: String,
    /// Who is to do it; may be empty.
    #[serde(default)]
    pub assignee: String,
    /// The plan that generates it; set by the agent, never by a request.
    #[serde(skip)]
    pub plan_id: Option<String>,
}

impl NewWorkOrder {
    /// Checks lengths and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.title = check_text("title", &self.title, 1, MAX_TITLE)?;
        self.equipment_id = check_text("equipment_id", &self.equipment_id, 1, 64)?;
        self.description = check_text("description", &self.description, 0, MAX_TEXT)?;
        self.assignee = validate_assignee(&self.assignee)?;
        Ok(self)
    }
}

/// A partial update of a work order: only the fields present change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New assignee (empty to unassign).
    pub assignee: Option<String>,
    /// New status (not `signed_off`: that is the sign-off operation).
    pub status: Option<WorkStatus>,
    /// New summary of the work done.
    pub work_done: Option<String>,
}

impl WorkOrderPatch {
    /// Checks lengths and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(t) = &self.title {
            self.title = Some(check_text("title", t, 1, MAX_TITLE)?);
        }
        if let Some(d) = &self.description {
            self.description = Some(check_text("description", d, 0, MAX_TEXT)?);
        }
        if let Some(a) = &self.assignee {
            self.assignee = Some(validate_assignee(a)?);
        }
        if let Some(w) = &self.work_done {
            self.work_done = Some(check_text("work_done", w, 0, MAX_TEXT)?);
        }
        if self.status == Some(WorkStatus::SignedOff) {
            return Err(ValidationError::new(
                "status",
                "a work order is signed off through its sign-off, not by its status",
            ));
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.assignee.is_none()
            && self.status.is_none()
            && self.work_done.is_none()
    }
}

/// What a user supplies to record work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkEntry {
    /// What was done.
    pub text: String,
    /// Hours spent (0 to 1,000).
    pub hours: f64,
    /// The spare parts used, taken out of stock with the entry.
    #[serde(default)]
    pub parts: Vec<PartUse>,
}

/// Most parts one work entry may record.
pub const MAX_PARTS_PER_ENTRY: usize = 50;

impl NewWorkEntry {
    /// Checks the text, the hours and the parts used, and trims the texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.text = check_text("text", &self.text, 1, MAX_TEXT)?;
        validate_hours(self.hours)?;
        if self.parts.len() > MAX_PARTS_PER_ENTRY {
            return Err(ValidationError::new(
                "parts",
                format!("at most {MAX_PARTS_PER_ENTRY} parts per entry"),
            ));
        }
        self.parts = self
            .parts
            .into_iter()
            .map(PartUse::validated)
            .collect::<Result<_, _>>()?;
        Ok(self)
    }
}

/// Checks a number of hours: finite, 0 to [`MAX_ENTRY_HOURS`].
pub fn validate_hours(hours: f64) -> Result<(), ValidationError> {
    if hours.is_finite() && (0.0..=MAX_ENTRY_HOURS).contains(&hours) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "hours",
            format!("must be a number from 0 to {MAX_ENTRY_HOURS}"),
        ))
    }
}

/// What the chief engineer supplies to sign off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSignOff {
    /// A remark; may be empty.
    #[serde(default)]
    pub note: String,
}

impl NewSignOff {
    /// Checks the note's length and trims it.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.note = check_text("note", &self.note, 0, MAX_TEXT)?;
        Ok(self)
    }
}

/// Validates an assignee: empty, or a user name.
fn validate_assignee(a: &str) -> Result<String, ValidationError> {
    let a = a.trim();
    if a.is_empty() {
        return Ok(String::new());
    }
    crate::validate_username(a).map_err(|e| ValidationError::new("assignee", e.reason))?;
    Ok(a.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions_and_names() {
        assert!(WorkStatus::Open.may_become(WorkStatus::InProgress));
        assert!(WorkStatus::InProgress.may_become(WorkStatus::Done));
        assert!(!WorkStatus::Open.may_become(WorkStatus::Done));
        assert!(!WorkStatus::Done.may_become(WorkStatus::SignedOff));
        assert!(!WorkStatus::SignedOff.may_become(WorkStatus::Open));
        for s in WorkStatus::ALL {
            assert_eq!(s.as_str().parse::<WorkStatus>(), Ok(s));
        }
    }

    #[test]
    fn input_validation() {
        let patch = WorkOrderPatch {
            status: Some(WorkStatus::SignedOff),
            ..WorkOrderPatch::default()
        };
        assert_eq!(patch.validated().unwrap_err().field, "status");
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e6] {
            let e = NewWorkEntry {
                text: "Changed filter".into(),
                hours: bad,
                parts: vec![],
            };
            assert_eq!(e.validated().unwrap_err().field, "hours");
        }
        let new = NewWorkOrder {
            title: "Overhaul".into(),
            equipment_id: "e-1".into(),
            description: String::new(),
            assignee: "not a name!".into(),
            plan_id: None,
        };
        assert_eq!(new.validated().unwrap_err().field, "assignee");
    }
}
