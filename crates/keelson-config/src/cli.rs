//! Command-line plumbing both binaries share: how errors end the program,
//! how logging starts, and how a password is read.

use std::fmt::Display;
use std::io::Read;
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

/// Starts logging to standard error, filtered by `RUST_LOG` or else by
/// `default_filter`.
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_env_filter(filter).init();
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
