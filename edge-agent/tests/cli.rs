//! The `keelson-edge` command line: help on every subcommand, the embedded
//! default configuration, one-line configuration errors, `init` and
//! `user add`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keelson-edge"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run keelson-edge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["demo", "--help"],
        vec!["init", "--help"],
        vec!["print-default-config", "--help"],
        vec!["check-config", "--help"],
        vec!["user", "--help"],
        vec!["user", "add", "--help"],
        vec!["key", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
    ] {
        let out = edge(&sub);
        assert!(out.status.success(), "{sub:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Usage:"), "{sub:?}");
    }
}

#[test]
fn default_config_prints_and_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = edge(&["print-default-config"]);
    assert!(out.status.success());
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, &out.stdout).expect("write");
    let out = edge(&["check-config", "--config", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn a_bad_config_gets_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edge.toml");
    let bad = text(&edge(&["print-default-config"]).stdout)
        .replace("chunk_bytes = 32768", "chunk_bytes = \"big\"");
    std::fs::write(&path, &bad).expect("write");
    let line = bad
        .lines()
        .position(|l| l.starts_with("chunk_bytes"))
        .expect("line")
        + 1;
    let out = edge(&["check-config", "--config", path.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let first = err.lines().next().expect("an error line");
    assert!(
        first.starts_with(&format!("error: {}:{line}:", path.display())),
        "file:line first: {first}"
    );
    assert!(
        first.contains("`sync.chunk_bytes`"),
        "names the key: {first}"
    );
    assert!(
        first.contains("invalid type"),
        "says what is wrong: {first}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn init_writes_config_and_a_private_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("etc/edge.toml");
    let key = dir.path().join("etc/vessel.key");
    let args = [
        "init",
        "--vessel-id",
        "imo9321483",
        "--name",
        "MV Nordic Star",
        "--shore-url",
        "https://shore.example.com",
        "--config",
        config.to_str().expect("utf-8"),
        "--key-file",
        key.to_str().expect("utf-8"),
    ];
    let out = edge(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("prints the public key")
        .to_owned();
    assert_eq!(public.len(), 44, "base64 of 32 bytes");
    assert!(stdout.contains("keelson-shore vessel add --id imo9321483"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = edge(&["check-config", "--config", config.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A second init keeps the key, and refuses to replace the configuration
    // without --force.
    let out = edge(&args);
    assert!(!out.status.success());
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = edge(&forced);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("public key: {public}")),
        "key kept"
    );
}

fn user_add(config: &Path, username: &str, role: &str, password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelson-edge"))
        .args([
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--config",
        ])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The program may exit before reading (a refused argument), which
    // closes the pipe; that is its answer, not a test failure.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes());
    child.wait_with_output().expect("wait")
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("edge.toml");
    let text_config = text(&edge(&["print-default-config"]).stdout).replace(
        "data_dir = \"/var/lib/keelson/edge\"",
        &format!("data_dir = \"{}\"", dir.path().join("data").display()),
    );
    std::fs::write(&config, text_config).expect("write");
    let out = user_add(&config, "chief", "chief_engineer", "s3cret-pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = user_add(&config, "chief", "captain", "s3cret-pass\n");
    assert!(!out.status.success(), "unknown role refused");
    let out = user_add(&config, "bosun", "crew", "");
    assert!(!out.status.success(), "empty password refused");
    assert!(text(&out.stderr).contains("no password"));
}

#[test]
fn backup_then_restore_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("edge.toml");
    let text_config = text(&edge(&["print-default-config"]).stdout).replace(
        "data_dir = \"/var/lib/keelson/edge\"",
        &format!("data_dir = \"{}\"", dir.path().join("data").display()),
    );
    std::fs::write(&config, text_config).expect("write");
    let out = user_add(&config, "chief", "chief_engineer", "s3cret-pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let file = dir.path().join("edge.backup");
    let args = |cmd: &str, flag: &str| {
        vec![
            cmd.to_owned(),
            flag.to_owned(),
            file.display().to_string(),
            "--config".to_owned(),
            config.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        edge(&a)
    };
    let out = run(args("backup", "--to"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("backup written to"));
    let out = run(args("backup", "--to"));
    assert!(
        !out.status.success(),
        "an existing backup is never overwritten"
    );
    assert!(
        text(&out.stderr).contains("exists"),
        "{}",
        text(&out.stderr)
    );

    let out = run(args("restore", "--from"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("the database it replaced was kept at"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn key_creates_once_and_then_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("vessel.key");
    let path = key.to_str().expect("utf-8");
    let first = edge(&["key", "--key-file", path]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("created at"));
    let second = edge(&["key", "--key-file", path]);
    assert!(text(&second.stdout).contains("kept at"));
    let public = |o: &Output| {
        text(&o.stdout)
            .lines()
            .find(|l| l.starts_with("public key: "))
            .map(str::to_owned)
    };
    assert_eq!(public(&first), public(&second));
}
