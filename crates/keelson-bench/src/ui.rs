//! `ui`: the ship UI's two busiest lists on a vessel with years of records.
//!
//! A real edge agent (HTTP on loopback, its SQLite file in a temporary
//! directory) is seeded through the record functions the API uses with
//! 10,000 faults in every severity and status and 5,000 maintenance plans by
//! calendar and by running hours on 200 components. Then the fault list (its
//! first page, later pages, a search and a filter) and the due list are
//! fetched over and over as a logged-in chief engineer would. The times are
//! each request's round trip on loopback, so they include the little the
//! socket adds to the server's own time. The last line is
//! `ui: p95_faults_ms=X p95_due_ms=Y page_kb=Z`, Z being the largest page.

use anyhow::{Context, Result, bail};
use chrono::{Duration as Days, Utc};
use keelson_edge::EdgeConfig;
use keelson_model::{
    Criticality, FaultPatch, Level, NewCounter, NewEquipment, NewFault, NewPlan, Role, Severity,
    Status,
};
use keelson_records::Actor;
use keelson_store::{Db, Site};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const FAULTS: usize = 10_000;
const PLANS: usize = 5_000;
const COMPONENTS: usize = 200;
/// Requests per measured page kind.
const ROUNDS: usize = 200;

fn p95(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[(ms.len() * 95).div_ceil(100).saturating_sub(1)]
}

pub fn run() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run_async())
}

/// Seeds the vessel database the way the crew's and the chief engineer's
/// own requests would fill it.
fn seed(db: &Db, vessel: &str) -> Result<()> {
    let chief = Actor {
        name: "chief".into(),
        role: Role::ChiefEngineer,
    };
    let mut components = Vec::with_capacity(COMPONENTS);
    let mut counters = Vec::with_capacity(COMPONENTS);
    for s in 0..COMPONENTS / 10 {
        keelson_records::create_equipment(
            db,
            vessel,
            NewEquipment {
                code: format!("{}", s + 1),
                name: format!("System {}", s + 1),
                level: Level::System,
                criticality: Criticality::Normal,
                maker: String::new(),
                model: String::new(),
                serial: String::new(),
                tags: Vec::new(),
            },
            &chief,
        )?;
        for c in 0..10 {
            let e = keelson_records::create_equipment(
                db,
                vessel,
                NewEquipment {
                    code: format!("{}.{}", s + 1, c + 1),
                    name: format!("Pump {}-{}", s + 1, c + 1),
                    level: Level::Component,
                    criticality: Criticality::Normal,
                    maker: "Maker".into(),
                    model: "M-100".into(),
                    serial: format!("SN{s:02}{c:02}"),
                    tags: Vec::new(),
                },
                &chief,
            )?;
            let counter = keelson_records::create_counter(
                db,
                vessel,
                NewCounter {
                    equipment_id: e.id.clone(),
                    name: "Running hours".into(),
                    unit: "h".into(),
                    start_total: 1_000.0 + (s * 10 + c) as f64 * 37.0,
                    sensor: None,
                },
                &chief,
            )?;
            components.push(e.id);
            counters.push(counter.id);
        }
    }
    let now = Utc::now();
    for p in 0..PLANS {
        let at = p % COMPONENTS;
        let by_hours = p % 3 == 0;
        // Last done spread over the past year, so a share of the plans is
        // due or overdue, as on a vessel with a real backlog.
        let days_ago = (p * 7919 % 365) as i64;
        keelson_records::create_plan(
            db,
            vessel,
            NewPlan {
                equipment_id: components[at].clone(),
                title: format!("Job {p}: inspect and overhaul"),
                instructions: "Follow the maker's manual.".into(),
                interval_days: (!by_hours || p % 2 == 0).then_some(180 + (p % 4) as u32 * 90),
                interval_hours: by_hours.then_some(2_000.0),
                counter_id: by_hours.then(|| counters[at].clone()),
                tolerance_days: 14,
                tolerance_hours: 100.0,
                last_done_at: Some(now - Days::days(days_ago)),
                last_done_hours: by_hours.then_some((p % 2_500) as f64),
            },
            &chief,
        )?;
    }
    let severities = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    for f in 0..FAULTS {
        let fault = keelson_records::create_fault(
            db,
            vessel,
            NewFault {
                title: format!("Fault {f}: leak at flange {}", f % 97),
                description: "Seen on the morning round; drips under load.".into(),
                equipment: format!("Pump {}-{}", f % 20 + 1, f % 10 + 1),
                severity: severities[f % 4],
            },
            "crew",
        )?;
        // Most faults of a long-running vessel are closed. Each goes
        // through the life cycle one step at a time, as the crew would
        // move it.
        let steps = match f % 10 {
            0 => 0,
            1 => 1,
            2 => 2,
            _ => 3,
        };
        for status in [Status::InProgress, Status::Resolved, Status::Closed]
            .into_iter()
            .take(steps)
        {
            keelson_records::patch_fault(
                db,
                &fault.id,
                FaultPatch {
                    status: Some(status),
                    corrective_action: (status == Status::Resolved)
                        .then(|| "Renewed the worn part and tested under load".to_owned()),
                    ..FaultPatch::default()
                },
                &chief,
            )?;
        }
    }
    Ok(())
}

