//! The reload benchmark: edit → serving, measured end to end.
//!
//! Runs `gohot dev` on the hello example (Docker target), makes real source
//! edits (greeting changes, and every fourth edit a new HTTP handler), and
//! for each measures save → first HTTP answer carrying the new text. In the
//! same run it measures the floor — a bare incremental `go build -trimpath`
//! of the same edits — and what users do without gohot: a full image rebuild
//! plus container replacement. Prints a table, or JSON with `--json`.
//!
//! The floor's build of each edit runs right after gohot served that edit
//! (edit, serve, floor build, next edit …), so load from other work on a
//! shared machine falls on both sides alike.
//!
//! With `--kube` it runs on the cluster KUBECONFIG names instead (images in
//! KO_DOCKER_REPO), `--replicas N` pods (default 2), in a namespace of its
//! own: each edit is timed from save until every replica answers the new
//! text through a port-forward to that pod.
//!
//! With `--kube --skaffold`, after those edits the same pods are reloaded
//! the way `skaffold dev` with `examples/skaffold/skaffold.yaml` does it
//! (docs/skaffold.md), for as many edits again: on each save the `before`
//! sync hook `gohot skaffold sync` runs with Skaffold's hook variables, then
//! Skaffold's copy of the source, `kubectl exec POD -i -- tar xmf - -C /
//! --no-same-owner`, in every pod; timed from save until every replica
//! answers (Skaffold's own file-watch poll, 1 s by default, not included),
//! and until Skaffold's sync is done (its copy after the hook).
//!
//! With `--kube --link RTT_MS:MBIT` gohot reaches the cluster over a
//! simulated link (`tests/link.rs`: a relay in front of the API server that
//! adds the round-trip time and limits the upload to MBIT Mbit/s): every
//! exec, watch and log stream pays it. Each reload's bytes on the link and
//! its round trips (the times gohot spoke again after the server had) are
//! counted, and the session's idle traffic per minute. With `--peers` the
//! same run then times, one edit each, what peers do over the same link:
//! Skaffold's and Tilt's way — `go build`, then `kubectl exec -i POD -- tar
//! x` of the binary into every replica — and a redeploy: `gohot build`
//! pushing the image through a second relay in front of the registry, then
//! the Deployment applied with it and rolled out.
//!
//! With `--services`, several services in one session against one service
//! alone (bench/multi.rs), on the engine or with `--kube` on the cluster.
//!
//! With `--debug`, a reload under `gohot dev --debug` with an editor
//! attached and its breakpoint set again, against the same reload without
//! `--debug` (bench/debug.rs), on the engine or with `--kube` on the cluster.
//!
//! Usage: bench/reload [--edits N] [--full-edits N] [--soak N] [--json] [--kube [--replicas N] [--skaffold] [--link RTT_MS:MBIT [--peers]]] [--services] [--debug]

#[path = "../tests/dap_client.rs"]
mod dap_client;
#[path = "debug.rs"]
mod debug;
#[path = "../tests/link.rs"]
mod link;
#[path = "multi.rs"]
mod multi;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Args {
    edits: usize,
    full_edits: usize,
    soak: usize,
    json: bool,
    kube: bool,
    replicas: usize,
    skaffold: bool,
    services: bool,
    debug: bool,
    /// `--link RTT_MS:MBIT`.
    link: Option<(u64, f64)>,
    peers: bool,
}

const USAGE: &str = "usage: bench/reload [--edits N] [--full-edits N] [--soak N] [--json] [--kube [--replicas N] [--skaffold] [--link RTT_MS:MBIT [--peers]]] [--services] [--debug]";

/// A usage error: the problem and the usage, exit 2.
fn usage_error(problem: &str) -> ! {
    eprintln!("reload: {problem}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        edits: 20,
        full_edits: 5,
        soak: 0,
        json: false,
        kube: false,
        replicas: 2,
        skaffold: false,
        services: false,
        debug: false,
        link: None,
        peers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage_error(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--edits" => a.edits = num("--edits"),
            "--full-edits" => a.full_edits = num("--full-edits"),
            "--soak" => a.soak = num("--soak"),
            "--json" => a.json = true,
            "--kube" => a.kube = true,
            "--skaffold" => a.skaffold = true,
            "--services" => a.services = true,
            "--debug" => a.debug = true,
            "--replicas" => a.replicas = num("--replicas"),
            "--peers" => a.peers = true,
            "--link" => {
                let spec = it.next().unwrap_or_default();
                let parsed = spec.split_once(':').and_then(|(r, m)| Some((r.parse().ok()?, m.parse().ok()?)));
                a.link = Some(parsed.unwrap_or_else(|| usage_error("--link needs RTT_MS:MBIT, e.g. 50:10")));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => usage_error(&format!("unknown argument {other}")),
        }
    }
    if a.link.is_some() && !a.kube {
        usage_error("--link is for --kube");
    }
    if a.debug && (a.services || a.link.is_some() || a.skaffold) {
        usage_error("--debug compares one service with and without --debug: without --services, --link and --skaffold");
    }
    if a.peers && a.link.is_none() {
        usage_error("--peers needs --link");
    }
    a
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gohot_bin() -> PathBuf {
    root().join("target/release/gohot")
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|x| x.1.trim().to_string())
}

/// Polls until `/` answers `text`; returns when it did (None on timeout).
fn wait_answer(port: u16, text: &str, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if http_get(port, "/").as_deref() == Some(text) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// The source edits: the greeting changes every time; every fourth edit
/// also adds a handler (more code changes than a string edit).
fn apply_edit(app: &Path, i: usize) -> String {
    let main = app.join("main.go");
    let src = std::fs::read_to_string(&main).expect("main.go");
    let text = format!("bench edit {i}");
    let start = src.find("var greeting = \"").expect("greeting") + "var greeting = \"".len();
    let end = start + src[start..].find('"').expect("quote");
    let mut new = format!("{}{}{}", &src[..start], text, &src[end..]);
    if i.is_multiple_of(4) {
        new.push_str(&format!(
            "\nfunc init() {{\n\thttp.HandleFunc(\"/h{i}\", func(w http.ResponseWriter, r *http.Request) {{\n\t\tfmt.Fprintf(w, \"handler {i} %s\\n\", r.URL.Path)\n\t}})\n}}\n"
        ));
    }
    let tmp = app.join(".main.go.bench");
    std::fs::write(&tmp, new).expect("write");
    std::fs::rename(&tmp, &main).expect("rename");
    text
}

fn go() -> PathBuf {
    std::env::var_os("GOHOT_GO").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("go"))
}

fn watchexec() -> PathBuf {
    std::env::var_os("GOHOT_TEST_WATCHEXEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/gohot-watchexec/bin/watchexec"))
}

