//! Work orders: engineers open, assign and record work; the chief engineer
//! signs off; crew may read and comment. A signed-off work order takes no
//! further edits or work entries on either site, only comments.

use crate::{
    Actor, EQUIPMENT, RecordError, WORK_ORDER, comment_record, forbid_unless, load_kind,
    write_local, write_new,
};
use chrono::Utc;
use keelson_model::{
    NewSignOff, NewWorkEntry, NewWorkOrder, Record, WorkOrder, WorkOrderPatch, WorkStatus,
};
use keelson_store::{Db, RecordTx};
use keelson_sync::record::RecordDoc;

const NEEDS_ENGINEER: &str = "working on work orders needs the engineer role";

/// Opens a work order on a piece of equipment of `vessel_id`.
pub fn create_work_order(
    db: &Db,
    vessel_id: &str,
    new: NewWorkOrder,
    actor: &Actor,
) -> Result<WorkOrder, RecordError> {
    forbid_unless(actor.role.may_work_orders(), NEEDS_ENGINEER)?;
    let new = new.validated()?;
    db.transact(|tx| {
        match tx.load(&new.equipment_id)? {
            Some(e) if e.kind == EQUIPMENT && e.vessel_id == vessel_id => {}
            _ => {
                return Err(keelson_model::ValidationError::new(
                    "equipment_id",
                    "names no equipment of this vessel",
                )
                .into());
            }
        }
        as_work_order(write_new(
            tx,
            RecordDoc::create_work_order_as,
            vessel_id,
            &new,
            &actor.name,
            Utc::now(),
        )?)
    })
}

/// Changes a work order's fields; the status follows its life cycle.
pub fn patch_work_order(
    db: &Db,
    id: &str,
    patch: WorkOrderPatch,
    actor: &Actor,
) -> Result<WorkOrder, RecordError> {
    forbid_unless(actor.role.may_work_orders(), NEEDS_ENGINEER)?;
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_open(tx, id)?;
        if let Some(to) = patch.status {
            if !current.status.may_become(to) {
                return Err(RecordError::Conflict(format!(
                    "a work order that is {} cannot become {}",
                    current.status, to
                )));
            }
        }
        match doc
            .patch_work_order(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => as_work_order(write_local(tx, id, &mut doc, vec![change])?),
            None => Ok(current),
        }
    })
}

