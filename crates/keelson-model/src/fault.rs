//! Faults and defects (ISM Code 10.2): what the crew logs and the chief
//! engineer works through, with its comment thread.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest title accepted, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Longest equipment reference accepted, in characters.
pub const MAX_EQUIPMENT: usize = 200;
/// Longest comment accepted, in characters.
pub const MAX_COMMENT: usize = 5_000;
/// Longest cause or corrective action accepted, in characters.
pub const MAX_FINDING: usize = 5_000;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The offending field, as named in the API.
    pub field: &'static str,
    /// What is wrong with it, in words a user can act on.
    pub reason: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            field,
            reason: reason.into(),
        }
    }
}

/// How much a fault matters to the ship's safety and operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Cosmetic or minor; fix at convenience.
    Low,
    /// Degrades a system; plan a fix.
    Medium,
    /// Impairs a system; fix soon.
    High,
    /// Threatens safety, the environment or propulsion; act now.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The severity's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("severity", "must be low, medium, high or critical")
            })
    }
}

/// Where a fault stands in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Logged, not yet worked on.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Fixed, waiting for the chief engineer to close it.
    Resolved,
    /// Closed by the chief engineer.
    Closed,
}

impl Status {
    /// Every status, in life-cycle order.
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::InProgress,
        Status::Resolved,
        Status::Closed,
    ];

    /// The status's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::InProgress => "In progress",
            Status::Resolved => "Resolved",
            Status::Closed => "Closed",
        }
    }

    /// Whether a fault may move from `self` to `to`. Resolved and closed
    /// faults may be reopened; nothing skips straight from open to closed.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Open, InProgress)
                | (Open, Resolved)
                | (InProgress, Open)
                | (InProgress, Resolved)
                | (Resolved, Closed)
                | (Resolved, Open)
                | (Resolved, InProgress)
                | (Closed, Open)
        ) || self == to
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("status", "must be open, in_progress, resolved or closed")
            })
    }
}

/// One comment in a fault's thread, from the ship or from the shore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Unique id of the comment.
    pub id: String,
    /// Who wrote it: a user name, suffixed `@shore` for the shore office.
    pub author: String,
    /// The comment itself.
    pub text: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// A fault as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Unique id of the fault (a UUID).
    pub id: String,
    /// The vessel the fault belongs to.
    pub vessel_id: String,
    /// One line saying what is wrong.
    pub title: String,
    /// What was seen, where, and what was done so far.
    pub description: String,
    /// The affected equipment, as the crew names it.
    pub equipment: String,
    /// How much it matters.
    pub severity: Severity,
    /// Where it stands.
    pub status: Status,
    /// Why it happened, as the engineers found it; empty until recorded.
    #[serde(default)]
    pub cause: String,
    /// What was done to put it right and keep it from coming back (ISM Code
    /// 10.2); empty until recorded, and needed before the fault is resolved.
    #[serde(default)]
    pub corrective_action: String,
    /// Who logged it.
    pub reporter: String,
    /// When it was logged.
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

/// What a user supplies to log a fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFault {
    /// One line saying what is wrong.
    pub title: String,
    /// What was seen; may be empty.
    #[serde(default)]
    pub description: String,
    /// The affected equipment; may be empty.
    #[serde(default)]
    pub equipment: String,
    /// How much it matters.
    pub severity: Severity,
}

impl NewFault {
    /// Checks lengths and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.title = check_text("title", &self.title, 1, MAX_TITLE)?;
        self.description = check_text("description", &self.description, 0, MAX_DESCRIPTION)?;
        self.equipment = check_text("equipment", &self.equipment, 0, MAX_EQUIPMENT)?;
        Ok(self)
    }
}

/// A partial update of a fault: only the fields present change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New equipment reference.
    pub equipment: Option<String>,
    /// New severity.
    pub severity: Option<Severity>,
    /// New status.
    pub status: Option<Status>,
    /// New cause.
    pub cause: Option<String>,
    /// New corrective action.
    pub corrective_action: Option<String>,
}

impl FaultPatch {
    /// Checks lengths and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(t) = &self.title {
            self.title = Some(check_text("title", t, 1, MAX_TITLE)?);
        }
        if let Some(d) = &self.description {
            self.description = Some(check_text("description", d, 0, MAX_DESCRIPTION)?);
        }
        if let Some(e) = &self.equipment {
            self.equipment = Some(check_text("equipment", e, 0, MAX_EQUIPMENT)?);
        }
        if let Some(c) = &self.cause {
            self.cause = Some(check_text("cause", c, 0, MAX_FINDING)?);
        }
        if let Some(a) = &self.corrective_action {
            self.corrective_action = Some(check_text("corrective_action", a, 0, MAX_FINDING)?);
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.equipment.is_none()
            && self.severity.is_none()
            && self.status.is_none()
            && !self.touches_findings()
    }

    /// Whether the patch writes the cause or the corrective action, which
    /// only the engineers who work a fault may record.
    pub fn touches_findings(&self) -> bool {
        self.cause.is_some() || self.corrective_action.is_some()
    }
}

/// Validates a comment's text and returns it trimmed.
pub fn validate_comment(text: &str) -> Result<String, ValidationError> {
    check_text("text", text, 1, MAX_COMMENT)
}

pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_fault_validation() {
        let ok = NewFault {
            title: "  Leak at ME fuel pump  ".into(),
            description: String::new(),
            equipment: "ME".into(),
            severity: Severity::High,
        }
        .validated()
        .expect("valid");
        assert_eq!(ok.title, "Leak at ME fuel pump");
        let empty = NewFault {
            title: "   ".into(),
            description: String::new(),
            equipment: String::new(),
            severity: Severity::Low,
        };
        assert_eq!(empty.validated().unwrap_err().field, "title");
        let long = NewFault {
            title: "x".repeat(MAX_TITLE + 1),
            description: String::new(),
            equipment: String::new(),
            severity: Severity::Low,
        };
        assert!(long.validated().is_err());
    }

    #[test]
    fn status_transitions() {
        assert!(Status::Open.may_become(Status::InProgress));
        assert!(Status::Resolved.may_become(Status::Closed));
        assert!(Status::Closed.may_become(Status::Open));
        assert!(!Status::Open.may_become(Status::Closed));
        assert!(!Status::Closed.may_become(Status::Resolved));
    }

    #[test]
    fn names_round_trip() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!(validate_comment("").is_err());
        assert!(validate_comment("bad\u{7}bell").is_err());
    }
}