struct Dev {
    child: Child,
    events: mpsc::Receiver<serde_json::Value>,
    container: Option<String>,
}

impl Dev {
    /// `gohot dev . --json --watchexec W ARGS…` in `app`; `container` is
    /// removed on drop (the Docker case).
    fn start(app: &Path, args: &[String], kocache: &Path, container: Option<String>, env: &[(&str, &Path)]) -> Dev {
        let mut cmd = Command::new(gohot_bin());
        cmd.current_dir(app)
            .env("KOCACHE", kocache)
            .envs(env.iter().copied())
            .args(["dev", ".", "--json", "--watchexec"])
            .arg(watchexec())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        Dev::spawn(cmd, container)
    }

    /// Starts `cmd` (a `gohot dev --json` with stdout piped) and reads its events.
    fn spawn(mut cmd: Command, container: Option<String>) -> Dev {
        let mut child = cmd.spawn().expect("start gohot dev");
        let out = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Dev { child, events, container }
    }

    fn next(&self, kinds: &[&str], timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if kinds.iter().any(|k| e["event"] == *k) => return Some(e),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    fn drain(&self) {
        while self.events.try_recv().is_ok() {}
    }

    /// CPU seconds (user + system) the gohot process has used.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|x| x.1).unwrap_or("").split_whitespace().collect();
        let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        ticks / 100.0
    }

