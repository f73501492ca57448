//! Spare parts and their stock, and requisitions for more.
//!
//! A part's stock is never a stored number: it is the sum of the part's
//! stock movements (receipts, consumptions, adjustments), per storage
//! location. Movements are only ever appended, so movements recorded on
//! board and ashore while apart both count after a merge, where a stored
//! quantity written on both sites would keep only one of them.

use crate::ValidationError;
use crate::fault::check_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest part number, maker's reference, unit or location, in characters.
pub const MAX_SHORT: usize = 100;
/// Longest part name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest reason or note, in characters.
pub const MAX_TEXT: usize = 2_000;
/// Most storage locations or linked equipment records per part.
pub const MAX_LINKS: usize = 50;
/// Most lines on one requisition.
pub const MAX_LINES: usize = 500;
/// Largest quantity one movement or line may carry.
pub const MAX_QUANTITY: f64 = 1e9;

/// What a stock movement records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Parts received on board (a delivery): the stock rises.
    Receipt,
    /// Parts used, normally on a work order: the stock falls.
    Consumption,
    /// A correction after a stock count, with a reason: either way.
    Adjustment,
}

impl MovementKind {
    /// Every kind.
    pub const ALL: [MovementKind; 3] = [
        MovementKind::Receipt,
        MovementKind::Consumption,
        MovementKind::Adjustment,
    ];

    /// The kind's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Consumption => "consumption",
            MovementKind::Adjustment => "adjustment",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            MovementKind::Receipt => "Receipt",
            MovementKind::Consumption => "Consumption",
            MovementKind::Adjustment => "Adjustment",
        }
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MovementKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MovementKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("kind", "must be receipt, consumption or adjustment")
            })
    }
}

/// One stock movement of a part; never changed or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    /// Unique id of the movement.
    pub id: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The storage location it moved stock in or out of.
    pub location: String,
    /// The change of stock at that location: positive for a receipt,
    /// negative for a consumption, either for an adjustment.
    pub delta: f64,
    /// What it records.
    pub kind: MovementKind,
    /// Why (required for an adjustment; may be empty otherwise).
    pub reason: String,
    /// The work order the parts were used on, for a consumption recorded
    /// with work done.
    pub work_order_id: Option<String>,
    /// Who recorded it.
    pub by: String,
}

/// The stock at one storage location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The storage location.
    pub location: String,
    /// How many units are there.
    pub quantity: f64,
}

/// A spare part as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Unique id of the part record (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// The vessel's own part number.
    pub number: String,
    /// What it is.
    pub name: String,
    /// Who makes it; may be empty.
    pub maker: String,
    /// The maker's reference (part or drawing number); may be empty.
    pub maker_ref: String,
    /// The unit it is counted in (pcs, l, kg, m ...).
    pub unit: String,
    /// The equipment records it fits, sorted.
    pub equipment_ids: Vec<String>,
    /// The stock below which more should be ordered.
    pub min_stock: f64,
    /// The storage locations it is kept in, sorted.
    pub locations: Vec<String>,
    /// Every stock movement, oldest first.
    pub movements: Vec<Movement>,
    /// The stock per location: every storage location, and every location a
    /// movement names, sorted by location.
    pub stock: Vec<StockLevel>,
    /// The stock over all locations.
    pub total: f64,
    /// Whether the total is below the minimum stock.
    pub below_minimum: bool,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Part {
    /// The stock at `location` (zero where nothing was ever moved).
    pub fn stock_at(&self, location: &str) -> f64 {
        self.stock
            .iter()
            .find(|s| s.location == location)
            .map_or(0.0, |s| s.quantity)
    }

    /// How many units bring the stock back to its minimum (zero when it is
    /// not below).
    pub fn shortfall(&self) -> f64 {
        (self.min_stock - self.total).max(0.0)
    }
}

/// Sums movements into the stock per location, with every storage location
/// listed even where nothing moved. The sums are rounded to nine decimals,
/// so that adding and taking away tenths of a litre reads as the numbers
/// a person would write, not as binary fractions.
pub fn stock_levels(locations: &[String], movements: &[Movement]) -> Vec<StockLevel> {
    let mut levels: Vec<StockLevel> = locations
        .iter()
        .map(|l| StockLevel {
            location: l.clone(),
            quantity: 0.0,
        })
        .collect();
    for m in movements {
        match levels.iter_mut().find(|s| s.location == m.location) {
            Some(s) => s.quantity += m.delta,
            None => levels.push(StockLevel {
                location: m.location.clone(),
                quantity: m.delta,
            }),
        }
    }
    for s in &mut levels {
        s.quantity = round_quantity(s.quantity);
    }
    levels.sort_by(|a, b| a.location.cmp(&b.location));
    levels
}

