//! Roles on board and ashore, and what each may do.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role on board. Roles are ordered: each one may do everything the roles
/// below it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees readings and alarms, logs faults, comments, records readings.
    Crew,
    /// Crew, plus works faults (status, cause, corrective action).
    Engineer,
    /// Engineer, plus closes faults and signs off work.
    ChiefEngineer,
    /// Everything, plus user administration.
    Master,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [
        Role::Crew,
        Role::Engineer,
        Role::ChiefEngineer,
        Role::Master,
    ];

    /// The role's name as used in configuration, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Crew => "crew",
            Role::Engineer => "engineer",
            Role::ChiefEngineer => "chief_engineer",
            Role::Master => "master",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            Role::Crew => "Crew",
            Role::Engineer => "Engineer",
            Role::ChiefEngineer => "Chief engineer",
            Role::Master => "Master",
        }
    }

    /// Whether this role may change a fault's status, cause or corrective action.
    pub fn may_work_faults(self) -> bool {
        self >= Role::Engineer
    }

    /// Whether this role may close a fault (the chief engineer's decision).
    pub fn may_close_faults(self) -> bool {
        self >= Role::ChiefEngineer
    }

    /// Whether this role may open, assign and record work on work orders.
    pub fn may_work_orders(self) -> bool {
        self >= Role::Engineer
    }

    /// Whether this role may sign off a work order (final).
    pub fn may_sign_off(self) -> bool {
        self >= Role::ChiefEngineer
    }

    /// Whether this role may add and edit equipment records.
    pub fn may_manage_equipment(self) -> bool {
        self >= Role::ChiefEngineer
    }

    /// Whether this role may record a counter reading by hand (everyone on
    /// board reads meters).
    pub fn may_record_readings(self) -> bool {
        self >= Role::Crew
    }

    /// Whether this role may create, edit and postpone maintenance plans.
    pub fn may_manage_plans(self) -> bool {
        self >= Role::ChiefEngineer
    }

    /// Whether the role may add, change and remove users on board.
    pub fn may_manage_users(self) -> bool {
        self >= Role::Master
    }

    /// Whether this role may create counters and correct their totals.
    pub fn may_manage_counters(self) -> bool {
        self >= Role::ChiefEngineer
    }

    /// Whether this role may record spare parts received and consumed.
    pub fn may_move_stock(self) -> bool {
        self >= Role::Engineer
    }

    /// Whether this role may create and edit spare parts, adjust their
    /// stock (with a reason) and handle requisitions.
    pub fn may_manage_parts(self) -> bool {
        self >= Role::ChiefEngineer
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected crew, engineer, chief_engineer or master)")
            })
    }
}

/// A role at the shore office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShoreRole {
    /// Reads everything of the organization's vessels.
    Viewer,
    /// Viewer, plus comments, approvals and planned work.
    Superintendent,
    /// Superintendent, plus vessel registration and users.
    FleetAdmin,
}

impl ShoreRole {
    /// Every role, lowest first.
    pub const ALL: [ShoreRole; 3] = [
        ShoreRole::Viewer,
        ShoreRole::Superintendent,
        ShoreRole::FleetAdmin,
    ];

    /// The role's name as used in the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ShoreRole::Viewer => "viewer",
            ShoreRole::Superintendent => "superintendent",
            ShoreRole::FleetAdmin => "fleet_admin",
        }
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            ShoreRole::Viewer => "Viewer",
            ShoreRole::Superintendent => "Superintendent",
            ShoreRole::FleetAdmin => "Fleet admin",
        }
    }

    /// Whether this role may comment on a vessel's records.
    pub fn may_comment(self) -> bool {
        self >= ShoreRole::Superintendent
    }

    /// Whether this role may plan a vessel's maintenance from the office:
    /// add and change its plans, open work orders for it and decide on its
    /// requisitions.
    pub fn may_plan_maintenance(self) -> bool {
        self >= ShoreRole::Superintendent
    }
}

impl fmt::Display for ShoreRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShoreRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ShoreRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected viewer, superintendent or fleet_admin)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!(Role::ChiefEngineer.may_close_faults());
        assert!(!Role::Engineer.may_close_faults());
        assert!(!Role::Crew.may_work_faults());
        assert!(Role::Engineer.may_move_stock() && !Role::Crew.may_move_stock());
        assert!(Role::ChiefEngineer.may_manage_parts() && !Role::Engineer.may_manage_parts());
        assert!("captain".parse::<Role>().is_err());
        assert!(ShoreRole::Superintendent.may_comment());
        assert!(!ShoreRole::Viewer.may_comment());
    }
}
