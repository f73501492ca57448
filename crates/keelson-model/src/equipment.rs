//! Equipment: the vessel's systems and components, numbered with the
//! project's own hierarchical codes, with their criticality (ISM Code 10.3).
//!
//! # Codes
//!
//! A code is one to four numbers joined by dots, each 1 to 999 without a
//! leading zero: `6` is a system, `6.1` a sub-system of it, `6.1.3` a
//! component of that sub-system. The parent of a code is the code without
//! its last number; a one-number code hangs directly under the vessel, which
//! is the root of the tree and has no record of its own. The scheme is
//! Keelson's own (licensed classification tables are not shipped); a fleet
//! may give the numbers whatever meaning it likes. A code never changes after
//! the equipment is created, because work orders and children refer to it.

use crate::ValidationError;
use crate::fault::check_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest equipment name accepted, in characters.
pub const MAX_NAME: usize = 200;
/// Longest maker, model or serial accepted, in characters.
pub const MAX_MAKER_FIELD: usize = 200;
/// Most tags one piece of equipment may link.
pub const MAX_TAGS: usize = 64;
/// Longest linked tag name accepted, in characters.
pub const MAX_TAG_NAME: usize = 128;
/// Most numbers in a code.
pub const MAX_CODE_DEPTH: usize = 4;

/// Where a piece of equipment sits in the tree. The vessel is the root and
/// has no record of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A system or sub-system; may hold other systems and components.
    System,
    /// A component; a leaf of the tree.
    Component,
}

impl Level {
    /// Every level, root side first.
    pub const ALL: [Level; 2] = [Level::System, Level::Component];

    /// The level's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::System => "system",
            Level::Component => "component",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ValidationError::new("level", "must be system or component"))
    }
}

/// How much the ship depends on a piece of equipment. `Critical` is the
/// ISM Code's "critical equipment" (10.3): its sudden failure may lead to a
/// hazardous situation, so it gets its own checks and spares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Failure hinders operation but is not hazardous.
    Normal,
    /// Failure degrades an essential function.
    Important,
    /// ISM 10.3 critical equipment.
    Critical,
}

impl Criticality {
    /// Every criticality, lowest first.
    pub const ALL: [Criticality; 3] = [
        Criticality::Normal,
        Criticality::Important,
        Criticality::Critical,
    ];

    /// The criticality's name as used in the API and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Normal => "normal",
            Criticality::Important => "important",
            Criticality::Critical => "critical",
        }
    }
}

impl fmt::Display for Criticality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Criticality {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Criticality::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("criticality", "must be critical, important or normal")
            })
    }
}

/// Checks an equipment code (see the module documentation).
pub fn validate_code(code: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            "code",
            format!(
                "must be 1 to {MAX_CODE_DEPTH} numbers of 1-999 joined by dots, \
                 without leading zeros, such as 6, 6.1 or 6.1.3"
            ),
        )
    };
    let parts: Vec<&str> = code.split('.').collect();
    if parts.len() > MAX_CODE_DEPTH {
        return Err(bad());
    }
    for p in parts {
        let ok = !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && !p.starts_with('0');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// The parent of a valid code, or `None` for a code directly under the
/// vessel.
pub fn parent_code(code: &str) -> Option<&str> {
    code.rsplit_once('.').map(|(parent, _)| parent)
}

/// A key that sorts codes in tree order: `6.2` before `6.10`, a parent
/// before its children.
pub fn code_sort_key(code: &str) -> Vec<u32> {
    code.split('.')
        .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
        .collect()
}

/// A piece of equipment as the API, the UI and the projections see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equipment {
    /// Unique id of the record (a UUID).
    pub id: String,
    /// The vessel it belongs to.
    pub vessel_id: String,
    /// Its hierarchical code, unique on the vessel.
    pub code: String,
    /// The code of the system it belongs to; `None` directly under the vessel.
    pub parent_code: Option<String>,
    /// What it is called on board.
    pub name: String,
    /// System or component.
    pub level: Level,
    /// How much the ship depends on it.
    pub criticality: Criticality,
    /// Who made it; may be empty.
    pub maker: String,
    /// The maker's model; may be empty.
    pub model: String,
    /// The serial number; may be empty.
    pub serial: String,
    /// Names of the sensor tags that measure it, sorted.
    pub tags: Vec<String>,
    /// Who created the record.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a user supplies to add a piece of equipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEquipment {
    /// Its hierarchical code.
    pub code: String,
    /// What it is called on board.
    pub name: String,
    /// System or component.
    pub level: Level,
    /// How much the ship depends on it (default normal).
    #[serde(default = "default_criticality")]
    pub criticality: Criticality,
    /// Who made it.
    #[serde(default)]
    pub maker: String,
    /// The maker's model.
    #[serde(default)]
    pub model: String,
    /// The serial number.
    #[serde(default)]
    pub serial: String,
    /// Names of the sensor tags that measure it.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_criticality() -> Criticality {
    Criticality::Normal
}

