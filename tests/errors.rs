//! Bad input: each gives one clear message, a non-zero exit, nothing on
//! stdout, and no partial output left behind.

use std::process::Output;

use crate::util::*;

fn assert_fails(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit code; stderr:\n{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure, got {:?}", String::from_utf8_lossy(&out.stdout));
    for n in needles {
        assert!(stderr.contains(n), "stderr should mention {n:?}:\n{stderr}");
    }
    stderr
}

#[test]
fn not_a_main_package() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::create_dir_all(app.join("lib")).expect("mkdir");
    std::fs::write(app.join("lib/lib.go"), "package lib\n\nfunc X() {}\n").expect("lib");
    let tar = sb.path().join("out.tar");
    let out = run(sb.gohot(&app).args(["build", "--push=false", "--tarball"]).arg(&tar).arg("./lib"));
    assert_fails(&out, &["\"./lib\" is package \"lib\", not a main package"]);
    assert!(!tar.exists());
}

#[test]
fn go_missing() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = run(sb.gohot(&app).args(["build", "--repo", "ko.local", "."]).env("GOHOT_GO", "/nonexistent/go"));
    assert_fails(&out, &["Go toolchain not found", "GOHOT_GO=/nonexistent/go"]);
    let out = run(sb
        .gohot(&app)
        .args(["build", "--repo", "ko.local", "."])
        .env_remove("GOHOT_GO")
        .env("PATH", "/nonexistent"));
    assert_fails(&out, &["Go toolchain not found", "PATH", "GOHOT_GO"]);
}

#[test]
fn compile_error_shows_compiler_output_and_keeps_the_old_binary() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let tar = sb.path().join("out.tar");
    ok(sb.gohot(&app).args(["build", "--push=false", "--tarball"]).arg(&tar).arg("."));
    let before = std::fs::read(&tar).expect("tarball");
    let bin = sb.kocache().join(format!("bin/example.com/hello/linux/{}/out", crate::build::host_goarch()));
    let old_binary = std::fs::read(&bin).expect("binary");
    std::fs::write(app.join("broken.go"), "package main\n\nfunc broken() { undefinedThing() }\n").expect("write");
    let out = run(sb.gohot(&app).args(["build", "--push=false", "--tarball"]).arg(&tar).arg("."));
    assert_fails(&out, &["undefined: undefinedThing", "go build failed for example.com/hello"]);
    assert_eq!(std::fs::read(&tar).expect("tarball"), before, "tarball untouched");
    assert_eq!(std::fs::read(&bin).expect("binary"), old_binary, "cached binary untouched");
    let leftovers: Vec<_> = std::fs::read_dir(sb.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".gohot"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn unreachable_registry() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let port = free_port();
    let out = run(sb.gohot(&app).args(["build", "."]).env("KO_DOCKER_REPO", format!("127.0.0.1:{port}/x")));
    assert_fails(&out, &[&format!("cannot reach registry 127.0.0.1:{port}"), "KO_DOCKER_REPO"]);
}

#[test]
fn registry_answering_401_then_credentials_work() {
    let reg = Registry::start_with(Some(("gohot", "s3cret")));
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let repo = format!("{}/private", reg.host());
    let out = run(sb.gohot(&app).args(["build", "."]).env("KO_DOCKER_REPO", &repo));
    assert_fails(&out, &[&format!("registry {} refused access", reg.host()), "docker login"]);
    // With credentials in the Docker config the same build succeeds.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("gohot:s3cret");
    std::fs::write(
        sb.path().join("docker/config.json"),
        serde_json::json!({"auths": {reg.host(): {"auth": auth}}}).to_string(),
    )
    .expect("config");
    let reference = ok(sb.gohot(&app).args(["build", "."]).env("KO_DOCKER_REPO", &repo));
    assert!(reference.trim().starts_with(&format!("{repo}/hello-")), "{reference}");
}