async fn run_async() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = EdgeConfig::parse("bench", keelson_edge::DEFAULT_CONFIG)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    config.storage.data_dir = dir.path().to_owned();
    config.http.listen = "127.0.0.1:0".parse()?;
    let vessel = config.vessel.id.clone();

    let seeded = Instant::now();
    {
        let db = Db::open(dir.path(), Site::Edge)?;
        keelson_edge::add_user(&db, "chief", Role::ChiefEngineer, "chief-password")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        seed(&db, &vessel)?;
    }
    eprintln!(
        "ui: seeded {FAULTS} faults and {PLANS} plans in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let cancel = CancellationToken::new();
    let edge = keelson_edge::start(config, cancel.clone()).await?;
    let base = format!("http://{}", edge.addr);
    let http = reqwest::Client::new();
    let session: serde_json::Value = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "chief", "password": "chief-password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = session["token"]
        .as_str()
        .context("the session answer has no token")?
        .to_owned();

    let mut largest = 0usize;
    let mut fetch = async |path: String| -> Result<f64> {
        let t = Instant::now();
        let resp = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            bail!("{path}: {status}");
        }
        largest = largest.max(body.len());
        Ok(ms)
    };

    // What a chief engineer does with the fault list: the first page, the
    // next pages, a search, and the open ones of one severity.
    let fault_pages = [
        "/faults".to_owned(),
        "/faults?page=2".to_owned(),
        "/faults?page=40".to_owned(),
        "/faults?q=flange+42".to_owned(),
        "/faults?status=open&severity=critical".to_owned(),
    ];
    for p in &fault_pages {
        fetch(p.clone()).await?;
    }
    fetch("/due".to_owned()).await?;
    let mut faults = Vec::with_capacity(ROUNDS);
    let mut each = vec![Vec::new(); fault_pages.len()];
    let mut due = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let which = i % fault_pages.len();
        let ms = fetch(fault_pages[which].clone()).await?;
        faults.push(ms);
        each[which].push(ms);
        due.push(fetch("/due".to_owned()).await?);
    }
    for (path, times) in fault_pages.iter().zip(each) {
        eprintln!("ui: {path}: p95 {:.2} ms", p95(times));
    }
    // A failed fetch above has already returned; these are the figures.
    let line = format!(
        "ui: p95_faults_ms={:.2} p95_due_ms={:.2} page_kb={:.1} faults={FAULTS} plans={PLANS}",
        p95(faults),
        p95(due),
        largest as f64 / 1024.0
    );
    cancel.cancel();
    edge.join().await;
    println!("{line}");
    Ok(())
}
