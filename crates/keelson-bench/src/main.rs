//! Keelson's benchmark harness.
//!
//! `cargo run --release -p keelson-bench -- <scenario>` runs one scenario.
//! Each scenario lives in its own module, prints what it measures as it goes,
//! and ends with exactly one line `<scenario>: key=value …`. Where a figure
//! is relative to a reference, the reference is timed in the same run,
//! because the machine is shared and absolute times drift between runs.

use anyhow::{Result, bail};

mod ingest;

/// A scenario's name, what it measures, and its entry point.
type Scenario = (&'static str, &'static str, fn() -> Result<()>);

/// Every scenario.
const SCENARIOS: &[Scenario] = &[(
    "ingest",
    "samples/s through the real pipeline into SQLite vs raw batched inserts; CPU of polling 1,000 Modbus tags at 1 Hz",
    ingest::run,
)];

fn main() -> Result<()> {
    let wanted = std::env::args().nth(1);
    let Some(wanted) = wanted else {
        eprintln!("usage: keelson-bench <scenario>\n\nscenarios:");
        for (name, what, _) in SCENARIOS {
            eprintln!("  {name:<12} {what}");
        }
        bail!("no scenario given");
    };
    match SCENARIOS.iter().find(|(name, _, _)| *name == wanted) {
        Some((_, _, run)) => run(),
        None => bail!("unknown scenario `{wanted}`; run without arguments for the list"),
    }
}
