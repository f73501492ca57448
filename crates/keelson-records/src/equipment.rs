//! Equipment records: only the chief engineer (or the master) adds and
//! edits them, codes are unique on a vessel, and the tree holds together
//! (a parent code names an existing system).

use crate::{Actor, EQUIPMENT, RecordError, forbid_unless, load_kind, write_local, write_new};
use chrono::Utc;
use keelson_model::equipment::parent_code;
use keelson_model::{Equipment, EquipmentPatch, Level, NewEquipment, Record};
use keelson_store::{Db, RecordTx};
use keelson_sync::record::RecordDoc;

const NEEDS_CHIEF: &str = "adding or editing equipment needs the chief engineer";

/// Adds a piece of equipment to `vessel_id`'s tree.
pub fn create_equipment(
    db: &Db,
    vessel_id: &str,
    new: NewEquipment,
    actor: &Actor,
) -> Result<Equipment, RecordError> {
    forbid_unless(actor.role.may_manage_equipment(), NEEDS_CHIEF)?;
    let new = new.validated()?;
    db.transact(|tx| {
        if tx.equipment_by_code(vessel_id, &new.code)?.is_some() {
            return Err(RecordError::Conflict(format!(
                "equipment {} already exists",
                new.code
            )));
        }
        check_parent(tx, vessel_id, &new.code)?;
        as_equipment(write_new(
            tx,
            RecordDoc::create_equipment_as,
            vessel_id,
            &new,
            &actor.name,
            Utc::now(),
        )?)
    })
}

/// Edits a piece of equipment. Its code never changes.
pub fn patch_equipment(
    db: &Db,
    id: &str,
    patch: EquipmentPatch,
    actor: &Actor,
) -> Result<Equipment, RecordError> {
    forbid_unless(actor.role.may_manage_equipment(), NEEDS_CHIEF)?;
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_kind(tx, id, EQUIPMENT)?;
        let current = as_equipment(current)?;
        if patch.level == Some(Level::Component)
            && current.level == Level::System
            && tx.equipment_below(&current.vessel_id, &current.code)? > 0
        {
            return Err(RecordError::Conflict(format!(
                "system {} holds other equipment, so it cannot become a component",
                current.code
            )));
        }
        match doc
            .patch_equipment(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => as_equipment(write_local(tx, id, &mut doc, vec![change])?),
            None => Ok(current),
        }
    })
}

/// A code's parent, when it has one, must be an existing system.
fn check_parent(tx: &RecordTx<'_>, vessel_id: &str, code: &str) -> Result<(), RecordError> {
    let Some(parent) = parent_code(code) else {
        return Ok(());
    };
    match tx.equipment_by_code(vessel_id, parent)? {
        Some(p) if p.level == Level::System => Ok(()),
        Some(_) => Err(RecordError::Conflict(format!(
            "{parent} is a component, so nothing can sit below it"
        ))),
        None => Err(RecordError::Conflict(format!(
            "add system {parent} before {code}"
        ))),
    }
}

fn as_equipment(r: Record) -> Result<Equipment, RecordError> {
    match r {
        Record::Equipment(e) => Ok(e),
        _ => Err(RecordError::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keelson_model::{Criticality, Role};
    use keelson_store::Site;

    fn actor(role: Role) -> Actor {
        Actor {
            name: "chief".into(),
            role,
        }
    }

    pub(crate) fn new(code: &str, level: Level) -> NewEquipment {
        NewEquipment {
            code: code.into(),
            name: format!("Equipment {code}"),
            level,
            criticality: Criticality::Normal,
            maker: String::new(),
            model: String::new(),
            serial: String::new(),
            tags: vec![],
        }
    }

    #[test]
    fn the_tree_holds_together() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let chief = actor(Role::ChiefEngineer);
        assert!(matches!(
            create_equipment(&db, "v1", new("6", Level::System), &actor(Role::Engineer)),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            create_equipment(&db, "v1", new("6.1", Level::System), &chief),
            Err(RecordError::Conflict(_))
        ));
        let six = create_equipment(&db, "v1", new("6", Level::System), &chief).unwrap();
        assert!(matches!(
            create_equipment(&db, "v1", new("6", Level::System), &chief),
            Err(RecordError::Conflict(_))
        ));
        let pump = create_equipment(&db, "v1", new("6.1", Level::Component), &chief).unwrap();
        assert!(matches!(
            create_equipment(&db, "v1", new("6.1.1", Level::Component), &chief),
            Err(RecordError::Conflict(_))
        ));
        let to_component = EquipmentPatch {
            level: Some(Level::Component),
            ..EquipmentPatch::default()
        };
        assert!(matches!(
            patch_equipment(&db, &six.id, to_component, &chief),
            Err(RecordError::Invalid(_) | RecordError::Conflict(_))
        ));
        let renamed = patch_equipment(
            &db,
            &pump.id,
            EquipmentPatch {
                name: Some("Fuel pump".into()),
                tags: Some(vec!["fo_press".into()]),
                ..EquipmentPatch::default()
            },
            &chief,
        )
        .unwrap();
        assert_eq!(renamed.name, "Fuel pump");
        assert_eq!(db.equipment(&pump.id).unwrap().unwrap(), renamed);
        let codes: Vec<_> = db
            .list_equipment(Some("v1"))
            .unwrap()
            .into_iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, ["6", "6.1"]);
        let (kind, history) = crate::history(&db, &pump.id).unwrap();
        assert_eq!(kind, "equipment");
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|h| h.author.as_deref() == Some("chief")));
    }
}
