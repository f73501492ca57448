//! The `keelson-shore` command line: help on every subcommand, the
//! embedded default configuration, vessel registration and users.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn shore(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelson-shore"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keelson-shore");
    // The program may exit before reading (a refused argument), which
    // closes the pipe; that is its answer, not a test failure.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["print-default-config", "--help"],
        vec!["check-config", "--help"],
        vec!["vessel", "--help"],
        vec!["vessel", "add", "--help"],
        vec!["vessel", "list", "--help"],
        vec!["user", "--help"],
        vec!["user", "add", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
    ] {
        let out = shore(&sub, "");
        assert!(out.status.success(), "{sub:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Usage:"), "{sub:?}");
    }
}

#[test]
fn vessels_and_users_are_registered_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("shore.toml");
    let default = text(&shore(&["print-default-config"], "").stdout);
    std::fs::write(
        &config,
        default.replace(
            "data_dir = \"/var/lib/keelson/shore\"",
            &format!("data_dir = \"{}\"", dir.path().join("data").display()),
        ),
    )
    .expect("write");
    let c = config.to_str().expect("utf-8");
    let out = shore(&["check-config", "--config", c], "");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let key = "Wd0mAVYSh5Hh0Ag5qzxfSOspBHZMx6hB1y8ZsQX+oYc=";
    let out = shore(
        &[
            "vessel",
            "add",
            "--id",
            "imo9321483",
            "--name",
            "MV Nordic Star",
            "--public-key",
            key,
            "--config",
            c,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = shore(
        &[
            "vessel",
            "add",
            "--id",
            "imo1",
            "--name",
            "Bad key",
            "--public-key",
            "not-a-key",
            "--config",
            c,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("public key"),
        "{}",
        text(&out.stderr)
    );
    let out = shore(&["vessel", "list", "--config", c], "");
    assert!(text(&out.stdout).contains("imo9321483\tMV Nordic Star"));

    let out = shore(
        &[
            "user",
            "add",
            "--username",
            "office",
            "--role",
            "superintendent",
            "--config",
            c,
        ],
        "pw-office\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = shore(
        &[
            "user",
            "add",
            "--username",
            "office",
            "--role",
            "admiral",
            "--config",
            c,
        ],
        "pw\n",
    );
    assert!(!out.status.success());
}
