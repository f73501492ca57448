//! Keelson's benchmark harness: `keelson-bench <scenario> [options]`.
//!
//! Each scenario lives in its own module and ends its output with one line
//! `<scenario>: key=value …`.

mod storage;

use anyhow::{Result, bail};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((scenario, rest)) = args.split_first() else {
        bail!("usage: keelson-bench <scenario> [options]; scenarios: storage");
    };
    match scenario.as_str() {
        "storage" => storage::run(rest),
        other => bail!("unknown scenario `{other}`; scenarios: storage"),
    }
}

/// The value of `--name value` in `args`, parsed, or `default`.
pub fn option<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let Some(v) = args.get(i + 1) else {
                bail!("{name} needs a value");
            };
            v.parse()
                .map_err(|_| anyhow::anyhow!("{name}: cannot read `{v}`"))
        }
    }
}