impl NewEquipment {
    /// Checks the code, lengths and tags, and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        self.code = self.code.trim().to_owned();
        validate_code(&self.code)?;
        if self.level == Level::Component && parent_code(&self.code).is_none() {
            return Err(ValidationError::new(
                "level",
                "a component belongs to a system: give it a code such as 6.1",
            ));
        }
        self.name = check_text("name", &self.name, 1, MAX_NAME)?;
        self.maker = check_text("maker", &self.maker, 0, MAX_MAKER_FIELD)?;
        self.model = check_text("model", &self.model, 0, MAX_MAKER_FIELD)?;
        self.serial = check_text("serial", &self.serial, 0, MAX_MAKER_FIELD)?;
        self.tags = validate_tags(&self.tags)?;
        Ok(self)
    }
}

/// A partial update of a piece of equipment: only the fields present change.
/// The code never changes (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipmentPatch {
    /// New name.
    pub name: Option<String>,
    /// New level.
    pub level: Option<Level>,
    /// New criticality.
    pub criticality: Option<Criticality>,
    /// New maker.
    pub maker: Option<String>,
    /// New model.
    pub model: Option<String>,
    /// New serial number.
    pub serial: Option<String>,
    /// The new set of linked tags (replaces the old set).
    pub tags: Option<Vec<String>>,
}

impl EquipmentPatch {
    /// Checks lengths and tags, and trims surrounding white space.
    pub fn validated(mut self) -> Result<Self, ValidationError> {
        if let Some(n) = &self.name {
            self.name = Some(check_text("name", n, 1, MAX_NAME)?);
        }
        for (field, value) in [
            ("maker", &mut self.maker),
            ("model", &mut self.model),
            ("serial", &mut self.serial),
        ] {
            if let Some(v) = value.as_deref() {
                *value = Some(check_text(field, v, 0, MAX_MAKER_FIELD)?);
            }
        }
        if let Some(t) = &self.tags {
            self.tags = Some(validate_tags(t)?);
        }
        Ok(self)
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.level.is_none()
            && self.criticality.is_none()
            && self.maker.is_none()
            && self.model.is_none()
            && self.serial.is_none()
            && self.tags.is_none()
    }
}

/// Checks linked tag names and returns them trimmed, sorted and without
/// duplicates.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let t = check_text("tags", t, 1, MAX_TAG_NAME)?;
        if t.contains(['\n', '\r', '\t']) {
            return Err(ValidationError::new(
                "tags",
                "a tag name must be on one line",
            ));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(ValidationError::new(
            "tags",
            format!("at most {MAX_TAGS} tags may be linked"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for ok in ["6", "6.1", "6.1.3", "999.1.20.7"] {
            assert!(validate_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "0",
            "6.",
            ".6",
            "6..1",
            "06",
            "6.01",
            "1000",
            "a",
            "6.1.2.3.4",
            "6 1",
            "-1",
        ] {
            assert!(validate_code(bad).is_err(), "{bad}");
        }
        assert_eq!(parent_code("6.1.3"), Some("6.1"));
        assert_eq!(parent_code("6"), None);
        let mut codes = vec!["6.10", "6.2", "6", "10", "6.2.1"];
        codes.sort_by_key(|c| code_sort_key(c));
        assert_eq!(codes, ["6", "6.2", "6.2.1", "6.10", "10"]);
    }

    #[test]
    fn new_equipment_validation() {
        let new = NewEquipment {
            code: " 6.1 ".into(),
            name: " Main engine ".into(),
            level: Level::System,
            criticality: Criticality::Critical,
            maker: String::new(),
            model: String::new(),
            serial: String::new(),
            tags: vec!["me_rpm".into(), "me_exh_temp".into(), "me_rpm".into()],
        };
        let ok = new.clone().validated().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.code, "6.1");
        assert_eq!(ok.name, "Main engine");
        assert_eq!(ok.tags, ["me_exh_temp", "me_rpm"]);
        let top_component = NewEquipment {
            code: "6".into(),
            level: Level::Component,
            ..new.clone()
        };
        assert_eq!(top_component.validated().unwrap_err().field, "level");
        let bad_code = NewEquipment {
            code: "6-1".into(),
            ..new
        };
        assert_eq!(bad_code.validated().unwrap_err().field, "code");
    }
}