/// The sum of the stock over all locations.
pub fn total_stock(levels: &[StockLevel]) -> f64 {
    round_quantity(levels.iter().map(|s| s.quantity).sum())
}

fn round_quantity(q: f64) -> f64 {
    let r = (q * 1e9).round() / 1e9;
    // Rounding a tiny negative gives -0.0, which would print as "-0".
    if r == 0.0 { 0.0 } else { r }
}

/// Checks a quantity: finite, from 0 to [`MAX_QUANTITY`].
pub fn validate_quantity(field: &'static str, q: f64) -> Result<(), ValidationError> {
    if q.is_finite() && (0.0..=MAX_QUANTITY).contains(&q) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be a number from 0 to {MAX_QUANTITY}"),
        ))
    }
}

fn positive_quantity(field: &'static str, q: f64) -> Result<(), ValidationError> {
    validate_quantity(field, q)?;
    if q > 0.0 {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be more than 0"))
    }
}

/// Checks one short text (a location, a unit) that must be on one line.
fn one_line(field: &'static str, v: &str, min: usize) -> Result<String, ValidationError> {
    let v = check_text(field, v, min, MAX_SHORT)?;
    if v.contains(['\n', '\r', '\t']) {
        return Err(ValidationError::new(field, "must be on one line"));
    }
    Ok(v)
}

/// Checks a list used as a set (storage locations, equipment ids): each
/// entry on one line, sorted, no duplicates, at most [`MAX_LINKS`].
pub fn validate_set(field: &'static str, items: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut out = items
        .iter()
        .map(|i| one_line(field, i, 1))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    if out.len() > MAX_LINKS {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_LINKS} entries"),
        ));
    }
    Ok(out)
}

/// What a user supplies to create a part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPart {
    /// The vessel's own part number.
    pub number: String,
    /// What it is.
    pub name: String,
    /// Who makes it.
    #[serde(default)]
    pub maker: String,
    /// The maker's reference.
    #[serde(default)]
    pub maker_ref: String,
    /// The unit (default `pcs`).
    #[serde(default = "default_unit")]
    pub unit: String,
    /// The equipment records it fits.
    #[serde(default)]
    pub equipment_ids: Vec<String>,
    /// The minimum stock (default 0: never below).
    #[serde(default)]
    pub min_stock: f64,
    /// Where it is kept.
    #[serde(default)]
    pub locations: Vec<String>,
}

fn default_unit() -> String {
    "pcs".into()
}

impl NewPart {
    /// Checks every field and trims texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.number = one_line("number", &self.number, 1)?;
        self.name = check_text("name", &self.name, 1, MAX_NAME)?;
        self.maker = one_line("maker", &self.maker, 0)?;
        self.maker_ref = one_line("maker_ref", &self.maker_ref, 0)?;
        self.unit = one_line("unit", &self.unit, 1)?;
        self.equipment_ids = validate_set("equipment_ids", &self.equipment_ids)?;
        validate_quantity("min_stock", self.min_stock)?;
        self.locations = validate_set("locations", &self.locations)?;
        Ok(self)
    }
}

/// A partial update of a part: only the fields present change. The part
/// number never changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartPatch {
    /// New name.
    pub name: Option<String>,
    /// New maker.
    pub maker: Option<String>,
    /// New maker's reference.
    pub maker_ref: Option<String>,
    /// New unit.
    pub unit: Option<String>,
    /// The new set of equipment records it fits.
    pub equipment_ids: Option<Vec<String>>,
    /// New minimum stock.
    pub min_stock: Option<f64>,
    /// The new set of storage locations.
    pub locations: Option<Vec<String>>,
}

impl PartPatch {
    /// Checks the fields present and trims texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(n) = &self.name {
            self.name = Some(check_text("name", n, 1, MAX_NAME)?);
        }
        if let Some(m) = &self.maker {
            self.maker = Some(one_line("maker", m, 0)?);
        }
        if let Some(r) = &self.maker_ref {
            self.maker_ref = Some(one_line("maker_ref", r, 0)?);
        }
        if let Some(u) = &self.unit {
            self.unit = Some(one_line("unit", u, 1)?);
        }
        if let Some(e) = &self.equipment_ids {
            self.equipment_ids = Some(validate_set("equipment_ids", e)?);
        }
        if let Some(m) = self.min_stock {
            validate_quantity("min_stock", m)?;
        }
        if let Some(l) = &self.locations {
            self.locations = Some(validate_set("locations", l)?);
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == PartPatch::default()
    }
}

