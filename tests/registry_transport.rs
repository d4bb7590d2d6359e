//! How registries are reached, against Debian's real docker-registry with
//! basic auth: over TLS on loopback (certificates made here with the
//! openssl CLI, their CA trusted by nobody unless SSL_CERT_FILE names it), over plain HTTP on loopback, and over
//! plain HTTP on an address of this machine that is not loopback (as a
//! registry on the network looks). `--insecure-registry` applies to the
//! destination only, HTTPS without verification first, then HTTP; base
//! images come over verified HTTPS, and credentials never go over plain HTTP
//! to a host that was not named insecure (loopback aside).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

/// A CA and a server certificate for 127.0.0.1 it signed, made with the
/// openssl CLI: (`ca.pem`, `server.pem`, `server-key.pem`).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let openssl = |args: &[&str]| {
        ok(Command::new(require("openssl")).current_dir(dir).args(args).stderr(Stdio::null()));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(&[&["req", "-x509", "-days", "2", "-subj", "/CN=gohot test CA", "-keyout", "ca-key.pem", "-out", "ca.pem"][..], &ec].concat());
    openssl(
        &[&["req", "-new", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem", "-out", "server.csr"][..], &ec]
            .concat(),
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"))
}

/// An IPv4 address of this machine that is not loopback (where a registry
/// on the network would be).
fn non_loopback_ip() -> String {
    let out = ok(Command::new("hostname").arg("-I"));
    out.split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| panic!("this machine has no IPv4 address besides loopback (hostname -I: {out:?})"))
}

fn docker_config(sb: &Sandbox, auths: &[(&Registry, &str, &str)]) {
    let b64 = |s: String| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let auths: serde_json::Map<String, serde_json::Value> = auths
        .iter()
        .map(|(reg, user, pass)| (reg.host(), serde_json::json!({"auth": b64(format!("{user}:{pass}"))})))
        .collect();
    std::fs::write(sb.path().join("docker/config.json"), serde_json::json!({ "auths": auths }).to_string())
        .expect("config");
}

/// Whether the registry logged a request it authenticated as `user` after
/// `mark` bytes of its log.
fn authenticated(reg: &Registry, mark: usize, user: &str) -> bool {
    let log = &reg.log()[mark..];
    log.contains(&format!("auth.user.name=\"{user}\"")) || log.contains(&format!("auth.user.name={user} "))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(sb: &Sandbox, app: &Path, repo: &str, base: &str, insecure: bool) -> std::process::Output {
    let mut cmd = sb.gohot(app);
    cmd.args(["build", "--bare", "--sbom=none", "--repo", repo, "--base", base]);
    if insecure {
        cmd.arg("--insecure-registry=true");
    }
    run(cmd.arg("."))
}

/// The destination named insecure is reached over TLS without verifying its
/// certificate (and a base on it too); a base on a plain-HTTP registry that
/// is not loopback and not the destination is not fetched over HTTP: the
/// build fails naming it, and its credentials never reached it.
#[test]
fn insecure_registry_is_the_destination_only() {
    let sb = Sandbox::new();
    let (_, cert, key) = certificates(&sb.path().join("tls"));
    let tls = Registry::start_basic(RegistryListen { tls: Some((&cert, &key)), ..Default::default() }, "tu", "tp");
    let ip = non_loopback_ip();
    let plain = Registry::start_basic(RegistryListen { ip: Some(&ip), ..Default::default() }, "pu", "pp");
    docker_config(&sb, &[(&tls, "tu", "tp"), (&plain, "pu", "pp")]);
    let tls_base = push_busybox_base_as(&tls, "base", Some("tu:tp"));
    let plain_base = push_busybox_base_as(&plain, "base", Some("pu:pp"));
    let app = sb.copy_example("hello", "hello");
    let repo = format!("{}/app", tls.host());

    // TLS destination named insecure, base from the same registry: pushed.
    let mark = tls.log().len();
    let out = build(&sb, &app, &repo, &tls_base, true);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).trim().starts_with(&format!("{repo}@sha256:")), "{}", stdout_of(&out));
    assert!(authenticated(&tls, mark, "tu"), "the TLS registry saw the credentials: {}", tls.log());

    // A base on a plain-HTTP registry on the network, which is not the destination.
    let mark = plain.log().len();
    let out = build(&sb, &app, &repo, &plain_base, true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains(&plain.host()) && err.contains("HTTPS"), "{err}");
    assert!(!authenticated(&plain, mark, "pu"), "credentials went over plain HTTP: {}", &plain.log()[mark..]);

    // The same registry as the destination named insecure: HTTPS is tried, then HTTP.
    let plain_repo = format!("{}/app", plain.host());
    let out = build(&sb, &app, &plain_repo, &plain_base, true);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(authenticated(&plain, mark, "pu"), "{}", plain.log());
}

