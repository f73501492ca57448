//! `keelson-edge demo`: a whole ship and shore on one machine.
//!
//! It starts a simulated engine-room Modbus TCP device on loopback, a shore
//! on port 8090, a satellite link emulator between them (GEO VSAT: 300 ms
//! each way, 256 kbit/s), and the edge agent on port 8080 polling the
//! device and syncing with the shore through the emulated link. Data lives
//! in a directory it creates; Ctrl-C stops everything cleanly.

use crate::config::{EdgeConfig, HttpConfig, StorageConfig, SyncConfig, VesselConfig};
use anyhow::{Context, Result};
use keelson_ingest::IngestConfig;
use keelson_ingest::alarms::{AlarmRule, AlarmsConfig};
use keelson_ingest::modbus::{DataType, ModbusDeviceConfig, RegisterConfig, RegisterKind};
use keelson_model::{Role, ShoreRole};
use keelson_shore::{ShoreConfig, ShoreState};
use keelson_testkit::link::{LinkEmulator, LinkProfile};
use keelson_testkit::modbus::{ENGINE_ROOM_MAP, EngineRoomSim};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// The demo vessel's id.
pub const DEMO_VESSEL: &str = "mv-keelson-demo";

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the demo keeps its data.
    pub data_dir: PathBuf,
    /// Port of the ship UI.
    pub ship_port: u16,
    /// Port of the shore UI.
    pub shore_port: u16,
    /// Seconds between sync attempts.
    pub sync_interval_secs: u64,
}

/// The edge configuration the demo runs with: one Modbus device with the
/// simulator's register map.
pub fn demo_config(opts: &DemoOptions, device: SocketAddr, link: SocketAddr) -> EdgeConfig {
    let registers = ENGINE_ROOM_MAP
        .iter()
        .map(|r| RegisterConfig {
            tag: r.tag.to_owned(),
            address: r.address,
            kind: RegisterKind::Holding,
            data_type: DataType::U16,
            scale: r.scale,
            unit: r.unit.to_owned(),
            ..RegisterConfig::default()
        })
        .collect();
    EdgeConfig {
        vessel: VesselConfig {
            id: DEMO_VESSEL.into(),
            name: "MV Keelson Demo".into(),
        },
        http: HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], opts.ship_port)),
            secure_cookies: false,
        },
        storage: StorageConfig {
            data_dir: opts.data_dir.join("edge"),
        },
        retention: Default::default(),
        counters: Default::default(),
        attachments: Default::default(),
        sync: SyncConfig {
            enabled: true,
            shore_url: format!("http://{link}"),
            key_file: opts.data_dir.join("edge/vessel.key"),
            interval_secs: opts.sync_interval_secs,
            chunk_bytes: 32 * 1024,
            request_timeout_secs: 120,
            daily_budget_bytes: 0,
            session_cap_bytes: 0,
            shore_ca_file: None,
            shore_cert_sha256: None,
        },
        ingest: IngestConfig {
            modbus: vec![ModbusDeviceConfig {
                name: "engine-room".into(),
                address: device.to_string(),
                unit_id: 1,
                poll_interval_ms: 1000,
                timeout_ms: 1000,
                registers,
                ..ModbusDeviceConfig::default()
            }],
            ..IngestConfig::default()
        },
        alarms: demo_alarms(),
    }
}