#[test]
fn no_destination_is_explained() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = run(sb.gohot(&app).args(["build", "."]));
    assert_fails(&out, &["no destination", "KO_DOCKER_REPO"]);
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    let out = run(sb.gohot(sb.path()).args(["build", "--platform", "linux", "."]).env("KO_DOCKER_REPO", "ko.local"));
    // A bad platform is found after parsing: a failure of the command, exit 1.
    assert_fails(&out, &["invalid platform \"linux\""]);
    let out = run(sb.gohot(sb.path()).args(["build", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
}

/// Credentials as `docker login` leaves them with a credential store: an
/// empty `auths` entry and `credsStore`, the secret with the helper, which
/// Docker asks with the registry's host. Then the same with `credHelpers`.
#[test]
fn credential_helpers_are_asked_under_dockers_keys() {
    let reg = Registry::start_with(Some(("gohot", "s3cret")));
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let bin = sb.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let asked = sb.path().join("asked.txt");
    // A helper as Docker's protocol has it: `get`, the server address on stdin, JSON out.
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {asked}\n\
         if [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"gohot\",\"Secret\":\"s3cret\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        asked = asked.display(),
        host = reg.host()
    );
    let helper = bin.join("docker-credential-gohottest");
    std::fs::write(&helper, script).expect("helper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let repo = format!("{}/private", reg.host());
    for config in [
        serde_json::json!({"auths": {reg.host(): {}}, "credsStore": "gohottest"}),
        serde_json::json!({"auths": {}, "credHelpers": {reg.host(): "gohottest"}}),
    ] {
        std::fs::write(sb.path().join("docker/config.json"), config.to_string()).expect("config");
        let _ = std::fs::remove_file(&asked);
        let reference = ok(sb.gohot(&app).args(["build", "."]).env("KO_DOCKER_REPO", &repo).env("PATH", &path));
        assert!(reference.trim().starts_with(&format!("{repo}/hello-")), "{reference}");
        let asked = std::fs::read_to_string(&asked).expect("the helper was asked");
        assert!(asked.lines().all(|l| l == reg.host()), "asked with {asked:?}, Docker's key is {}", reg.host());
    }
}

/// With `--json`, a fatal error is the last event on stdout (docs/events.md),
/// in the envelope every event has; stderr still has the message.
#[test]
fn dev_json_ends_with_an_error_event() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = run(sb.gohot(&app).args(["dev", ".", "--json"]).env("GOHOT_GO", "/nonexistent/go"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("an event on stdout");
    let event: serde_json::Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(event["event"], "error", "{last}");
    assert_eq!(event["version"], 1, "{last}");
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{last}");
    let message = event["message"].as_str().expect("message");
    assert!(message.contains("/nonexistent/go"), "{message}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/go"));
}

/// `gohot dev cmd/api` where ./cmd/api is a directory: Go reads it as an
/// import path (the standard library's `cmd/api`); the message says to
/// write `./cmd/api` (issue 21).
#[test]
fn a_directory_without_dot_slash_is_named_with_it() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::create_dir_all(app.join("cmd/api")).expect("mkdir");
    std::fs::copy(app.join("main.go"), app.join("cmd/api/main.go")).expect("copy");
    let out = run(sb.gohot(&app).args(["dev", "cmd/api", "--watchexec"]).arg(crate::dev::watchexec()));
    assert_fails(&out, &["\"cmd/api\"", "write ./cmd/api"]);
}

/// `./cmd/...`: gohot takes main packages, not patterns; the message
/// names the main packages the pattern matches (issue 21).
#[test]
fn a_package_pattern_is_refused_naming_what_it_matches() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    for cmd in ["api", "worker"] {
        std::fs::create_dir_all(app.join("cmd").join(cmd)).expect("mkdir");
        std::fs::copy(app.join("main.go"), app.join("cmd").join(cmd).join("main.go")).expect("copy");
    }
    let out = run(sb.gohot(&app).args(["dev", "./cmd/...", "--watchexec"]).arg(crate::dev::watchexec()));
    assert_fails(&out, &["not patterns", "./cmd/api ./cmd/worker"]);
}

/// A watchexec download that fails names the two ways round it: a mirror
/// (`--watchexec-url`, `GOHOT_WATCHEXEC_URL`) and a local static binary
/// (`--watchexec`, `GOHOT_WATCHEXEC`) (issue 21).
#[test]
fn a_failed_watchexec_download_names_the_url_flag_and_the_local_binary() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    // A port nothing listens on: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let out = run(sb.gohot(&app).args(["dev", ".", "--watchexec-url", &url]).env_remove("GOHOT_WATCHEXEC"));
    assert_fails(&out, &["--watchexec-url", "GOHOT_WATCHEXEC_URL", "--watchexec PATH", "GOHOT_WATCHEXEC="]);
}

/// `gohot dev` with no package while GOHOT_WATCHEXEC and KO_DOCKER_REPO
/// are set: the message asks for the package and shows no env-provided
/// flag as if it were required (issue 21).
#[test]
fn dev_without_a_package_does_not_show_env_values_as_required() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = run(sb
        .gohot(&app)
        .arg("dev")
        .env("GOHOT_WATCHEXEC", crate::dev::watchexec())
        .env("KO_DOCKER_REPO", "ko.local"));
    let stderr = assert_fails(&out, &["name the Go main packages to develop", "gohot dev ./cmd/app"]);
    assert!(!stderr.contains("--watchexec <") && !stderr.contains("--repo <"), "{stderr}");
}

/// `gohot delete` uses no Docker engine: its help does not offer
/// --docker-host, and the flag given to it is refused, not ignored (issue 21).
#[test]
fn delete_does_not_offer_docker_host() {
    let sb = Sandbox::new();
    let help = ok(sb.gohot(sb.path()).args(["delete", "--help"]));
    assert!(!help.contains("--docker-host"), "{help}");
    let out = run(sb.gohot(sb.path()).args(["delete", "--docker-host", "unix:///x.sock", "-f", "m.yaml"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("gohot delete uses no Docker engine"), "{stderr}");
    // The commands that do use one still take it.
    let help = ok(sb.gohot(sb.path()).args(["build", "--help"]));
    assert!(help.contains("--docker-host"), "{help}");
}
