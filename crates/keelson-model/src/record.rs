//! Every kind of maintenance record, as one type, for the code that stores,
//! syncs and audits records whatever their kind.

use crate::{Comment, Counter, Equipment, Fault, Part, Plan, Requisition, WorkOrder};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The record kind of faults.
pub const FAULT: &str = "fault";
/// The record kind of equipment.
pub const EQUIPMENT: &str = "equipment";
/// The record kind of work orders.
pub const WORK_ORDER: &str = "work_order";
/// The record kind of counters.
pub const COUNTER: &str = "counter";
/// The record kind of maintenance plans.
pub const PLAN: &str = "plan";
/// The record kind of spare parts.
pub const PART: &str = "part";
/// The record kind of requisitions.
pub const REQUISITION: &str = "requisition";

/// A maintenance record of any kind, as read from its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A fault or defect.
    Fault(Fault),
    /// A system or component.
    Equipment(Equipment),
    /// A work order.
    WorkOrder(WorkOrder),
    /// A counter (running hours).
    Counter(Counter),
    /// A maintenance plan.
    Plan(Plan),
    /// A spare part and its stock movements.
    Part(Part),
    /// A requisition for spare parts.
    Requisition(Requisition),
}

impl Record {
    /// The record kind, as stored next to the document.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Fault(_) => FAULT,
            Record::Equipment(_) => EQUIPMENT,
            Record::WorkOrder(_) => WORK_ORDER,
            Record::Counter(_) => COUNTER,
            Record::Plan(_) => PLAN,
            Record::Part(_) => PART,
            Record::Requisition(_) => REQUISITION,
        }
    }

    /// The record's id.
    pub fn id(&self) -> &str {
        match self {
            Record::Fault(r) => &r.id,
            Record::Equipment(r) => &r.id,
            Record::WorkOrder(r) => &r.id,
            Record::Counter(r) => &r.id,
            Record::Plan(r) => &r.id,
            Record::Part(r) => &r.id,
            Record::Requisition(r) => &r.id,
        }
    }

    /// The vessel the record belongs to.
    pub fn vessel_id(&self) -> &str {
        match self {
            Record::Fault(r) => &r.vessel_id,
            Record::Equipment(r) => &r.vessel_id,
            Record::WorkOrder(r) => &r.vessel_id,
            Record::Counter(r) => &r.vessel_id,
            Record::Plan(r) => &r.vessel_id,
            Record::Part(r) => &r.vessel_id,
            Record::Requisition(r) => &r.vessel_id,
        }
    }

    /// The comment thread; only faults and work orders have one.
    pub fn comments(&self) -> &[Comment] {
        match self {
            Record::Fault(r) => &r.comments,
            Record::Equipment(_)
            | Record::Counter(_)
            | Record::Plan(_)
            | Record::Part(_)
            | Record::Requisition(_) => &[],
            Record::WorkOrder(r) => &r.comments,
        }
    }

    /// The attached photos and files; only faults and work orders have any.
    pub fn attachments(&self) -> &[crate::Attachment] {
        match self {
            Record::Fault(r) => &r.attachments,
            Record::WorkOrder(r) => &r.attachments,
            Record::Equipment(_)
            | Record::Counter(_)
            | Record::Plan(_)
            | Record::Part(_)
            | Record::Requisition(_) => &[],
        }
    }

    /// Who created the record and when; neither ever changes.
    pub fn created(&self) -> (&str, DateTime<Utc>) {
        match self {
            Record::Fault(r) => (&r.reporter, r.created_at),
            Record::Equipment(r) => (&r.created_by, r.created_at),
            Record::WorkOrder(r) => (&r.created_by, r.created_at),
            Record::Counter(r) => (&r.created_by, r.created_at),
            Record::Plan(r) => (&r.created_by, r.created_at),
            Record::Part(r) => (&r.created_by, r.created_at),
            Record::Requisition(r) => (&r.created_by, r.created_at),
        }
    }

    /// When the record last changed.
    pub fn updated_at(&self) -> DateTime<Utc> {
        match self {
            Record::Fault(r) => r.updated_at,
            Record::Equipment(r) => r.updated_at,
            Record::WorkOrder(r) => r.updated_at,
            Record::Counter(r) => r.updated_at,
            Record::Plan(r) => r.updated_at,
            Record::Part(r) => r.updated_at,
            Record::Requisition(r) => r.updated_at,
        }
    }

    /// Whether the record has a comment thread.
    pub fn takes_comments(&self) -> bool {
        matches!(self, Record::Fault(_) | Record::WorkOrder(_))
    }
}

/// One change in a record's history, for its audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The change's hash (hex).
    pub hash: String,
    /// Who made it (a user name; `@shore` for the shore office), when the
    /// change says.
    pub author: Option<String>,
    /// When it was made (to the second), when the change says.
    pub at: Option<DateTime<Utc>>,
    /// How many operations it holds.
    pub ops: usize,
}