/// Alarm rules on the simulator's tags, with limits its signals reach now
/// and then, so the demo shows alarms raising and returning.
fn demo_alarms() -> AlarmsConfig {
    let rule = |tag: &str| AlarmRule {
        tag: tag.into(),
        high: None,
        high_high: None,
        low: None,
        low_low: None,
        deadband: 0.0,
        delay_secs: 2,
        stale_after_secs: None,
        bad_quality: true,
    };
    AlarmsConfig {
        stale_after_secs: Some(30),
        rules: vec![
            AlarmRule {
                high: Some(104.0),
                high_high: Some(110.0),
                deadband: 0.5,
                ..rule("me.rpm")
            },
            AlarmRule {
                low: Some(4.16),
                low_low: Some(3.5),
                deadband: 0.02,
                ..rule("me.lube_oil_pressure")
            },
            AlarmRule {
                high: Some(55.0),
                high_high: Some(70.0),
                deadband: 2.0,
                ..rule("bilge.level")
            },
        ],
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(opts: DemoOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    let cancel = CancellationToken::new();

    // The engine room.
    let device = EngineRoomSim::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("starting the simulated engine-room device")?;

    // The shore, with its office user and the demo vessel registered.
    let shore_config = ShoreConfig::parse("demo shore", keelson_shore::DEFAULT_CONFIG)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .map(|mut c| {
            c.http.listen = SocketAddr::from(([127, 0, 0, 1], opts.shore_port));
            c.storage.data_dir = opts.data_dir.join("shore");
            c
        })?;
    let shore = ShoreState::open(shore_config).context("opening the shore database")?;
    let (key, _) = crate::keys::load_or_create(&opts.data_dir.join("edge/vessel.key"))?;
    keelson_shore::add_vessel(
        &shore.db,
        DEMO_VESSEL,
        "MV Keelson Demo",
        &key.public_key_b64(),
        "default",
    )
    .map_err(|e| anyhow::anyhow!("registering the demo vessel: {}", e.public_detail()))?;
    keelson_shore::add_user(
        &shore.db,
        "office",
        ShoreRole::Superintendent,
        "office",
        "default",
    )
    .map_err(|e| anyhow::anyhow!("adding the office user: {}", e.public_detail()))?;
    let shore_listener = tokio::net::TcpListener::bind(shore.config.http.listen)
        .await
        .with_context(|| {
            format!(
                "binding the shore to port {} (is another program using it? try --shore-port)",
                opts.shore_port
            )
        })?;
    let shore_addr = shore_listener.local_addr()?;
    let shore_task = tokio::spawn(keelson_shore::serve(shore, shore_listener, cancel.clone()));

    // The satellite link between ship and shore.
    let link = LinkEmulator::start(shore_addr, LinkProfile::geo_vsat())
        .await
        .context("starting the satellite link emulator")?;

    // The ship.
    let config = demo_config(&opts, device.local_addr(), link.local_addr());
    std::fs::create_dir_all(&config.storage.data_dir)?;
    {
        let db = keelson_store::Db::open(&config.storage.data_dir, keelson_store::Site::Edge)?;
        crate::add_user(&db, "chief", Role::ChiefEngineer, "chief")
            .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
        crate::add_user(&db, "crew", Role::Crew, "crew")
            .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
        crate::add_user(&db, "master", Role::Master, "master")
            .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
        seed_equipment(&db, &config.vessel.id)?;
    }
    let edge = crate::start(config, cancel.clone())
        .await
        .with_context(|| {
            format!(
                "starting the edge agent (is port {} free? try --ship-port)",
                opts.ship_port
            )
        })?;

    println!();
    println!(
        "  Keelson demo is running. Data: {}",
        opts.data_dir.display()
    );
    println!();
    println!(
        "  Ship UI   http://{}    log in as chief / chief (chief engineer) or crew / crew",
        edge.addr
    );
    println!("  Shore UI  http://{shore_addr}    log in as office / office (superintendent)");
    println!();
    println!(
        "  The ship polls a simulated engine room over Modbus TCP ({}) and syncs",
        device.local_addr()
    );
    println!("  with the shore through an emulated GEO satellite link (300 ms each way,");
    println!(
        "  256 kbit/s) every {} s. Demo logins only: never use them on a vessel.",
        opts.sync_interval_secs
    );
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();

    keelson_shore::shutdown_signal().await;
    println!("stopping…");
    cancel.cancel();
    edge.join().await;
    if let Ok(Err(e)) = shore_task.await {
        tracing::warn!(error = %e, "shore server ended with an error");
    }
    link.stop().await;
    device.stop().await;
    println!("stopped.");
    Ok(())
}

/// Gives a fresh demo vessel a small equipment tree whose components link
/// the simulated device's tags, so the equipment pages show live values.
/// A demo database that already has equipment is left as it is.
fn seed_equipment(db: &keelson_store::Db, vessel_id: &str) -> Result<()> {
    use keelson_model::{Criticality, Level, NewEquipment};
    if !db.list_equipment(Some(vessel_id))?.is_empty() {
        return Ok(());
    }
    let chief = keelson_records::Actor {
        name: "chief".into(),
        role: Role::ChiefEngineer,
    };
    let tree: [(&str, &str, Level, Criticality, &[&str]); 9] = [
        (
            "6",
            "Main engine",
            Level::System,
            Criticality::Critical,
            &["me.rpm"],
        ),
        (
            "6.1",
            "Exhaust gas",
            Level::Component,
            Criticality::Important,
            &["me.exhaust_temp"],
        ),
        (
            "6.2",
            "Lubricating oil",
            Level::Component,
            Criticality::Critical,
            &["me.lube_oil_pressure"],
        ),
        (
            "6.3",
            "Jacket cooling water",
            Level::Component,
            Criticality::Important,
            &["me.jcw_outlet_temp"],
        ),
        (
            "6.4",
            "Fuel oil supply",
            Level::Component,
            Criticality::Critical,
            &["me.fuel_oil_inlet_temp"],
        ),
        (
            "7",
            "Power generation",
            Level::System,
            Criticality::Critical,
            &[],
        ),
        (
            "7.1",
            "Generator 1",
            Level::Component,
            Criticality::Critical,
            &["ge1.load", "ge1.frequency"],
        ),
        (
            "8",
            "Starting air",
            Level::System,
            Criticality::Critical,
            &["start_air.pressure"],
        ),
        (
            "9",
            "Bilge system",
            Level::System,
            Criticality::Critical,
            &["bilge.level"],
        ),
    ];
    for (code, name, level, criticality, tags) in tree {
        let new = NewEquipment {
            code: code.into(),
            name: name.into(),
            level,
            criticality,
            maker: String::new(),
            model: String::new(),
            serial: String::new(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        keelson_records::create_equipment(db, vessel_id, new, &chief)
            .with_context(|| format!("adding demo equipment {code}"))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_tree_links_simulated_tags_and_is_seeded_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = keelson_store::Db::open(dir.path(), keelson_store::Site::Edge).unwrap();
        seed_equipment(&db, DEMO_VESSEL).unwrap();
        seed_equipment(&db, DEMO_VESSEL).unwrap();
        let tree = db.list_equipment(Some(DEMO_VESSEL)).unwrap();
        assert_eq!(tree.len(), 9);
        for e in &tree {
            for t in &e.tags {
                assert!(
                    ENGINE_ROOM_MAP.iter().any(|r| r.tag == t),
                    "{t} is not a simulated tag"
                );
            }
        }
    }

    #[test]
    fn the_demo_alarm_rules_are_valid() {
        let opts = DemoOptions {
            data_dir: PathBuf::from("demo"),
            ship_port: 0,
            shore_port: 0,
            sync_interval_secs: 60,
        };
        let local = SocketAddr::from(([127, 0, 0, 1], 9));
        let c = demo_config(&opts, local, local);
        assert!(!c.alarms.rules.is_empty());
        c.alarms
            .validate(c.ingest.tags().map(|(tag, _)| tag))
            .unwrap();
    }
}
