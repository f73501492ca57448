//! Command-line plumbing both binaries share: how errors end the program,
//! how logging starts, and how a password is read.

use std::fmt::Display;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

/// Ends `main`: success, or the error and its causes on one line of
/// standard error, never a backtrace, so a configuration error reads
/// `error: file:line:column: `key`: what`.
pub fn finish<E: Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts logging, to the journal when run by systemd and to standard error
/// otherwise, filtered by `RUST_LOG` or else by
/// `default_filter`.
pub fn init_tracing(default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Under systemd the output goes to the journal (systemd sets
    // JOURNAL_STREAM). Writing to the journal directly keeps every
    // structured field as a journal field (`journalctl VESSEL=imo9321483`)
    // and the level as the entry's priority, instead of one flat line.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journal) => {
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journal.with_field_prefix(None))
                    .init();
                return;
            }
            Err(e) => eprintln!("journald unavailable ({e}); logging to standard error"),
        }
    }
    // Colours only for a person at a terminal, never in a file or a pipe.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Reads a password from standard input, so it never shows in the process
/// list or the shell history. One trailing newline is dropped.
pub fn read_password(program: &str) -> Result<String, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    let pw = s.strip_suffix('\n').unwrap_or(&s);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() {
        return Err(format!(
            "no password on standard input (pipe it in: echo 'secret' | {program} user add ...)"
        ));
    }
    Ok(pw.to_owned())
}
