//! Every way a user reaches their Docker engine, each tested against the real
//! engine: a second unix socket and plain TCP relayed by `socat`, TCP with
//! mutual TLS terminated by `socat openssl-listen` (certificates made here
//! with the `openssl` CLI), a context chosen by `DOCKER_CONTEXT` and by
//! `config.json`'s `currentContext` (both written by the real `docker context
//! create`), and `gohot skaffold build` under `minikube docker-env`'s
//! variables. Each relay logs the connections it accepts, which proves the
//! route was taken rather than the default socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// The real engine's socket (what the relays forward to).
fn engine_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".into(),
    }
}

/// A `socat` relay to the engine; stopped on drop. Its log records each
/// accepted connection.
struct Relay {
    child: Child,
    log: PathBuf,
}

impl Relay {
    fn start(dir: &Path, listen: String, ready: impl FnMut() -> Option<()>) -> Relay {
        let log = dir.join(format!("socat-{}.log", free_port()));
        let child = Command::new(require("socat"))
            .args(["-d", "-d", "-lf"])
            .arg(&log)
            .arg(listen)
            .arg(format!("UNIX-CONNECT:{}", engine_socket()))
            .stdin(Stdio::null())
            .spawn()
            .expect("start socat");
        wait_for("socat to listen", Duration::from_secs(10), ready);
        Relay { child, log }
    }

    fn unix(dir: &Path) -> (Relay, String) {
        let sock = dir.join("relay.sock");
        let s = sock.clone();
        let relay = Relay::start(dir, format!("UNIX-LISTEN:{},fork", sock.display()), move || s.exists().then_some(()));
        (relay, format!("unix://{}", sock.display()))
    }