/// What a user supplies to record a stock movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMovement {
    /// What it records.
    pub kind: MovementKind,
    /// The storage location.
    pub location: String,
    /// For a receipt or a consumption, how many units (more than 0); for
    /// an adjustment, the change of stock (+ or −, not 0).
    pub quantity: f64,
    /// Why; required for an adjustment.
    #[serde(default)]
    pub reason: String,
    /// The work order the parts were used on; set by the work-entry
    /// operation, never by a request.
    #[serde(skip)]
    pub work_order_id: Option<String>,
}

impl NewMovement {
    /// Checks the movement and trims its texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.location = one_line("location", &self.location, 1)?;
        self.reason = check_text("reason", &self.reason, 0, MAX_TEXT)?;
        match self.kind {
            MovementKind::Receipt | MovementKind::Consumption => {
                positive_quantity("quantity", self.quantity)?;
            }
            MovementKind::Adjustment => {
                validate_quantity("quantity", self.quantity.abs())?;
                if self.quantity == 0.0 {
                    return Err(ValidationError::new(
                        "quantity",
                        "an adjustment must change the stock (+ or −)",
                    ));
                }
                if self.reason.is_empty() {
                    return Err(ValidationError::new(
                        "reason",
                        "an adjustment needs a reason",
                    ));
                }
            }
        }
        Ok(self)
    }

    /// The change of stock it makes at its location.
    pub fn delta(&self) -> f64 {
        match self.kind {
            MovementKind::Receipt | MovementKind::Adjustment => self.quantity,
            MovementKind::Consumption => -self.quantity,
        }
    }
}

/// Parts used while doing a job, as recorded with the work done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartUse {
    /// The part record.
    pub part_id: String,
    /// The storage location they were taken from.
    pub location: String,
    /// How many units (more than 0).
    pub quantity: f64,
}

impl PartUse {
    /// Checks the use and trims its texts.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.part_id = one_line("part_id", &self.part_id, 1)?;
        self.location = one_line("location", &self.location, 1)?;
        positive_quantity("quantity", self.quantity)?;
        Ok(self)
    }
}

/// Where a requisition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequisitionStatus {
    /// Being put together on board; may be edited.
    Draft,
    /// Sent to the shore office; final on board.
    Submitted,
    /// Approved by the shore office (its latest decision).
    Approved,
    /// Turned down by the shore office (its latest decision).
    Rejected,
}

impl RequisitionStatus {
    /// Every status.
    pub const ALL: [RequisitionStatus; 4] = [
        RequisitionStatus::Draft,
        RequisitionStatus::Submitted,
        RequisitionStatus::Approved,
        RequisitionStatus::Rejected,
    ];

    /// The status's name as used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RequisitionStatus::Draft => "draft",
            RequisitionStatus::Submitted => "submitted",
            RequisitionStatus::Approved => "approved",
            RequisitionStatus::Rejected => "rejected",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            RequisitionStatus::Draft => "Draft",
            RequisitionStatus::Submitted => "Submitted",
            RequisitionStatus::Approved => "Approved",
            RequisitionStatus::Rejected => "Rejected",
        }
    }
}

impl fmt::Display for RequisitionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequisitionStatus {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequisitionStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("status", "must be draft, submitted, approved or rejected")
            })
    }
}

/// One line of a requisition: a part and how many to order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequisitionLine {
    /// The part record.
    pub part_id: String,
    /// How many units to order (more than 0).
    pub quantity: f64,
}

/// The submission of a requisition; never changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// Unique id of the entry.
    pub id: String,
    /// Who submitted it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The shore office's decision on a submitted requisition; never changed
/// or removed. A later decision overrides an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id of the entry.
    pub id: String,
    /// Who decided, signed as the shore's (`name@shore`).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Approved, or turned down.
    pub approved: bool,
    /// Why, or what the office will do; may be empty.
    pub note: String,
}

/// What the office supplies to decide on a requisition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// Approved, or turned down.
    pub approved: bool,
    /// Why; may be empty.
    #[serde(default)]
    pub note: String,
}

impl NewDecision {
    /// Checks and trims the note.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.note = check_text("note", &self.note, 0, MAX_TEXT)?;
        Ok(self)
    }
}

/// A requisition (an order request for spare parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requisition {
    /// Unique id (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// Draft, or submitted as soon as any submission exists.
    pub status: RequisitionStatus,
    /// A note for the office; may be empty.
    pub note: String,
    /// The lines, by part id.
    pub lines: Vec<RequisitionLine>,
    /// The submissions, oldest first (normally one).
    pub submissions: Vec<Submission>,
    /// The shore office's decisions, oldest first; absent in projections
    /// written before decisions existed.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// Who drafted it.
    pub created_by: String,
    /// When it was drafted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a user supplies to draft a requisition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequisition {
    /// A note for the office.
    #[serde(default)]
    pub note: String,
    /// The lines.
    #[serde(default)]
    pub lines: Vec<RequisitionLine>,
}