/// Records work done on a work order. The spare parts the entry lists are
/// taken out of stock in the same transaction, each as a consumption that
/// names the work order; a part short of stock refuses the whole entry.
pub fn add_work_entry(
    db: &Db,
    id: &str,
    entry: NewWorkEntry,
    actor: &Actor,
) -> Result<WorkOrder, RecordError> {
    forbid_unless(actor.role.may_work_orders(), NEEDS_ENGINEER)?;
    let entry = entry.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_open(tx, id)?;
        if current.status == WorkStatus::Cancelled {
            return Err(RecordError::Conflict(
                "the work order is cancelled: reopen it before recording work".into(),
            ));
        }
        forbid_unless(
            entry.parts.is_empty() || actor.role.may_move_stock(),
            "recording parts used needs the engineer role",
        )?;
        for used in &entry.parts {
            crate::part::consume_for_work_order(tx, &current.vessel_id, id, used, &actor.name)?;
        }
        let entry_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .add_work_entry(&entry_id, &entry, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        as_work_order(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// The chief engineer's sign-off of a done work order. It is final.
pub fn sign_off_work_order(
    db: &Db,
    id: &str,
    sign_off: NewSignOff,
    actor: &Actor,
) -> Result<WorkOrder, RecordError> {
    forbid_unless(
        actor.role.may_sign_off(),
        "signing off a work order needs the chief engineer",
    )?;
    let sign_off = sign_off.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_open(tx, id)?;
        if current.status != WorkStatus::Done {
            return Err(RecordError::Conflict(format!(
                "only a done work order can be signed off; this one is {}",
                current.status
            )));
        }
        let sign_off_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let change = doc
            .sign_off_work_order(&sign_off_id, &sign_off, &actor.name, now)
            .map_err(RecordError::from_codec)?;
        let signed = as_work_order(write_local(tx, id, &mut doc, vec![change])?)?;
        // The plan's next due point moves in the same transaction as the
        // sign-off that closes its job.
        if let Some(plan_id) = &signed.plan_id {
            crate::plan::mark_done(tx, plan_id, now, &actor.name)?;
        }
        Ok(signed)
    })
}

/// Adds a comment to a work order, signed off or not.
pub fn comment_work_order(
    db: &Db,
    id: &str,
    author: &str,
    text: &str,
) -> Result<WorkOrder, RecordError> {
    as_work_order(comment_record(db, id, WORK_ORDER, author, text)?)
}

/// Loads a work order that may still be edited: not yet signed off.
fn load_open(tx: &RecordTx<'_>, id: &str) -> Result<(RecordDoc, WorkOrder), RecordError> {
    let (doc, record) = load_kind(tx, id, WORK_ORDER)?;
    let current = as_work_order(record)?;
    if current.is_signed_off() {
        return Err(RecordError::Conflict(
            "the work order is signed off: it takes only comments now".into(),
        ));
    }
    Ok((doc, current))
}

fn as_work_order(r: Record) -> Result<WorkOrder, RecordError> {
    match r {
        Record::WorkOrder(w) => Ok(w),
        _ => Err(RecordError::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{actor, main_engine};
    use crate::{IncomingChange, Sender, apply_remote};
    use keelson_model::Role;
    use keelson_store::Site;

    fn setup(db: &Db) -> WorkOrder {
        let eq = main_engine(db);
        create_work_order(
            db,
            "v1",
            NewWorkOrder {
                title: "Overhaul fuel pump".into(),
                equipment_id: eq.id,
                description: String::new(),
                assignee: "second".into(),
                plan_id: None,
            },
            &actor("second", Role::Engineer),
        )
        .unwrap()
    }

    fn status(s: WorkStatus) -> WorkOrderPatch {
        WorkOrderPatch {
            status: Some(s),
            ..WorkOrderPatch::default()
        }
    }

    #[test]
    fn life_cycle_roles_and_the_final_sign_off() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let wo = setup(&db);
        let crew = actor("crew1", Role::Crew);
        let second = actor("second", Role::Engineer);
        let chief = actor("chief", Role::ChiefEngineer);
        assert!(matches!(
            patch_work_order(&db, &wo.id, status(WorkStatus::InProgress), &crew),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            patch_work_order(&db, &wo.id, status(WorkStatus::Done), &second),
            Err(RecordError::Conflict(_))
        ));
        assert!(matches!(
            sign_off_work_order(&db, &wo.id, NewSignOff::default(), &chief),
            Err(RecordError::Conflict(_))
        ));
        patch_work_order(&db, &wo.id, status(WorkStatus::InProgress), &second).unwrap();
        let entry = NewWorkEntry {
            text: "Replaced plunger and barrel".into(),
            hours: 3.5,
            parts: vec![],
        };
        add_work_entry(&db, &wo.id, entry.clone(), &second).unwrap();
        patch_work_order(&db, &wo.id, status(WorkStatus::Done), &second).unwrap();
        assert!(matches!(
            sign_off_work_order(&db, &wo.id, NewSignOff::default(), &second),
            Err(RecordError::Forbidden(_))
        ));
        let signed = sign_off_work_order(
            &db,
            &wo.id,
            NewSignOff {
                note: "Tested at sea".into(),
            },
            &chief,
        )
        .unwrap();
        assert_eq!(signed.status, WorkStatus::SignedOff);
        assert!((signed.hours_spent - 3.5).abs() < 1e-9);
        for refused in [
            patch_work_order(&db, &wo.id, status(WorkStatus::InProgress), &chief),
            add_work_entry(&db, &wo.id, entry, &chief),
            sign_off_work_order(&db, &wo.id, NewSignOff::default(), &chief),
        ] {
            assert!(matches!(refused, Err(RecordError::Conflict(_))));
        }
        let commented = comment_work_order(&db, &wo.id, "crew1", "Thanks").unwrap();
        assert_eq!(commented.comments.len(), 1);
        assert_eq!(db.work_order(&wo.id).unwrap().unwrap(), commented);
        let (list, total) = db
            .list_work_orders(&keelson_store::WorkOrderFilter {
                status: Some("signed_off".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((list.len(), total), (1, 1));
        let (_, history) = crate::history(&db, &wo.id).unwrap();
        let authors: Vec<_> = history.iter().filter_map(|h| h.author.as_deref()).collect();
        assert_eq!(
            authors,
            ["second", "second", "second", "second", "chief", "crew1"]
        );
    }

    /// Work entries and sign-offs are append-only for every sender: a
    /// batch that would remove or rewrite one is refused, whoever sends it.
    #[test]
    fn nobody_removes_or_rewrites_a_sign_off_or_a_work_entry() {
        use crate::check_edit;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let wo = setup(&db);
        let second = actor("second", Role::Engineer);
        patch_work_order(&db, &wo.id, status(WorkStatus::InProgress), &second).unwrap();
        let entry = NewWorkEntry {
            text: "Cleaned filter".into(),
            hours: 1.0,
            parts: vec![],
        };
        add_work_entry(&db, &wo.id, entry, &second).unwrap();
        patch_work_order(&db, &wo.id, status(WorkStatus::Done), &second).unwrap();
        let signed = sign_off_work_order(
            &db,
            &wo.id,
            NewSignOff::default(),
            &actor("chief", Role::ChiefEngineer),
        )
        .unwrap();
        let before = Record::WorkOrder(signed.clone());

        let mut unsigned = signed.clone();
        unsigned.sign_offs.clear();
        unsigned.status = WorkStatus::Done;
        let mut rewritten = signed.clone();
        rewritten.sign_offs[0].note = "never happened".into();
        let mut fewer_hours = signed.clone();
        fewer_hours.entries[0].hours = 0.5;
        for (sender, after) in [
            (Sender::Vessel, unsigned.clone()),
            (Sender::Shore, unsigned),
            (Sender::Vessel, rewritten),
            (Sender::Vessel, fewer_hours),
        ] {
            let err = check_edit(sender, Some(&before), &Record::WorkOrder(after)).unwrap_err();
            assert!(matches!(err, RecordError::Forbidden(_)), "{err}");
        }
        // Adding is fine for the vessel.
        let mut more = signed;
        more.sign_offs.push(keelson_model::SignOff {
            id: "s-2".into(),
            author: "master".into(),
            at: Utc::now(),
            note: String::new(),
        });
        check_edit(Sender::Vessel, Some(&before), &Record::WorkOrder(more)).unwrap();
    }

    /// A work order signed off on board and edited concurrently ashore (by
    /// a forged or stale change) merges signed off on both sides; a change
    /// that removes the sign-off is refused whole.
    #[test]
    fn sync_keeps_the_sign_off() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship = Db::open(dirs[0].path(), Site::Edge).unwrap();
        let shore = Db::open(dirs[1].path(), Site::Shore).unwrap();
        let wo = setup(&ship);
        let second = actor("second", Role::Engineer);
        patch_work_order(&ship, &wo.id, status(WorkStatus::InProgress), &second).unwrap();
        patch_work_order(&ship, &wo.id, status(WorkStatus::Done), &second).unwrap();
        let all = |db: &Db| -> Vec<IncomingChange> {
            db.outbound_changes("v1", 0, usize::MAX)
                .unwrap()
                .into_iter()
                .map(IncomingChange::from)
                .collect()
        };
        apply_remote(&shore, "v1", Sender::Vessel, &all(&ship), |_| Ok(())).unwrap();
        sign_off_work_order(
            &ship,
            &wo.id,
            NewSignOff::default(),
            &actor("chief", Role::ChiefEngineer),
        )
        .unwrap();
        apply_remote(&shore, "v1", Sender::Vessel, &all(&ship), |_| Ok(())).unwrap();
        let ashore = shore.work_order(&wo.id).unwrap().unwrap();
        assert_eq!(ashore.status, WorkStatus::SignedOff);

        // The shore comments; the ship takes it and stays signed off.
        comment_work_order(&shore, &wo.id, "office@shore", "Well done").unwrap();
        apply_remote(&ship, "v1", Sender::Shore, &all(&shore), |_| Ok(())).unwrap();
        let aboard = ship.work_order(&wo.id).unwrap().unwrap();
        assert_eq!(aboard.status, WorkStatus::SignedOff);
        assert_eq!(aboard.comments.len(), 1);
    }
}
