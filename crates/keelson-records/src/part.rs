//! Spare parts and requisitions: the chief engineer creates and edits
//! parts, adjusts their stock (with a reason) and handles requisitions;
//! engineers record parts received and used; crew may look. A consumption
//! never takes a location's stock below zero.

use crate::counter::check_equipment;
use crate::{
    Actor, PART, REQUISITION, RecordError, forbid_unless, load_kind, write_local, write_new,
};
use chrono::Utc;
use keelson_model::{
    MovementKind, NewMovement, NewPart, NewRequisition, Part, PartPatch, PartUse, Record,
    Requisition, RequisitionLine, RequisitionPatch, RequisitionStatus, ValidationError,
};
use keelson_store::{Db, RecordTx};
use keelson_sync::record::RecordDoc;

const NEEDS_CHIEF: &str = "managing spare parts needs the chief engineer";

/// Creates a part on `vessel_id`. Its number must be new on the vessel and
/// the equipment it names must exist there.
pub fn create_part(
    db: &Db,
    vessel_id: &str,
    new: NewPart,
    actor: &Actor,
) -> Result<Part, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    let new = new.validated()?;
    db.transact(|tx| {
        if tx.part_by_number(vessel_id, &new.number)?.is_some() {
            return Err(RecordError::Conflict(format!(
                "part number {} already exists on this vessel",
                new.number
            )));
        }
        for e in &new.equipment_ids {
            check_equipment(tx, vessel_id, e)?;
        }
        as_part(write_new(
            tx,
            RecordDoc::create_part_as,
            vessel_id,
            &new,
            &actor.name,
            Utc::now(),
        )?)
    })
}

/// Edits a part's fields, its equipment and its storage locations.
pub fn patch_part(db: &Db, id: &str, patch: PartPatch, actor: &Actor) -> Result<Part, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_kind(tx, id, PART)?;
        let current = as_part(current)?;
        for e in patch.equipment_ids.iter().flatten() {
            if !current.equipment_ids.contains(e) {
                check_equipment(tx, &current.vessel_id, e)?;
            }
        }
        match doc
            .patch_part(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => as_part(write_local(tx, id, &mut doc, vec![change])?),
            None => Ok(current),
        }
    })
}

/// Records a stock movement: a receipt or a consumption (engineers), or an
/// adjustment with a reason (the chief engineer).
pub fn record_movement(
    db: &Db,
    id: &str,
    movement: NewMovement,
    actor: &Actor,
) -> Result<Part, RecordError> {
    check_movement_role(movement.kind, actor)?;
    let movement = movement.validated()?;
    db.transact(|tx| move_stock(tx, id, &movement, &actor.name))
}

/// Takes `used` out of stock for work order `work_order_id` of
/// `vessel_id`, inside the work entry's transaction.
pub(crate) fn consume_for_work_order(
    tx: &mut RecordTx<'_>,
    vessel_id: &str,
    work_order_id: &str,
    used: &PartUse,
    author: &str,
) -> Result<(), RecordError> {
    match tx.load(&used.part_id)? {
        Some(r) if r.kind == PART && r.vessel_id == vessel_id => {}
        _ => {
            return Err(ValidationError::new(
                "parts",
                format!("names no spare part {} of this vessel", used.part_id),
            )
            .into());
        }
    }
    let movement = NewMovement {
        kind: MovementKind::Consumption,
        location: used.location.clone(),
        quantity: used.quantity,
        reason: String::new(),
        work_order_id: Some(work_order_id.to_owned()),
    };
    move_stock(tx, &used.part_id, &movement, author).map(|_| ())
}

fn check_movement_role(kind: MovementKind, actor: &Actor) -> Result<(), RecordError> {
    match kind {
        MovementKind::Receipt | MovementKind::Consumption => forbid_unless(
            actor.role.may_move_stock(),
            "recording parts received or used needs the engineer role",
        ),
        MovementKind::Adjustment => forbid_unless(
            actor.role.may_manage_parts(),
            "adjusting stock needs the chief engineer",
        ),
    }
}