    fn tcp(dir: &Path) -> (Relay, String) {
        let port = free_port();
        let relay = Relay::start(dir, format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"), move || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        (relay, format!("tcp://127.0.0.1:{port}"))
    }

    /// Mutual TLS: the relay presents `server.pem` and requires a client
    /// certificate signed by `ca.pem` (socat's `verify=1`).
    fn tls(dir: &Path, certs: &Path) -> (Relay, String) {
        let port = free_port();
        let c = |f: &str| certs.join(f).display().to_string();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            c("server.pem"),
            c("server-key.pem"),
            c("ca.pem")
        );
        let relay =
            Relay::start(dir, listen, move || std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
        (relay, format!("tcp://127.0.0.1:{port}"))
    }

    /// Connections the relay accepted so far (the readiness probe's included).
    fn accepted(&self) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().matches("accepting connection").count()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    ok(Command::new(require("openssl")).current_dir(dir).args(args).stderr(Stdio::null()));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with the openssl CLI: `ca.pem`, `server.pem`/`server-key.pem`,
/// `cert.pem`/`key.pem` (the names Docker reads from DOCKER_CERT_PATH).
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca =
        vec!["req", "-x509", "-days", "2", "-subj", "/CN=gohot test CA", "-keyout", "ca-key.pem", "-out", "ca.pem"];
    ca.extend(ec);
    openssl(dir, &ca);
    for (name, key, subject, ext) in [
        ("server", "server-key.pem", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("cert", "key.pem", "/CN=gohot client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let csr = format!("{name}.csr");
        let mut req = vec!["req", "-new", "-subj", subject, "-keyout", key, "-out", &csr];
        req.extend(ec);
        openssl(dir, &req);
        let extfile = format!("{name}.ext");
        std::fs::write(dir.join(&extfile), ext).expect("ext");
        let out = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-extfile",
                &extfile,
                "-out",
                &out,
            ],
        );
    }
}

/// `gohot build --repo ko.local` of the hello example with `env`; returns
/// the reference it printed (the image is removed when the guard drops).
fn build_to_engine(
    sb: &Sandbox,
    env: &[(&str, &str)],
    flags: &[&str],
) -> (std::process::Output, Option<(DockerImage, DockerImage)>) {
    let app = sb.path().join("app");
    if !app.exists() {
        sb.copy_example("hello", "app");
    }
    // A repository of this test's own: tests run in parallel and remove what they load.
    let unique = sb.path().file_name().expect("name").to_string_lossy().to_lowercase();
    let mut cmd = sb.gohot(&app);
    cmd.args(["build", "--repo", &format!("ko.local/{unique}")]).args(flags).arg(".");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    let reference = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let guard = (out.status.success() && !reference.is_empty()).then(|| {
        let latest = format!("{}:latest", reference.rsplit_once(':').map_or(reference.as_str(), |(r, _)| r));
        (DockerImage(reference), DockerImage(latest))
    });
    (out, guard)
}

fn assert_built_through(
    relay: &Relay,
    out: &std::process::Output,
    image: &Option<(DockerImage, DockerImage)>,
    before: usize,
) {
    assert!(out.status.success(), "gohot build failed: {}", String::from_utf8_lossy(&out.stderr));
    let (image, _) = image.as_ref().expect("a reference");
    ok(Command::new("docker").args(["image", "inspect", &image.0]));
    assert!(relay.accepted() > before, "the relay saw no connection from gohot: the route was not taken");
}

#[test]
fn a_second_unix_socket_via_docker_host() {
    let sb = Sandbox::new();
    let (relay, host) = Relay::unix(sb.path());
    let before = relay.accepted();
    let (out, image) = build_to_engine(&sb, &[("DOCKER_HOST", &host)], &[]);
    assert_built_through(&relay, &out, &image, before);
}

#[test]
fn plain_tcp_via_the_flag_which_wins_over_docker_host() {
    let sb = Sandbox::new();
    let (relay, host) = Relay::tcp(sb.path());
    let before = relay.accepted();
    let dead = format!("unix://{}/nothing.sock", sb.path().display());
    let (out, image) = build_to_engine(&sb, &[("DOCKER_HOST", &dead)], &["--docker-host", &host]);
    assert_built_through(&relay, &out, &image, before);

    // Without the flag, DOCKER_HOST is used: a dead socket is an error naming it.
    let (out, _) = build_to_engine(&sb, &[("DOCKER_HOST", &dead)], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nothing.sock")
            && err.contains("from DOCKER_HOST")
            && err.contains("is the Docker engine running"),
        "{err}"
    );
}

#[test]
fn mutual_tls_as_minikube_docker_env_sets_it_for_skaffold_build() {
    let sb = Sandbox::new();
    let certs = sb.path().join("certs");
    make_certs(&certs);
    let (relay, host) = Relay::tls(sb.path(), &certs);
    let before = relay.accepted();
    let app = sb.copy_example("hello", "ctx");
    let tag = format!("127.0.0.1:5999/gohot-tls-test:t{}", std::process::id());
    let _cleanup = DockerImage(tag.clone());
    // `gohot skaffold build` as Skaffold runs it after `eval $(minikube docker-env)`.
    let out = run(sb
        .gohot(&app)
        .args(["skaffold", "build"])
        .env("IMAGE", &tag)
        .env("PUSH_IMAGE", "false")
        .env("BUILD_CONTEXT", &app)
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs));
    assert!(out.status.success(), "skaffold build over TLS failed: {}", String::from_utf8_lossy(&out.stderr));
    ok(Command::new("docker").args(["image", "inspect", &tag]));
    assert!(relay.accepted() > before, "the TLS relay saw no connection");
}

#[tokio::test]
async fn exec_with_stdin_through_mutual_tls() {
    // The hijacked exec stream (the dev loop's way in, KinD loading) over TLS.
    let busybox = crate::wayin_support::require_docker_and_busybox();
    let sb = Sandbox::new();
    let certs = sb.path().join("certs");
    make_certs(&certs);
    let (_relay, host) = Relay::tls(sb.path(), &certs);
    let rootfs = sb.path().join("rootfs/bin");
    std::fs::create_dir_all(&rootfs).expect("mkdir");
    std::fs::copy(busybox, rootfs.join("busybox")).expect("copy busybox");
    let tag = format!("gohot-engines-test:{}", std::process::id());
    let _image = DockerImage(tag.clone());
    let tar = ok(Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C {} -cf - . | docker import - {tag}", sb.path().join("rootfs").display())));
    assert!(!tar.is_empty());
    let id = ok(Command::new("docker").args(["run", "-d", &tag, "/bin/busybox", "sleep", "600"])).trim().to_string();
    let _ctr = Container(id.clone());

    let endpoint = gohot::docker::Endpoint {
        host,
        tls: Some(gohot::docker::endpoint::Tls {
            verify: true,
            ca: Some(certs.join("ca.pem")),
            client: Some((certs.join("cert.pem"), certs.join("key.pem"))),
            dir: certs.clone(),
        }),
        route: gohot::docker::Route::DockerHost,
    };
    let docker = gohot::docker::connect_to(&endpoint).await.expect("connect over TLS");
    let argv: Vec<String> = ["/bin/busybox", "cat"].iter().map(|s| s.to_string()).collect();
    let out =
        gohot::docker::exec_stdin(&docker, &id, &argv, bytes::Bytes::from_static(b"through TLS")).await.expect("exec");
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, &b"through TLS"[..]));
}