/// Without the flag: a loopback registry on plain HTTP with auth is reached
/// over HTTP; a loopback TLS registry whose certificate is not trusted is
/// refused with the fix named, and reached (verified) once its certificate
/// is trusted (SSL_CERT_FILE).
#[test]
fn loopback_registries_over_tls_or_plain_http() {
    let sb = Sandbox::new();
    let (ca, cert, key) = certificates(&sb.path().join("tls"));
    let tls = Registry::start_basic(RegistryListen { tls: Some((&cert, &key)), ..Default::default() }, "tu", "tp");
    let plain = Registry::start_with(Some(("pu", "pp")));
    docker_config(&sb, &[(&tls, "tu", "tp"), (&plain, "pu", "pp")]);
    let tls_base = push_busybox_base_as(&tls, "base", Some("tu:tp"));
    let plain_base = push_busybox_base_as(&plain, "base", Some("pu:pp"));
    let app = sb.copy_example("hello", "hello");

    let plain_repo = format!("{}/app", plain.host());
    let out = build(&sb, &app, &plain_repo, &plain_base, false);
    assert!(out.status.success(), "{}", stderr_of(&out));

    let mark = tls.log().len();
    let out = build(&sb, &app, &plain_repo, &tls_base, false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains(&tls.host()) && err.contains("does not trust") && err.contains("--insecure-registry"),
        "{err}"
    );
    assert!(!authenticated(&tls, mark, "tu"), "credentials went to an untrusted server: {}", &tls.log()[mark..]);

    let mut cmd = sb.gohot(&app);
    cmd.env("SSL_CERT_FILE", &ca).args(["build", "--bare", "--sbom=none", "--repo", &plain_repo, "--base", &tls_base]);
    let out = run(cmd.arg("."));
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// An HTTPS registry whose challenge names a plain-HTTP token server: gohot
/// refuses to send the user's password there (oci-client would), naming the
/// realm; the token server is never contacted.
#[test]
fn basic_credentials_never_go_to_a_plain_http_token_realm() {
    let sb = Sandbox::new();
    let (_, cert, key) = certificates(&sb.path().join("tls"));
    let tokens = crate::identity_token::TokenServer::start(sb.path());
    let tls = Registry::start_listening(RegistryListen { tls: Some((&cert, &key)), ..Default::default() }, |_| {
        tokens.registry_auth()
    });
    docker_config(&sb, &[(&tls, "user", "secret")]);
    let app = sb.copy_example("hello", "hello");
    let repo = format!("{}/app", tls.host());
    let mut cmd = sb.gohot(&app);
    cmd.args(["build", "--bare", "--sbom=none", "--insecure-registry=true", "--repo", &repo, "."]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("http://127.0.0.1:") && err.contains("not HTTPS") && err.contains(&tls.host()), "{err}");
    assert_eq!(tokens.connections.load(std::sync::atomic::Ordering::SeqCst), 0, "the token server was asked");
}