    /// Resident memory of the gohot process, MB.
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        kb / 1024.0
    }

    /// Idle CPU % over ten quiet seconds once settled (sessions open, the
    /// last reload reported), and RSS after them; with a link, its bytes
    /// per minute in those seconds.
    fn idle(&self, link: Option<&link::Link>) -> (f64, f64, f64) {
        std::thread::sleep(Duration::from_secs(2));
        let cpu0 = self.cpu_seconds();
        let bytes0 = link.map(|l| l.counts());
        let idle = Duration::from_secs(10);
        std::thread::sleep(idle);
        let per_minute = match (link, bytes0) {
            (Some(l), Some(b0)) => {
                let d = l.counts() - b0;
                (d.up + d.down) as f64 * 60.0 / idle.as_secs_f64()
            }
            _ => f64::NAN,
        };
        ((self.cpu_seconds() - cpu0) / idle.as_secs_f64() * 100.0, self.rss_mb(), per_minute)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        if let Some(c) = &self.container {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let idx = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[idx.min(s.len() - 1)]
}

/// gohot's `timings`; `encode` and `write` are parts of `sync` (waiting for
/// the payload; the helper receiving and writing it), the rest of `sync` is
/// the session's transport.
const STEPS: [&str; 7] = ["detect", "build", "sync", "encode", "write", "restart", "answer"];
/// What gohot adds to the build: everything but `build` (and `sync`'s parts).
const OVERHEAD: [&str; 4] = ["detect", "sync", "restart", "answer"];

/// What one run measured.
#[derive(Default)]
struct Stats {
    totals: Vec<f64>,
    split: [Vec<f64>; 7],
    /// Per reload, detect + sync + restart + answer.
    overhead: Vec<f64>,
    bytes: Vec<f64>,
    binary_bytes: u64,
    failed: usize,
    stale: usize,
    floor: Vec<f64>,
    full: Vec<f64>,
    idle_cpu_percent: f64,
    rss_mb: f64,
    replicas: usize,
    /// Save → every replica serving, through the Skaffold sync hook path.
    skaffold: Vec<f64>,
    /// Save → the end of Skaffold's sync (hook, then its copy in every pod).
    skaffold_sync_done: Vec<f64>,
    /// Per reload: gohot's total less its build (the link's share is here).
    rest: Vec<f64>,
    /// Per reload over the link: bytes up, bytes down, round trips, new connections.
    link_up: Vec<f64>,
    link_down: Vec<f64>,
    link_turns: Vec<f64>,
    link_connections: Vec<f64>,
    /// Bytes a minute on the link while the session idles.
    idle_link_bytes_per_min: f64,
    /// `gohot dev` started → its `serving` event (the first served request).
    first_serving: f64,
    /// Peers over the link, one edit each: save → every replica serving.
    tar_s: f64,
    tar_bytes: f64,
    redeploy_s: f64,
    redeploy_bytes: f64,
}

impl Stats {
    /// Takes the step split and bytes from gohot's `reloaded` event.
    fn record(&mut self, dev: &Dev) {
        match dev.next(&["reloaded", "sync_failed"], Duration::from_secs(30)) {
            Some(e) if e["event"] == "reloaded" => {
                let t = &e["timings"];
                for (k, name) in STEPS.iter().enumerate() {
                    self.split[k].push(t[*name].as_f64().unwrap_or(f64::NAN));
                }
                self.overhead.push(OVERHEAD.iter().map(|n| t[*n].as_f64().unwrap_or(f64::NAN)).sum());
                let (total, build) = (t["total"].as_f64(), t["build"].as_f64());
                self.rest.push(total.unwrap_or(f64::NAN) - build.unwrap_or(f64::NAN));
                self.bytes.push(e["bytes_sent"].as_u64().unwrap_or(0) as f64);
                self.binary_bytes = e["binary_bytes"].as_u64().unwrap_or(0);
            }
            _ => self.failed += 1,
        }
    }
}

/// The floor: a bare incremental `go build -trimpath` in its own copy of the app.
struct Floor {
    dir: PathBuf,
}

impl Floor {
    fn new(work: &Path) -> Floor {
        let dir = work.join("floor");
        copy_dir(&root().join("examples/hello"), &dir);
        let f = Floor { dir };
        f.build();
        f
    }

    fn build(&self) -> f64 {
        let t = Instant::now();
        let out = Command::new(go())
            .current_dir(&self.dir)
            .env("CGO_ENABLED", "0")
            .args(["build", "-trimpath", "-o", "out", "."])
            .output()
            .expect("go build");
        assert!(out.status.success(), "go build failed: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed().as_secs_f64()
    }

    /// The same edit gohot just served, built bare.
    fn edit(&self, i: usize) -> f64 {
        apply_edit(&self.dir, i);
        self.build()
    }
}

fn main() {
    let args = parse_args();
    assert!(gohot_bin().is_file(), "build first: cargo build --release (bench/reload does it)");
    let work = tempfile::Builder::new().prefix("gohot-bench").tempdir().expect("tempdir");
    let log = |s: String| {
        if !args.json {
            eprintln!("{s}")
        } else {
            eprintln!("bench: {s}")
        }
    };
    if args.debug {
        let stats = debug::run(args.edits, args.kube, args.replicas, work.path(), &log);
        debug::report(&stats, args.json);
        return;
    }
    if args.services {
        let stats = multi::run(args.edits, args.kube, args.replicas, work.path(), &log);
        multi::report(&stats, args.kube, args.replicas, args.json);
        return;
    }
    let stats = if args.kube { run_kube(&args, work.path(), &log) } else { run_docker(&args, work.path(), &log) };
    report(&args, &stats);
}

fn run_docker(args: &Args, work: &Path, log: &dyn Fn(String)) -> Stats {
    let kocache = work.join("kocache");
    let app = work.join("hello");
    copy_dir(&root().join("examples/hello"), &app);
    let floor = Floor::new(work);
    let mut st = Stats { replicas: 1, ..Default::default() };

    // --- gohot dev, each edit followed by the floor's build of it ---
    let port = free_port();
    let container = format!("gohot-bench-{}", std::process::id());
    let dev_args = vec!["--name".to_string(), container.clone(), "-p".into(), format!("{port}:8080")];
    let dev = Dev::start(&app, &dev_args, &kocache, Some(container), &[]);
    dev.next(&["started"], Duration::from_secs(300)).expect("gohot dev did not start");
    wait_answer(port, "Hello from gohot!", Duration::from_secs(60)).expect("app did not answer");
    dev.drain();

    for i in 1..=args.edits {
        let t0 = Instant::now();
        let text = apply_edit(&app, i);
        match wait_answer(port, &text, Duration::from_secs(60)) {
            Some(t1) => st.totals.push((t1 - t0).as_secs_f64()),
            None => {
                st.failed += 1;
                continue;
            }
        }
        st.record(&dev);
        // Nothing older may serve after the new text did.
        for _ in 0..5 {
            if http_get(port, "/").as_deref() != Some(text.as_str()) {
                st.stale += 1;
                break;
            }
        }
        st.floor.push(floor.edit(i));
        log(format!(
            "edit {i}: {:.3}s (floor {:.3}s)",
            st.totals.last().copied().unwrap_or(f64::NAN),
            st.floor.last().copied().unwrap_or(f64::NAN)
        ));
    }

    (st.idle_cpu_percent, st.rss_mb, _) = dev.idle(None);

    // Soak: many edits, some landing mid-build; each must end on its text.
    for j in 0..args.soak {
        let i = args.edits + 1 + j;
        let text = apply_edit(&app, i);
        if j % 3 == 1 {
            // Overwrite while the previous build runs.
            continue;
        }
        if wait_answer(port, &text, Duration::from_secs(60)).is_none() {
            st.failed += 1;
            log(format!("soak edit {i}: never served"));
        }
        for _ in 0..3 {
            if http_get(port, "/").as_deref() != Some(text.as_str()) {
                st.stale += 1;
                break;
            }
        }
    }
    // The soak ends on its last edit, whether or not that one was waited for.
    if args.soak > 0 {
        let last = format!("bench edit {}", args.edits + args.soak);
        if wait_answer(port, &last, Duration::from_secs(60)).is_none() {
            st.failed += 1;
            log(format!("soak: the last edit ({last}) was never served"));
        } else {
            log(format!("soak: {} edits, ended on the last one", args.soak));
        }
    }
    drop(dev);

    // --- without gohot: rebuild the image, replace the container ---
    let full_dir = work.join("full");
    copy_dir(&root().join("examples/hello"), &full_dir);
    let full_port = free_port();
    let full_name = format!("gohot-bench-full-{}", std::process::id());
    for i in 1..=args.full_edits {
        let t0 = Instant::now();
        let text = apply_edit(&full_dir, i);
        let out = Command::new(gohot_bin())
            .current_dir(&full_dir)
            .env("KOCACHE", &kocache)
            .args(["build", "-B", "--repo", "ko.local/gohot-bench-full", "."])
            .stderr(Stdio::null())
            .output()
            .expect("gohot build");
        assert!(out.status.success(), "full rebuild failed");
        let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let _ = Command::new("docker").args(["rm", "-f", &full_name]).output();
        let run = Command::new("docker")
            .args(["run", "-d", "--name", &full_name, "-p", &format!("127.0.0.1:{full_port}:8080"), &image])
            .output()
            .expect("docker run");
        assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
        match wait_answer(full_port, &text, Duration::from_secs(60)) {
            Some(t1) => st.full.push((t1 - t0).as_secs_f64()),
            None => log(format!("full rebuild {i}: never served")),
        }
    }
    let _ = Command::new("docker").args(["rm", "-f", &full_name]).output();
    let _ = Command::new("sh")
        .arg("-c")
        .arg("docker images -q ko.local/gohot-bench-full/hello | sort -u | xargs -r docker rmi -f")
        .output();
    st
}

/// The cluster side: a namespace of the bench's own (deleted on drop) and
/// the app's pods reached one by one through port-forwards.
struct Cluster {
    rt: tokio::runtime::Runtime,
    cluster: gohot::cluster::Cluster,
    ns: String,
}

impl Cluster {
    fn connect() -> Cluster {
        assert!(std::env::var_os("KUBECONFIG").is_some(), "--kube needs KUBECONFIG (e.g. scripts/realkube.sh env)");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let cluster = rt
            .block_on(gohot::cluster::connect(&gohot::cluster::KubeOptions::default()))
            .unwrap_or_else(|e| panic!("cannot reach the cluster: {e}"));
        let ns = format!("gohot-bench-{}", std::process::id());
        let c = Cluster { rt, cluster, ns };
        c.rt.block_on(gohot::deploy::apply::apply(&c.cluster, &[c.namespace()])).expect("create the namespace");
        c
    }

    fn namespace(&self) -> gohot::deploy::apply::Doc {
        gohot::deploy::apply::Doc {
            origin: "bench namespace".into(),
            value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}}),
        }
    }

    /// Running, non-terminating pods of the app.
    fn pods(&self) -> Vec<String> {
        use k8s_openapi::api::core::v1::Pod;
        let api: kube::Api<Pod> = kube::Api::namespaced(self.cluster.client.clone(), &self.ns);
        let list = self.rt.block_on(api.list(&kube::api::ListParams::default().labels("app=hello"))).expect("pods");
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }

    /// `GET /` on the pod's port 8080 through a port-forward.
    fn answer(&self, pod: &str) -> Option<String> {
        self.rt.block_on(gohot::hosting::kube::logs::get_from_pod(&self.cluster, &self.ns, pod, 8080, "/"))
    }

    /// Polls every pod, all at once (each through its own port-forward),
    /// until each has answered `text`; when the last did. Polling them one
    /// after another would add a port-forward's latency per pod to the
    /// measure.
    fn wait_all(&self, pods: &[String], text: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let polls = pods.iter().map(|pod| {
            poll_until(deadline, text, move || {
                gohot::hosting::kube::logs::get_from_pod(&self.cluster, &self.ns, pod, 8080, "/")
            })
        });
        let answered: Option<Vec<Instant>> = self.rt.block_on(futures::future::join_all(polls)).into_iter().collect();
        answered?.into_iter().max()
    }
}

