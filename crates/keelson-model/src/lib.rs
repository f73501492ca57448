//! The Keelson domain model: types, validation and roles.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SQLite,
//! automerge or HTTP. Everything here is plain data that every other crate can
//! share without pulling in a runtime.

pub mod attachment;
pub mod counter;
pub mod equipment;
pub mod fault;
pub mod part;
pub mod plan;
pub mod record;
pub mod role;
pub mod sample;
pub mod work_order;

pub use attachment::{Attachment, ContentError, ContentType, NewAttachment, check_content};
pub use counter::{
    Correction, Counter, NewCorrection, NewCounter, NewReading, Reading, ReadingSource, SensorRule,
};
pub use equipment::{Criticality, Equipment, EquipmentPatch, Level, NewEquipment};
pub use fault::{Comment, Fault, FaultPatch, NewFault, Severity, Status, ValidationError};
pub use part::{
    Decision, Movement, MovementKind, NewDecision, NewMovement, NewPart, NewRequisition, Part,
    PartPatch, PartUse, Requisition, RequisitionLine, RequisitionPatch, RequisitionStatus,
    StockLevel, Submission,
};
pub use plan::{
    NewPlan, NewPostponement, Plan, PlanPatch, PlanState, Postponement, Schedule, schedule,
};
pub use record::{HistoryEntry, Record};
pub use role::{Role, ShoreRole};
pub use sample::{Quality, Sample, TagValue};
pub use work_order::{
    NewSignOff, NewWorkEntry, NewWorkOrder, SignOff, WorkEntry, WorkOrder, WorkOrderPatch,
    WorkStatus,
};

/// Identifier of a vessel, as registered at the shore (for example `imo9321483`).
///
/// Vessel ids are short, lowercase and safe to use in URLs and file names.
pub fn validate_vessel_id(id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "vessel_id",
            "must be 1-64 characters of a-z, 0-9, '-' or '_'",
        ))
    }
}

/// Validates a login name: 1-64 characters of letters, digits, `.`, `-` or `_`.
pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "username",
            "must be 1-64 characters of letters, digits, '.', '-' or '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vessel_ids() {
        assert!(validate_vessel_id("imo9321483").is_ok());
        assert!(validate_vessel_id("demo-vessel").is_ok());
        assert!(validate_vessel_id("").is_err());
        assert!(validate_vessel_id("Bad Id").is_err());
        assert!(validate_vessel_id("../etc").is_err());
    }
}
