//! The README's exit-code table, one test per row, through the real binary.
//! `gohot dev`'s own rows (130 after Ctrl-C, 143 after SIGTERM, both after
//! removing the container) are in `dev.rs`, on the real engine.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

#[test]
fn zero_on_success() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("Dockerfile"), "FROM scratch\nCOPY a.txt /a.txt\n").expect("Dockerfile");
    std::fs::write(sb.path().join("a.txt"), "a").expect("a.txt");
    let out = run(sb.gohot(sb.path()).args(["syncmap", "--dockerfile", "Dockerfile"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn one_when_the_command_fails() {
    let sb = Sandbox::new();
    let out = run(sb.gohot(sb.path()).args(["syncmap", "--dockerfile", "missing.Dockerfile"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.Dockerfile"));
}

#[test]
fn two_on_usage_errors() {
    let sb = Sandbox::new();
    let out = run(sb.gohot(sb.path()).args(["build", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(sb.gohot(sb.path()).args(["syncmap"]));
    assert_eq!(out.status.code(), Some(2), "missing required flag");
}

/// A command other than `dev` interrupted: `gohot resolve -f -` waiting for
/// its manifests on stdin, then Ctrl-C (130) or SIGTERM (143).
#[test]
fn interrupted_130_and_terminated_143() {
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let sb = Sandbox::new();
        let mut child = sb
            .gohot(sb.path())
            .args(["resolve", "--repo", "ko.local", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gohot resolve");
        let stdin = child.stdin.take();
        // Wait until gohot catches both signals (its handlers are installed
        // before the command starts): SigCgt in /proc has their bits set.
        let pid = child.id();
        wait_for("gohot to catch SIGINT and SIGTERM", Duration::from_secs(30), || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?.trim().to_string();
            let mask = u64::from_str_radix(&mask, 16).ok()?;
            (mask & (1 << (2 - 1)) != 0 && mask & (1 << (15 - 1)) != 0).then_some(())
        });
        ok(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
        let out = child.wait_with_output().expect("wait");
        drop(stdin);
        assert_eq!(out.status.code(), Some(code), "SIG{sig}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