impl Cluster {
    /// A namespace of the bench's own besides `ns`.
    fn create_namespace(&self, ns: &str) {
        let doc = gohot::deploy::apply::Doc {
            origin: "bench namespace".into(),
            value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        };
        self.rt.block_on(gohot::deploy::apply::apply(&self.cluster, &[doc])).expect("create the namespace");
    }

    fn delete_namespace(&self, ns: &str) {
        let doc = gohot::deploy::apply::Doc {
            origin: "bench namespace".into(),
            value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        };
        let _ = self.rt.block_on(gohot::deploy::apply::delete(&self.cluster, &[doc]));
    }

    /// When every running pod of `app` in `ns` answered a body containing
    /// `text` on `port` (polled all at once).
    fn wait_all_in(&self, ns: &str, app: &str, port: u16, text: &str, timeout: Duration) -> Option<Instant> {
        use k8s_openapi::api::core::v1::Pod;
        let api: kube::Api<Pod> = kube::Api::namespaced(self.cluster.client.clone(), ns);
        let list = self.rt.block_on(api.list(&kube::api::ListParams::default().labels(&format!("app={app}")))).ok()?;
        let pods: Vec<String> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name)
            .collect();
        let deadline = Instant::now() + timeout;
        let polls = pods.iter().map(|pod| async move {
            let get = move || async move {
                let answer = gohot::hosting::kube::logs::get_from_pod(&self.cluster, ns, pod, port, "/").await;
                answer.filter(|a| a.contains(text)).map(|_| text.to_string())
            };
            poll_until(deadline, text, get).await
        });
        let answered: Option<Vec<Instant>> = self.rt.block_on(futures::future::join_all(polls)).into_iter().collect();
        answered?.into_iter().max()
    }
}

