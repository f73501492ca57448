//! `keelson-bench <scenario> [options]`: runs one benchmark scenario. Each
//! scenario lives in its own module, prints what it measures as it goes,
//! and ends with exactly one line `<scenario>: key=value …`. Where a figure
//! is relative to a reference (raw SQLite, automerge's own sync protocol),
//! the reference is measured in the same run, because this machine is
//! shared and absolute times drift from run to run.

mod ingest;
mod shore_load;
mod storage;
mod sync_link;
mod sync_wire;
mod ui;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

/// Keelson benchmarks.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The scenario to run.
    scenario: Scenario,
    /// The scenario's own options, for example `--days 45 --tags 10`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    options: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// Samples/s through the real pipeline into SQLite against raw batched inserts; CPU of polling 1,000 Modbus tags.
    Ingest,
    /// Bytes per sample and query times over simulated days of realistic signals (options: --days N --tags N).
    Storage,
    /// Bytes on the wire per record change for a 30-day backlog, against automerge's sync protocol.
    SyncWire,
    /// Goodput of a catch-up through the emulated bad-day GEO link.
    SyncLink,
    /// Changes per second one shore applies with 200 vessels syncing at once.
    ShoreLoad,
    /// Server time of the fault list and the due list with 10,000 faults and 5,000 plans, and page sizes.
    Ui,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Ingest => no_options(&cli.options).and_then(|()| ingest::run()),
        Scenario::Storage => storage::run(&cli.options),
        Scenario::SyncWire => no_options(&cli.options).and_then(|()| sync_wire::run()),
        Scenario::SyncLink => no_options(&cli.options).and_then(|()| sync_link::run()),
        Scenario::ShoreLoad => no_options(&cli.options).and_then(|()| shore_load::run()),
        Scenario::Ui => no_options(&cli.options).and_then(|()| ui::run()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn no_options(options: &[String]) -> Result<()> {
    if let Some(first) = options.first() {
        bail!("this scenario takes no options (got `{first}`)");
    }
    Ok(())
}

/// The value of `--name value` in `options`, parsed, or `default`.
pub fn option<T: std::str::FromStr>(options: &[String], name: &str, default: T) -> Result<T> {
    match options.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let Some(v) = options.get(i + 1) else {
                bail!("{name} needs a value");
            };
            v.parse()
                .map_err(|_| anyhow::anyhow!("{name}: cannot read `{v}`"))
        }
    }
}