fn move_stock(
    tx: &mut RecordTx<'_>,
    id: &str,
    movement: &NewMovement,
    author: &str,
) -> Result<Part, RecordError> {
    let (mut doc, current) = load_kind(tx, id, PART)?;
    let current = as_part(current)?;
    check_stock(&current, movement)?;
    let movement_id = uuid::Uuid::new_v4().to_string();
    let change = doc
        .add_movement(&movement_id, movement, author, Utc::now())
        .map_err(RecordError::from_codec)?;
    as_part(write_local(tx, id, &mut doc, vec![change])?)
}

/// A movement may not take a location's stock below zero: there is no
/// taking out what the store does not hold. A receipt always fits.
pub fn check_stock(part: &Part, movement: &NewMovement) -> Result<(), RecordError> {
    let there = part.stock_at(&movement.location);
    let after = there + movement.delta();
    // A tolerance of a billionth keeps 0.3 - 0.1 - 0.2 from reading as
    // below zero.
    if after < -1e-9 {
        return Err(RecordError::Conflict(format!(
            "only {there} {unit} of {number} in {location}: cannot take {qty} {unit}",
            unit = part.unit,
            number = part.number,
            location = movement.location,
            qty = -movement.delta(),
        )));
    }
    Ok(())
}

/// Drafts a requisition (the chief engineer); its parts must exist on the
/// vessel.
pub fn create_requisition(
    db: &Db,
    vessel_id: &str,
    new: NewRequisition,
    actor: &Actor,
) -> Result<Requisition, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    let new = new.validated()?;
    db.transact(|tx| {
        check_lines(tx, vessel_id, &new.lines)?;
        write_requisition(tx, vessel_id, &new, actor)
    })
}

/// Drafts a requisition with every part of the vessel below its minimum
/// stock, each for the quantity that brings it back to the minimum. With
/// no part below its minimum there is nothing to order: a conflict.
pub fn draft_from_minimum(
    db: &Db,
    vessel_id: &str,
    actor: &Actor,
) -> Result<Requisition, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    db.transact(|tx| {
        let lines: Vec<RequisitionLine> = tx
            .parts_below_minimum(vessel_id)?
            .iter()
            .map(|p| RequisitionLine {
                part_id: p.id.clone(),
                quantity: p.shortfall(),
            })
            .filter(|l| l.quantity > 0.0)
            .collect();
        if lines.is_empty() {
            return Err(RecordError::Conflict(
                "no spare part is below its minimum stock".into(),
            ));
        }
        let new = NewRequisition {
            note: "Parts below minimum stock".into(),
            lines,
        }
        .validated()?;
        write_requisition(tx, vessel_id, &new, actor)
    })
}

fn write_requisition(
    tx: &mut RecordTx<'_>,
    vessel_id: &str,
    new: &NewRequisition,
    actor: &Actor,
) -> Result<Requisition, RecordError> {
    as_requisition(write_new(
        tx,
        RecordDoc::create_requisition_as,
        vessel_id,
        new,
        &actor.name,
        Utc::now(),
    )?)
}

/// Edits a draft requisition's note or lines.
pub fn patch_requisition(
    db: &Db,
    id: &str,
    patch: RequisitionPatch,
    actor: &Actor,
) -> Result<Requisition, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_draft(tx, id)?;
        if let Some(lines) = &patch.lines {
            check_lines(tx, &current.vessel_id, lines)?;
        }
        match doc
            .patch_requisition(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => as_requisition(write_local(tx, id, &mut doc, vec![change])?),
            None => Ok(current),
        }
    })
}