/// When `get` first returned `text`, starting a try every 50 ms with up to
/// 2 in flight: one try that hangs (a port-forward opened while the app
/// restarts can wait a second on its refused connection) does not delay the
/// next, so the time is when the pod served, not when a stuck try gave up.
/// Each try is a new port-forward (about 10 ms, and CPU in the API server,
/// the kubelet and the runtime): tried every 10 ms, two pods' tries slowed
/// gohot's build by 0.3 s; every 25 ms by 0.05 s; every 50 ms, not
/// measurably. The time is late by half the period, 25 ms, on average: the
/// measure errs against gohot.
async fn poll_until<F, Fut>(deadline: Instant, text: &str, get: F) -> Option<Instant>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    use futures::StreamExt;
    let mut tries = futures::stream::FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        if Instant::now() >= deadline {
            return None;
        }
        tokio::select! {
            _ = tick.tick(), if tries.len() < 2 => tries.push(get()),
            Some(answer) = tries.next() => {
                if answer.as_deref() == Some(text) {
                    return Some(Instant::now());
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.rt.block_on(gohot::deploy::apply::delete(&self.cluster, &[self.namespace()]));
    }
}

fn run_kube(args: &Args, work: &Path, log: &dyn Fn(String)) -> Stats {
    let kocache = work.join("kocache");
    let app = work.join("hello");
    copy_dir(&root().join("examples/hello"), &app);
    let manifest = app.join("manifests/deployment.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("  replicas: 1\n", &format!("  replicas: {}\n", args.replicas)))
        .expect("write manifest");
    let floor = Floor::new(work);
    let cluster = Cluster::connect();
    let mut st = Stats { replicas: args.replicas, ..Default::default() };
    // gohot reaches the API server over the simulated link; the bench's own
    // checks (pods, answers) go straight to it, so they cost the link nothing.
    let slow = args.link.map(|(rtt, mbit)| SlowLink::start(work, link::LinkSpec::new(rtt, mbit)));
    let env: Vec<(&str, &Path)> = slow.iter().map(|l| ("KUBECONFIG", l.kubeconfig.as_path())).collect();

    let dev_args = vec!["-n".to_string(), cluster.ns.clone(), "-f".into(), "manifests".into()];
    let dev = Dev::start(&app, &dev_args, &kocache, None, &env);
    dev.next(&["started"], Duration::from_secs(300)).expect("gohot dev did not start");
    let serving = dev.next(&["serving"], Duration::from_secs(300)).expect("gohot dev did not say it serves");
    st.first_serving = serving["seconds"].as_f64().unwrap_or(f64::NAN);
    let pods = loop {
        let pods = cluster.pods();
        if pods.len() == args.replicas {
            break pods;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    cluster.wait_all(&pods, "Hello from gohot!", Duration::from_secs(120)).expect("the pods did not answer");
    log(format!("{} pods: {}", pods.len(), pods.join(", ")));
    dev.drain();

    for i in 1..=args.edits {
        let before = slow.as_ref().map(|l| l.api.counts());
        let t0 = Instant::now();
        let text = apply_edit(&app, i);
        match cluster.wait_all(&pods, &text, Duration::from_secs(60)) {
            Some(t1) => st.totals.push((t1 - t0).as_secs_f64()),
            None => {
                st.failed += 1;
                continue;
            }
        }
        st.record(&dev);
        if let (Some(l), Some(before)) = (&slow, before) {
            let d = l.api.counts() - before;
            st.link_up.push(d.up as f64);
            st.link_down.push(d.down as f64);
            st.link_turns.push(d.turns as f64);
            st.link_connections.push(d.connections as f64);
            log(format!(
                "edit {i}: link {} B up, {} B down, {} round trips, {} new connections",
                d.up, d.down, d.turns, d.connections
            ));
        }
        for p in &pods {
            if cluster.answer(p).as_deref() != Some(text.as_str()) {
                st.stale += 1;
            }
        }
        st.floor.push(floor.edit(i));
        let last = |v: &Vec<f64>| v.last().copied().unwrap_or(f64::NAN);
        log(format!(
            "edit {i}: {:.3}s (floor {:.3}s; rest {:.3}s: sync {:.3} = encode {:.3} + write {:.3} + transport, restart {:.3}, answer {:.3})",
            last(&st.totals),
            last(&st.floor),
            last(&st.rest),
            last(&st.split[2]),
            last(&st.split[3]),
            last(&st.split[4]),
            last(&st.split[5]),
            last(&st.split[6]),
        ));
    }
    (st.idle_cpu_percent, st.rss_mb, st.idle_link_bytes_per_min) = dev.idle(slow.as_ref().map(|l| &l.api));
    drop(dev);
    if args.skaffold {
        run_skaffold_path(args, &cluster, &app, &kocache, &pods, &mut st, log);
    }
    if let (true, Some(slow)) = (args.peers, &slow) {
        let i = 2 * args.edits + 1;
        run_tar_path(&cluster, slow, &app, &pods, i, &mut st, log);
        run_redeploy_path(&cluster, slow, &app, &kocache, args.replicas, i + 1, &mut st, log);
    }
    st
}

/// The simulated link ([`link`]) in front of the API server and the
/// registry, and a copy of the kubeconfig that goes through it.
struct SlowLink {
    api: link::Link,
    registry: link::Link,
    kubeconfig: PathBuf,
}

impl SlowLink {
    fn start(work: &Path, spec: link::LinkSpec) -> SlowLink {
        let original = PathBuf::from(std::env::var_os("KUBECONFIG").expect("KUBECONFIG"));
        let kubeconfig = work.join("kubeconfig-link");
        let api = link::api_server_link(&original, spec, &kubeconfig);
        let registry = link::Link::start(([127, 0, 0, 1], 5000).into(), spec);
        SlowLink { api, registry, kubeconfig }
    }
}

/// Waits until `replicas` running pods (whichever they are: a rollout
/// replaces them) all answer `text`; when they did.
fn wait_new_pods(cluster: &Cluster, replicas: usize, text: &str, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let pods = cluster.pods();
        if pods.len() == replicas {
            if let Some(t) = cluster.wait_all(&pods, text, Duration::from_millis(500)) {
                return Some(t);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Skaffold's and Tilt's way over the link, for one edit: build the binary,
/// then `kubectl exec -i POD -- tar x` of it into every replica at once (the
/// dev image's `tar` is gohot's helper; watchexec restarts the app).
fn run_tar_path(
    cluster: &Cluster,
    slow: &SlowLink,
    app: &Path,
    pods: &[String],
    i: usize,
    st: &mut Stats,
    log: &dyn Fn(String),
) {
    let before = slow.api.counts();
    let t0 = Instant::now();
    let text = apply_edit(app, i);
    let bin = app.join("bench-binary");
    let out = Command::new(go())
        .current_dir(app)
        .env("CGO_ENABLED", "0")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .expect("go build");
    assert!(out.status.success(), "go build: {}", String::from_utf8_lossy(&out.stderr));
    let mut h = tar::Header::new_gnu();
    let binary = std::fs::read(&bin).expect("the binary");
    h.set_size(binary.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "ko-app/hello", binary.as_slice()).expect("tar");
    let stream = b.into_inner().expect("tar");
    let copies: Vec<Child> = pods
        .iter()
        .map(|p| {
            let mut c = Command::new("kubectl")
                .env("KUBECONFIG", &slow.kubeconfig)
                .args([
                    "exec",
                    p,
                    "--namespace",
                    &cluster.ns,
                    "-i",
                    "--",
                    "tar",
                    "xmf",
                    "-",
                    "-C",
                    "/",
                    "--no-same-owner",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("kubectl exec");
            let mut stdin = c.stdin.take().expect("stdin");
            let data = stream.clone();
            std::thread::spawn(move || stdin.write_all(&data));
            c
        })
        .collect();
    for mut c in copies {
        assert!(c.wait().expect("kubectl").success(), "the tar copy failed");
    }
    match cluster.wait_all(pods, &text, Duration::from_secs(120)) {
        Some(t1) => st.tar_s = (t1 - t0).as_secs_f64(),
        None => st.failed += 1,
    }
    st.tar_bytes = (slow.api.counts() - before).up as f64;
    log(format!("peers' tar of the binary into {} pods: {:.3}s, {:.0} B up", pods.len(), st.tar_s, st.tar_bytes));
}

/// A redeploy over the link, for one edit: `gohot build` of the production
/// image pushed through the registry's relay, then the Deployment applied
/// with it (as gohot dev's own field manager, so the dev command goes) and
/// rolled out until every new pod serves.
#[allow(clippy::too_many_arguments)]
fn run_redeploy_path(
    cluster: &Cluster,
    slow: &SlowLink,
    app: &Path,
    kocache: &Path,
    replicas: usize,
    i: usize,
    st: &mut Stats,
    log: &dyn Fn(String),
) {
    let before = slow.api.counts().up + slow.registry.counts().up;
    let t0 = Instant::now();
    let text = apply_edit(app, i);
    let repo = format!("127.0.0.1:{}/bench-{}", slow.registry.addr().port(), std::process::id());
    let out = Command::new(gohot_bin())
        .current_dir(app)
        .env("KOCACHE", kocache)
        .env("KO_DOCKER_REPO", &repo)
        .args(["build", "."])
        .stderr(Stdio::null())
        .output()
        .expect("gohot build");
    assert!(out.status.success(), "gohot build through the registry link failed");
    // The same registry behind its usual address: the node pulls it there.
    let pushed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let image = pushed.replacen(&format!("127.0.0.1:{}", slow.registry.addr().port()), "127.0.0.1:5000", 1);
    let manifest = std::fs::read_to_string(app.join("manifests/deployment.yaml")).expect("manifest");
    let yaml = manifest.split("\n---").next().expect("the Deployment").replace("ko://example.com/hello", &image);
    let mut deployment: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("Deployment YAML");
    deployment["metadata"]["namespace"] = cluster.ns.clone().into();
    let opts = gohot::cluster::KubeOptions { kubeconfig: Some(slow.kubeconfig.clone()), ..Default::default() };
    let through_link = cluster.rt.block_on(gohot::cluster::connect(&opts)).expect("the cluster through the link");
    let doc = gohot::deploy::apply::Doc { origin: "bench redeploy".into(), value: deployment };
    cluster.rt.block_on(gohot::deploy::apply::apply(&through_link, &[doc])).expect("apply the Deployment");
    match wait_new_pods(cluster, replicas, &text, Duration::from_secs(300)) {
        Some(t1) => st.redeploy_s = (t1 - t0).as_secs_f64(),
        None => st.failed += 1,
    }
    st.redeploy_bytes = (slow.api.counts().up + slow.registry.counts().up - before) as f64;
    log(format!("redeploy (build, push, apply, rollout): {:.3}s, {:.0} B up", st.redeploy_s, st.redeploy_bytes));
}

/// Skaffold's `Item` sync for a Go save, as docs/skaffold.md sets it up: the
/// before hook, then the copy into every pod (sync.Perform runs them in
/// parallel).
fn run_skaffold_path(
    args: &Args,
    cluster: &Cluster,
    app: &Path,
    kocache: &Path,
    pods: &[String],
    st: &mut Stats,
    log: &dyn Fn(String),
) {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(cluster.cluster.client.clone(), &cluster.ns);
    let pod = cluster.rt.block_on(api.get(&pods[0])).expect("pod");
    let spec = pod.spec.expect("spec");
    let container = spec.containers[0].clone();
    let image = container.image.expect("image");
    let main_go = app.join("main.go");
    for i in args.edits + 1..=2 * args.edits {
        let t0 = Instant::now();
        let text = apply_edit(app, i);
        let hook = Command::new(gohot_bin())
            .current_dir(app)
            .args(["skaffold", "sync"])
            .env("KOCACHE", kocache)
            .env("GOHOT_WATCHEXEC", watchexec())
            .env("SKAFFOLD_IMAGE", &image)
            .env("SKAFFOLD_BUILD_CONTEXT", app)
            .env("SKAFFOLD_FILES_ADDED_OR_MODIFIED", &main_go)
            .env("SKAFFOLD_FILES_DELETED", "")
            .env("SKAFFOLD_KUBE_CONTEXT", &cluster.cluster.context.name)
            .env("SKAFFOLD_NAMESPACES", &cluster.ns)
            .output()
            .expect("gohot skaffold sync");
        if !hook.status.success() {
            log(format!("skaffold edit {i}: the hook failed: {}", String::from_utf8_lossy(&hook.stderr)));
            st.failed += 1;
            continue;
        }
        // The hook returns once watchexec runs the new binary in every pod;
        // Skaffold's copy of the source follows.
        match cluster.wait_all(pods, &text, Duration::from_secs(60)) {
            Some(t1) => st.skaffold.push((t1 - t0).as_secs_f64()),
            None => st.failed += 1,
        }
        let stream = mapped_tar(&main_go, "/var/run/gohot/discard/main.go");
        let copies: Vec<Child> = pods
            .iter()
            .map(|p| {
                let mut c = Command::new("kubectl")
                    .args(["--context", &cluster.cluster.context.name, "exec", p, "--namespace", &cluster.ns])
                    .args(["-c", &container.name, "-i", "--", "tar", "xmf", "-", "-C", "/", "--no-same-owner"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("kubectl exec");
                let _ = c.stdin.take().expect("stdin").write_all(&stream);
                c
            })
            .collect();
        for mut c in copies {
            assert!(c.wait().expect("kubectl").success(), "skaffold's copy failed");
        }
        st.skaffold_sync_done.push(t0.elapsed().as_secs_f64());
        log(format!(
            "skaffold edit {i}: serving {:.3}s, sync done {:.3}s",
            st.skaffold.last().copied().unwrap_or(f64::NAN),
            st.skaffold_sync_done.last().copied().unwrap_or(f64::NAN)
        ));
    }
}

/// Skaffold's `util.CreateMappedTar` for one file: a header from the local
/// file's metadata, named by the absolute container path.
fn mapped_tar(src: &Path, dst: &str) -> Vec<u8> {
    let meta = std::fs::metadata(src).expect("stat");
    let mut h = tar::Header::new_ustar();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let name = &mut h.as_ustar_mut().expect("ustar").name;
    name.fill(0);
    name[..dst.len()].copy_from_slice(dst.as_bytes());
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::fs::File::open(src).expect("open")).expect("append");
    b.into_inner().expect("finish")
}

fn report(args: &Args, st: &Stats) {
    let gohot_p50 = percentile(&st.totals, 50.0);
    let floor_p50 = percentile(&st.floor, 50.0);
    let full_p50 = percentile(&st.full, 50.0);
    let bytes = percentile(&st.bytes, 50.0);
    let result = serde_json::json!({
        "target": if args.kube { "kube" } else { "docker" },
        "replicas": st.replicas,
        "edits": st.totals.len(),
        "soak_edits": args.soak,
        "gohot_p50_s": gohot_p50,
        "gohot_p95_s": percentile(&st.totals, 95.0),
        "floor_p50_s": floor_p50,
        "floor_p95_s": percentile(&st.floor, 95.0),
        "full_p50_s": full_p50,
        "full_edits": st.full.len(),
        "gohot_over_floor": gohot_p50 / floor_p50,
        "full_over_gohot": full_p50 / gohot_p50,
        "overhead_p50_s": percentile(&st.overhead, 50.0),
        "split_p50_s": STEPS.iter().zip(&st.split).map(|(n, v)| (n.to_string(), serde_json::json!(percentile(v, 50.0)))).collect::<serde_json::Map<_, _>>(),
        "bytes_per_reload": bytes,
        "binary_bytes": st.binary_bytes,
        "bytes_ratio": bytes / st.binary_bytes as f64,
        "failed_reloads": st.failed,
        "stale_reloads": st.stale,
        "idle_cpu_percent": st.idle_cpu_percent,
        "rss_mb": st.rss_mb,
        "skaffold_edits": st.skaffold.len(),
        "skaffold_p50_s": percentile(&st.skaffold, 50.0),
        "skaffold_p95_s": percentile(&st.skaffold, 95.0),
        "skaffold_sync_done_p50_s": percentile(&st.skaffold_sync_done, 50.0),
        "link": args.link.map(|(rtt, mbit)| serde_json::json!({"rtt_ms": rtt, "up_mbit": mbit})),
        "rest_p50_s": percentile(&st.rest, 50.0),
        "link_up_bytes_p50": percentile(&st.link_up, 50.0),
        "link_down_bytes_p50": percentile(&st.link_down, 50.0),
        "link_round_trips_p50": percentile(&st.link_turns, 50.0),
        "link_round_trips_max": st.link_turns.iter().copied().fold(f64::NAN, f64::max),
        "link_new_connections_max": st.link_connections.iter().copied().fold(f64::NAN, f64::max),
        "idle_link_bytes_per_min": st.idle_link_bytes_per_min,
        "first_serving_s": st.first_serving,
        "peers_tar_s": st.tar_s,
        "peers_tar_bytes": st.tar_bytes,
        "peers_redeploy_s": st.redeploy_s,
        "peers_redeploy_bytes": st.redeploy_bytes,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
        return;
    }
    let what = if args.kube {
        format!("edit→every replica serving ({} pods)", st.replicas)
    } else {
        "edit→serving".into()
    };
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| edits (gohot) | {} (+{} soak) |", st.totals.len(), args.soak);
    println!("| gohot {what} p50 / p95 | {:.3} s / {:.3} s |", gohot_p50, percentile(&st.totals, 95.0));
    println!(
        "| floor: bare `go build -trimpath` p50 (interleaved) | {:.3} s ({:.2}× → gohot) |",
        floor_p50,
        gohot_p50 / floor_p50
    );
    if !st.full.is_empty() {
        println!(
            "| full image rebuild + container replace p50 | {:.3} s ({:.1}× slower than gohot, {} edits) |",
            full_p50,
            full_p50 / gohot_p50,
            st.full.len()
        );
    }
    for (n, v) in STEPS.iter().zip(&st.split) {
        println!("| step {n} p50 | {:.3} s |", percentile(v, 50.0));
    }
    println!("| gohot's own part (detect + sync + restart + answer) p50 | {:.3} s |", percentile(&st.overhead, 50.0));
    println!(
        "| bytes sent per reload, all replicas (median) | {:.0} B ({:.1}% of the {} B binary) |",
        bytes,
        100.0 * bytes / st.binary_bytes as f64,
        st.binary_bytes
    );
    println!("| gohot's total less its build (\"the rest\") p50 | {:.3} s |", percentile(&st.rest, 50.0));
    if let Some((rtt, mbit)) = args.link {
        let rest = percentile(&st.rest, 50.0);
        println!("| link | {rtt} ms RTT, {mbit} Mbit/s up |");
        println!("| the rest in round trips p50 | {:.2} RTT |", rest * 1000.0 / rtt as f64);
        println!(
            "| per reload on the link p50: up / down | {:.0} B / {:.0} B |",
            percentile(&st.link_up, 50.0),
            percentile(&st.link_down, 50.0)
        );
        println!(
            "| round trips per reload p50 (max) / new connections (max) | {:.0} ({:.0}) / {:.0} |",
            percentile(&st.link_turns, 50.0),
            st.link_turns.iter().copied().fold(f64::NAN, f64::max),
            st.link_connections.iter().copied().fold(f64::NAN, f64::max)
        );
        println!("| idle traffic on the link | {:.0} B/min |", st.idle_link_bytes_per_min);
        println!(
            "| `gohot dev` started → first request served (build, deploy, rollout; images pushed before) | {:.2} s |",
            st.first_serving
        );
        if args.peers {
            println!(
                "| peers: `tar` of the binary into every replica (1 edit) | {:.3} s, {:.0} B up |",
                st.tar_s, st.tar_bytes
            );
            println!(
                "| peers: rebuild + push + rollout (1 edit) | {:.3} s, {:.0} B up |",
                st.redeploy_s, st.redeploy_bytes
            );
        }
    }
    println!("| failed / stale reloads | {} / {} |", st.failed, st.stale);
    println!("| gohot idle CPU / RSS | {:.2} % / {:.0} MB |", st.idle_cpu_percent, st.rss_mb);
    if !st.skaffold.is_empty() {
        println!(
            "| Skaffold sync hook path {what} p50 / p95 | {:.3} s / {:.3} s ({} edits) |",
            percentile(&st.skaffold, 50.0),
            percentile(&st.skaffold, 95.0),
            st.skaffold.len()
        );
        println!(
            "| Skaffold sync hook path: save → Skaffold's sync done (hook + its copy) p50 | {:.3} s |",
            percentile(&st.skaffold_sync_done, 50.0)
        );
    }
}