impl NewRequisition {
    /// Checks the note and the lines.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.note = check_text("note", &self.note, 0, MAX_TEXT)?;
        self.lines = validate_lines(self.lines)?;
        Ok(self)
    }
}

/// A partial update of a draft requisition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequisitionPatch {
    /// New note.
    pub note: Option<String>,
    /// The new lines, replacing the old ones.
    pub lines: Option<Vec<RequisitionLine>>,
}

impl RequisitionPatch {
    /// Checks the fields present.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(n) = &self.note {
            self.note = Some(check_text("note", n, 0, MAX_TEXT)?);
        }
        if let Some(l) = self.lines.take() {
            self.lines = Some(validate_lines(l)?);
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.note.is_none() && self.lines.is_none()
    }
}

/// Checks requisition lines: a part at most once, each quantity more than
/// 0, at most [`MAX_LINES`]; sorted by part id.
pub fn validate_lines(
    mut lines: Vec<RequisitionLine>,
) -> Result<Vec<RequisitionLine>, ValidationError> {
    for l in &mut lines {
        l.part_id = one_line("lines", &l.part_id, 1)?;
        positive_quantity("lines", l.quantity)?;
    }
    lines.sort_by(|a, b| a.part_id.cmp(&b.part_id));
    if lines.windows(2).any(|w| w[0].part_id == w[1].part_id) {
        return Err(ValidationError::new("lines", "names a part more than once"));
    }
    if lines.len() > MAX_LINES {
        return Err(ValidationError::new(
            "lines",
            format!("at most {MAX_LINES} lines"),
        ));
    }
    Ok(lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn movement(location: &str, delta: f64, kind: MovementKind) -> Movement {
        Movement {
            id: format!("m{delta}"),
            at: Utc.timestamp_opt(1_750_000_000, 0).unwrap(),
            location: location.into(),
            delta,
            kind,
            reason: String::new(),
            work_order_id: None,
            by: "chief".into(),
        }
    }

    #[test]
    fn stock_is_the_sum_of_movements_per_location() {
        let locations = vec![
            "ER store shelf 3".to_owned(),
            "Steering gear room".to_owned(),
        ];
        let movements = [
            movement("ER store shelf 3", 5.0, MovementKind::Receipt),
            movement("ER store shelf 3", -2.0, MovementKind::Consumption),
            movement("Bosun store", 0.3, MovementKind::Receipt),
            movement("Bosun store", 0.1, MovementKind::Receipt),
            movement("ER store shelf 3", -1.0, MovementKind::Adjustment),
        ];
        let levels = stock_levels(&locations, &movements);
        let by: Vec<(&str, f64)> = levels
            .iter()
            .map(|s| (s.location.as_str(), s.quantity))
            .collect();
        assert_eq!(
            by,
            [
                ("Bosun store", 0.4),
                ("ER store shelf 3", 2.0),
                ("Steering gear room", 0.0)
            ]
        );
        assert_eq!(total_stock(&levels), 2.4);
    }

    #[test]
    fn movements_are_checked() {
        let m = |kind, quantity: f64, reason: &str| NewMovement {
            kind,
            location: "ER store".into(),
            quantity,
            reason: reason.into(),
            work_order_id: None,
        };
        assert_eq!(
            m(MovementKind::Adjustment, -2.0, " ")
                .validated()
                .unwrap_err()
                .field,
            "reason"
        );
        let adj = m(MovementKind::Adjustment, -2.0, "Count after voyage")
            .validated()
            .unwrap();
        assert_eq!(adj.delta(), -2.0);
        assert_eq!(
            m(MovementKind::Consumption, 3.0, "")
                .validated()
                .unwrap()
                .delta(),
            -3.0
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e9] {
            assert_eq!(
                m(MovementKind::Receipt, bad, "")
                    .validated()
                    .unwrap_err()
                    .field,
                "quantity"
            );
        }
        assert_eq!(
            m(MovementKind::Adjustment, 0.0, "Count")
                .validated()
                .unwrap_err()
                .field,
            "quantity"
        );
    }

    #[test]
    fn requisition_lines_name_a_part_once() {
        let line = |p: &str, q| RequisitionLine {
            part_id: p.into(),
            quantity: q,
        };
        let ok = validate_lines(vec![line("b", 1.0), line("a", 2.0)]).unwrap();
        assert_eq!(ok[0].part_id, "a");
        assert!(validate_lines(vec![line("a", 1.0), line("a", 2.0)]).is_err());
        assert!(validate_lines(vec![line("a", 0.0)]).is_err());
    }
}