#[test]
fn a_wrong_certificate_is_a_clear_error() {
    let sb = Sandbox::new();
    let certs = sb.path().join("certs");
    make_certs(&certs);
    let (_relay, host) = Relay::tls(sb.path(), &certs);
    // Certificates from another CA: the engine's certificate is not trusted.
    let other = sb.path().join("other");
    make_certs(&other);
    let (out, _) = build_to_engine(
        &sb,
        &[("DOCKER_HOST", &host), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", other.to_str().expect("utf8"))],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in
        ["from DOCKER_HOST", "TLS handshake failed", "ca.pem", "minikube docker-env", other.to_str().expect("utf8")]
    {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn contexts_from_docker_context_and_from_config_current_context() {
    let sb = Sandbox::new();
    let config = sb.path().join("docker");
    let docker = |args: &[&str]| {
        ok(Command::new("docker")
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(args))
    };
    // A context on a second socket, chosen by DOCKER_CONTEXT.
    let (unix_relay, unix_host) = Relay::unix(sb.path());
    docker(&["context", "create", "relay", "--docker", &format!("host={unix_host}")]);
    let before = unix_relay.accepted();
    let (out, image) = build_to_engine(&sb, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "relay")], &[]);
    assert_built_through(&unix_relay, &out, &image, before);
    drop(image);

    // A TLS context made current with `docker context use` (config.json's currentContext).
    let certs = sb.path().join("certs");
    make_certs(&certs);
    let (tls_relay, tls_host) = Relay::tls(sb.path(), &certs);
    let c = |f: &str| certs.join(f).display().to_string();
    docker(&[
        "context",
        "create",
        "secure",
        "--docker",
        &format!("host={tls_host},ca={},cert={},key={}", c("ca.pem"), c("cert.pem"), c("key.pem")),
    ]);
    docker(&["context", "use", "secure"]);
    let before = tls_relay.accepted();
    let (out, image) = build_to_engine(&sb, &[("DOCKER_HOST", "")], &[]);
    assert_built_through(&tls_relay, &out, &image, before);

    // A context that does not exist is named, with the way out.
    let (out, _) = build_to_engine(&sb, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "colima")], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"colima\" (DOCKER_CONTEXT)") && err.contains("docker context ls"), "{err}");
}

/// Loading into the engine shows a spinner on a terminal (a pseudo-terminal
/// from util-linux's `script`) and nothing of it in a pipe.
#[test]
fn progress_on_a_terminal_and_none_in_a_pipe() {
    let sb = Sandbox::new();
    let (out, image) = build_to_engine(&sb, &[], &[]);
    drop(image);
    let piped = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{piped}");
    assert!(!piped.contains("loading ") && !piped.contains('\u{1b}') && !piped.contains('\r'), "{piped}");

    let unique = sb.path().file_name().expect("name").to_string_lossy().to_lowercase();
    let app = sb.path().join("app");
    let template = sb.gohot(&app);
    let mut cmd = Command::new(require("script"));
    let line = format!("{} build --repo ko.local/{unique}-tty .", env!("CARGO_BIN_EXE_gohot"));
    cmd.args(["-qec", &line, "/dev/null"]).current_dir(&app).stdin(Stdio::null());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = run(&mut cmd);
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    // The reference is the last line; on a terminal it may follow the spinner's clearing escapes.
    let last = tty.lines().rev().find(|l| l.contains("ko.local/") && !l.contains("loading")).expect("the reference");
    let reference = last[last.find("ko.local/").expect("ko.local")..].trim().to_string();
    let _image = DockerImage(reference.clone());
    let _latest = DockerImage(format!("{}:latest", reference.rsplit_once(':').expect("tag").0));
    assert!(tty.contains("loading ko.local/") && tty.contains("into the Docker engine ("), "{tty}");
}
