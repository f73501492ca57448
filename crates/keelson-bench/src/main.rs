//! `keelson-bench <scenario>`: runs one benchmark scenario and ends with one
//! line `<scenario>: key=value …`. Comparisons with a reference (raw SQLite,
//! automerge's own sync protocol) are measured in the same run, because this
//! machine is shared and absolute times drift from run to run.

mod sync_link;
mod sync_wire;

use clap::{Parser, ValueEnum};

/// Keelson benchmarks.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The scenario to run.
    scenario: Scenario,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// Bytes on the wire per record change for a 30-day backlog, against automerge's sync protocol.
    SyncWire,
    /// Goodput of a catch-up through the emulated bad-day GEO link.
    SyncLink,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::SyncWire => sync_wire::run(),
        Scenario::SyncLink => sync_link::run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
