//! Alarms on ingested tags: the `[alarms]` configuration and the engine.
//!
//! The engine is a pure state machine. The edge agent feeds it the
//! [`LatestValues`](crate::LatestValues) changes and a clock tick, stores
//! what it returns, and restores it from the store after a restart.
//!
//! Architecture invariant: like the rest of ingest, alarms know nothing of
//! storage or HTTP; they are local, high-rate state, not synced records.

pub mod config;
pub mod engine;

pub use config::{AlarmRule, AlarmsConfig};
pub use engine::{Alarm, AlarmError, AlarmKind, AlarmState, Engine, EventKind, Transition};
