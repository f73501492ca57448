//! `sync-link`: a vessel's catch-up through the satellite link emulator on
//! the design's bad day: 600 ms round trip, 256 kbit/s, 1 % segment loss and
//! a two-second outage every minute. The figure is goodput: new chunk bytes
//! the shore accepted, over what the link could have carried while it was
//! up.

use anyhow::{Context, Result, bail};
use keelson_edge::demo::{DemoOptions, demo_config};
use keelson_model::{NewFault, Severity, ShoreRole};
use keelson_shore::{ShoreConfig, ShoreState};
use keelson_store::{Db, FaultFilter, Site};
use keelson_testkit::link::{LinkEmulator, LinkProfile};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const VESSEL: &str = keelson_edge::demo::DEMO_VESSEL;
/// Faults in the backlog; with their descriptions about 4 MB on the wire.
const FAULTS: u64 = 900;
const DESCRIPTION: usize = 8_000;

fn words(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(len);
    while s.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = 2 + (x >> 60) as usize;
        for i in 0..n {
            s.push(char::from(b'a' + ((x >> (8 + 5 * i)) % 26) as u8));
        }
        s.push(' ');
    }
    s.truncate(len);
    s
}

pub fn run() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run_async())
}

async fn run_async() -> Result<()> {
    let cancel = CancellationToken::new();
    let shore_dir = tempfile::tempdir()?;
    let edge_dir = tempfile::tempdir()?;

    let mut shore_config =
        ShoreConfig::parse("bench", keelson_shore::DEFAULT_CONFIG).map_err(anyhow::Error::msg)?;
    shore_config.storage.data_dir = shore_dir.path().to_owned();
    let shore = ShoreState::open(shore_config)?;
    keelson_shore::add_user(
        &shore.db,
        "office",
        ShoreRole::Superintendent,
        "office",
        "default",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let shore_addr = listener.local_addr()?;
    tokio::spawn(keelson_shore::serve(
        shore.clone(),
        listener,
        cancel.clone(),
    ));

    let profile = LinkProfile::geo_vsat_bad();
    let rate = profile
        .rate_bytes_per_sec
        .context("the profile has a rate")? as f64;

    // The backlog, written through the real record path before the agent
    // starts.
    let opts = DemoOptions {
        data_dir: edge_dir.path().to_owned(),
        ship_port: 0,
        shore_port: 0,
        sync_interval_secs: 1,
    };
    let unused: SocketAddr = "127.0.0.1:9".parse()?;
    let mut config = demo_config(&opts, unused, unused);
    config.ingest.modbus.clear();
    std::fs::create_dir_all(&config.storage.data_dir)?;
    {
        let db = Db::open(&config.storage.data_dir, Site::Edge)?;
        for i in 0..FAULTS {
            keelson_records::create_fault(
                &db,
                VESSEL,
                NewFault {
                    title: format!("Backlog fault {i}"),
                    description: words(i, DESCRIPTION),
                    equipment: "Main engine".into(),
                    severity: Severity::Medium,
                },
                "chief",
            )?;
        }
    }
    let (key, _) = keelson_edge::keys::load_or_create(&config.sync.key_file)?;
    keelson_shore::add_vessel(
        &shore.db,
        VESSEL,
        "MV Bench",
        &key.public_key_b64(),
        "default",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    let link = LinkEmulator::start(shore_addr, profile).await?;
    config.sync.shore_url = format!("http://{}", link.local_addr());
    let started = Instant::now();
    let edge = keelson_edge::start(config, cancel.clone()).await?;
    let state = edge.state.clone();
    let last_seq = state.db.last_outbound_seq(VESSEL)?;

    // Wait until the shore holds everything.
    let deadline = started + Duration::from_secs(900);
    loop {
        let acked = shore.db.vessel(VESSEL)?.map_or(0, |v| v.records_acked);
        if acked >= last_seq {
            break;
        }
        if Instant::now() > deadline {
            bail!("catch-up did not finish in 15 minutes (shore holds {acked} of {last_seq})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let drops = link.drops();
    let up_secs = elapsed - drops as f64 * profile.drop_for.as_secs_f64();
    let new_bytes = shore.sync_metrics.chunk_bytes_new.get() as f64;
    let resent = shore.sync_metrics.chunks_resent.get();

    let ship = state.db.list_faults(&FaultFilter {
        limit: 100_000,
        ..FaultFilter::default()
    })?;
    let ashore = shore.db.list_faults(&FaultFilter {
        vessel_id: Some(VESSEL.into()),
        limit: 100_000,
        ..FaultFilter::default()
    })?;
    let converged = ship.len() as u64 == FAULTS && ship == ashore;

    cancel.cancel();
    edge.join().await;
    println!(
        "backlog_bytes={new_bytes:.0} elapsed_s={elapsed:.1} up_s={up_secs:.1} link_rate={rate:.0} rtt_ms=600 loss=1% drop_every_s=60 drop_s={}",
        profile.drop_for.as_secs()
    );
    println!(
        "sync-link: goodput_ratio={:.2} resent_chunks={resent} drops={drops} converged={converged}",
        new_bytes / (rate * up_secs)
    );
    Ok(())
}