/// Submits a draft requisition with at least one line; final.
pub fn submit_requisition(db: &Db, id: &str, actor: &Actor) -> Result<Requisition, RecordError> {
    forbid_unless(actor.role.may_manage_parts(), NEEDS_CHIEF)?;
    db.transact(|tx| {
        let (mut doc, current) = load_draft(tx, id)?;
        if current.lines.is_empty() {
            return Err(RecordError::Conflict(
                "the requisition has no lines: add a part before submitting".into(),
            ));
        }
        let submission_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .submit_requisition(&submission_id, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        as_requisition(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// Records the shore office's decision on a submitted requisition. Only
/// the office decides (an author signed as the shore's); a later decision
/// overrides an earlier one, and both stay in the record.
pub fn decide_requisition(
    db: &Db,
    id: &str,
    decision: keelson_model::NewDecision,
    actor: &Actor,
) -> Result<Requisition, RecordError> {
    forbid_unless(
        actor.name.ends_with(crate::SHORE_AUTHOR_SUFFIX),
        "only the shore office decides on a requisition",
    )?;
    let decision = decision.validated()?;
    db.transact(|tx| {
        let (mut doc, record) = load_kind(tx, id, REQUISITION)?;
        if as_requisition(record)?.status == RequisitionStatus::Draft {
            return Err(RecordError::Conflict(
                "the requisition is still a draft: the vessel has not submitted it".into(),
            ));
        }
        let decision_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .decide_requisition(&decision_id, &decision, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        as_requisition(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// Loads a requisition that may still change: a draft.
fn load_draft(tx: &RecordTx<'_>, id: &str) -> Result<(RecordDoc, Requisition), RecordError> {
    let (doc, record) = load_kind(tx, id, REQUISITION)?;
    let current = as_requisition(record)?;
    if current.status != RequisitionStatus::Draft {
        return Err(RecordError::Conflict(
            "the requisition is submitted: it no longer changes".into(),
        ));
    }
    Ok((doc, current))
}

/// Every line must name a part of the vessel.
fn check_lines(
    tx: &RecordTx<'_>,
    vessel_id: &str,
    lines: &[RequisitionLine],
) -> Result<(), RecordError> {
    for l in lines {
        match tx.load(&l.part_id)? {
            Some(r) if r.kind == PART && r.vessel_id == vessel_id => {}
            _ => {
                return Err(ValidationError::new(
                    "lines",
                    format!("names no spare part {} of this vessel", l.part_id),
                )
                .into());
            }
        }
    }
    Ok(())
}

fn as_part(r: Record) -> Result<Part, RecordError> {
    match r {
        Record::Part(p) => Ok(p),
        _ => Err(RecordError::NotFound),
    }
}

fn as_requisition(r: Record) -> Result<Requisition, RecordError> {
    match r {
        Record::Requisition(q) => Ok(q),
        _ => Err(RecordError::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{actor, main_engine};
    use crate::{IncomingChange, Sender, apply_remote, check_edit};
    use keelson_model::Role;
    use keelson_store::Site;

    const SHELF: &str = "ER store shelf 3";

    fn new_part(db: &Db, number: &str, min_stock: f64) -> Part {
        let eq = main_engine(db);
        create_part(
            db,
            "v1",
            NewPart {
                number: number.into(),
                name: "Fuel filter element".into(),
                maker: "Boll & Kirch".into(),
                maker_ref: "1940".into(),
                unit: "pcs".into(),
                equipment_ids: vec![eq.id],
                min_stock,
                locations: vec![SHELF.into()],
            },
            &actor("chief", Role::ChiefEngineer),
        )
        .unwrap()
    }

    fn movement(kind: MovementKind, quantity: f64, reason: &str) -> NewMovement {
        NewMovement {
            kind,
            location: SHELF.into(),
            quantity,
            reason: reason.into(),
            work_order_id: None,
        }
    }

    #[test]
    fn stock_adds_up_and_never_goes_below_zero() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let p = new_part(&db, "FF-1", 4.0);
        let second = actor("second", Role::Engineer);
        let chief = actor("chief", Role::ChiefEngineer);
        let p1 = record_movement(
            &db,
            &p.id,
            movement(MovementKind::Receipt, 6.0, ""),
            &second,
        )
        .unwrap();
        assert_eq!((p1.total, p1.below_minimum), (6.0, false));
        let p2 = record_movement(
            &db,
            &p.id,
            movement(MovementKind::Consumption, 2.5, ""),
            &second,
        )
        .unwrap();
        assert_eq!(p2.stock_at(SHELF), 3.5);
        assert!(p2.below_minimum);
        let err = record_movement(
            &db,
            &p.id,
            movement(MovementKind::Consumption, 4.0, ""),
            &second,
        )
        .unwrap_err();
        assert!(matches!(err, RecordError::Conflict(_)), "{err}");
        // Nothing is taken from a location that holds nothing.
        let mut elsewhere = movement(MovementKind::Consumption, 1.0, "");
        elsewhere.location = "Bosun store".into();
        assert!(matches!(
            record_movement(&db, &p.id, elsewhere, &second),
            Err(RecordError::Conflict(_))
        ));
        // An adjustment needs a reason and the chief engineer, and may not
        // go below zero either.
        assert!(matches!(
            record_movement(
                &db,
                &p.id,
                movement(MovementKind::Adjustment, -1.0, ""),
                &chief
            ),
            Err(RecordError::Invalid(_))
        ));
        assert!(matches!(
            record_movement(
                &db,
                &p.id,
                movement(MovementKind::Adjustment, -1.0, "Count"),
                &second
            ),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            record_movement(
                &db,
                &p.id,
                movement(MovementKind::Adjustment, -9.0, "Count"),
                &chief
            ),
            Err(RecordError::Conflict(_))
        ));
        let p3 = record_movement(
            &db,
            &p.id,
            movement(MovementKind::Adjustment, -0.5, "Found one damaged"),
            &chief,
        )
        .unwrap();
        assert_eq!(p3.total, 3.0);
        assert_eq!(db.part(&p.id).unwrap().unwrap(), p3);
    }

    #[test]
    fn roles_for_parts_and_requisitions() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let crew = actor("crew1", Role::Crew);
        let second = actor("second", Role::Engineer);
        let chief = actor("chief", Role::ChiefEngineer);
        let p = new_part(&db, "FF-1", 4.0);
        let receipt = || movement(MovementKind::Receipt, 1.0, "");
        assert!(matches!(
            record_movement(&db, &p.id, receipt(), &crew),
            Err(RecordError::Forbidden(_))
        ));
        let rename = PartPatch {
            name: Some("Filter element".into()),
            ..PartPatch::default()
        };
        assert!(matches!(
            patch_part(&db, &p.id, rename.clone(), &second),
            Err(RecordError::Forbidden(_))
        ));
        patch_part(&db, &p.id, rename, &chief).unwrap();
        assert!(matches!(
            draft_from_minimum(&db, "v1", &second),
            Err(RecordError::Forbidden(_))
        ));
        let twice = NewPart {
            number: "FF-1".into(),
            name: "Again".into(),
            maker: String::new(),
            maker_ref: String::new(),
            unit: "pcs".into(),
            equipment_ids: vec![],
            min_stock: 0.0,
            locations: vec![],
        };
        assert!(matches!(
            create_part(&db, "v1", twice, &chief),
            Err(RecordError::Conflict(_))
        ));
    }

    #[test]
    fn a_draft_from_minimum_stock_orders_the_shortfall() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let chief = actor("chief", Role::ChiefEngineer);
        let low = new_part(&db, "FF-1", 4.0);
        record_movement(
            &db,
            &low.id,
            movement(MovementKind::Receipt, 1.5, ""),
            &chief,
        )
        .unwrap();
        let eq = db.list_equipment(None).unwrap()[0].id.clone();
        let plenty = create_part(
            &db,
            "v1",
            NewPart {
                number: "OR-7".into(),
                name: "O-ring".into(),
                maker: String::new(),
                maker_ref: String::new(),
                unit: "pcs".into(),
                equipment_ids: vec![eq],
                min_stock: 0.0,
                locations: vec![],
            },
            &chief,
        )
        .unwrap();
        let draft = draft_from_minimum(&db, "v1", &chief).unwrap();
        assert_eq!(draft.status, RequisitionStatus::Draft);
        assert_eq!(
            draft.lines,
            [RequisitionLine {
                part_id: low.id.clone(),
                quantity: 2.5
            }]
        );
        let edited = patch_requisition(
            &db,
            &draft.id,
            RequisitionPatch {
                lines: Some(vec![
                    RequisitionLine {
                        part_id: low.id.clone(),
                        quantity: 3.0,
                    },
                    RequisitionLine {
                        part_id: plenty.id.clone(),
                        quantity: 10.0,
                    },
                ]),
                ..RequisitionPatch::default()
            },
            &chief,
        )
        .unwrap();
        assert_eq!(edited.lines.len(), 2);
        let submitted = submit_requisition(&db, &draft.id, &chief).unwrap();
        assert_eq!(submitted.status, RequisitionStatus::Submitted);
        assert!(matches!(
            submit_requisition(&db, &draft.id, &chief),
            Err(RecordError::Conflict(_))
        ));
        assert!(matches!(
            patch_requisition(
                &db,
                &draft.id,
                RequisitionPatch {
                    note: Some("More".into()),
                    ..RequisitionPatch::default()
                },
                &chief
            ),
            Err(RecordError::Conflict(_))
        ));
        record_movement(
            &db,
            &low.id,
            movement(MovementKind::Receipt, 3.0, ""),
            &chief,
        )
        .unwrap();
        assert!(matches!(
            draft_from_minimum(&db, "v1", &chief),
            Err(RecordError::Conflict(_))
        ));
    }

    /// Parts and requisitions reach the shore whole; the shore may not
    /// change a part's fields nor remove a movement or a submission.
    #[test]
    fn sync_checks_parts_like_every_record() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship = Db::open(dirs[0].path(), Site::Edge).unwrap();
        let shore = Db::open(dirs[1].path(), Site::Shore).unwrap();
        let chief = actor("chief", Role::ChiefEngineer);
        let p = new_part(&ship, "FF-1", 4.0);
        let p = record_movement(
            &ship,
            &p.id,
            movement(MovementKind::Receipt, 2.0, ""),
            &chief,
        )
        .unwrap();
        let r = draft_from_minimum(&ship, "v1", &chief).unwrap();
        let r = submit_requisition(&ship, &r.id, &chief).unwrap();
        let all: Vec<IncomingChange> = ship
            .outbound_changes("v1", 0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(IncomingChange::from)
            .collect();
        apply_remote(&shore, "v1", Sender::Vessel, &all, |_| Ok(())).unwrap();
        assert_eq!(shore.part(&p.id).unwrap().unwrap(), p);
        assert_eq!(shore.requisition(&r.id).unwrap().unwrap(), r);
        // Another vessel may not send them as its own.
        assert!(matches!(
            apply_remote(&shore, "v2", Sender::Vessel, &all, |_| Ok(())),
            Err(RecordError::WrongVessel { .. })
        ));

        let before = Record::Part(p.clone());
        let mut fewer = p.clone();
        fewer.movements.clear();
        let mut renamed = p.clone();
        renamed.min_stock = 0.0;
        let mut unsubmitted = r.clone();
        unsubmitted.submissions.clear();
        for (sender, before, after) in [
            (Sender::Vessel, before.clone(), Record::Part(fewer)),
            (Sender::Shore, before, Record::Part(renamed)),
            (
                Sender::Vessel,
                Record::Requisition(r.clone()),
                Record::Requisition(unsubmitted),
            ),
        ] {
            let err = check_edit(sender, Some(&before), &after).unwrap_err();
            assert!(matches!(err, RecordError::Forbidden(_)), "{err}");
        }
    }
}
