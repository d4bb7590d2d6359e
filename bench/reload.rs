//! The reload benchmark: edit → serving, measured end to end.
//!
//! Runs `gohot dev` on the hello example (Docker target), makes real source
//! edits (greeting changes, and every fourth edit a new HTTP handler), and
//! for each measures save → first HTTP answer carrying the new text. In the
//! same run it measures the floor — a bare incremental `go build -trimpath`
//! of the same edits — and what users do without gohot: a full image rebuild
//! plus container replacement. Prints a table, or JSON with `--json`.
//!
//! Usage: bench/reload [--edits N] [--full-edits N] [--soak N] [--json]

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
}

fn parse_args() -> Args {
    let mut a = Args { edits: 20, full_edits: 5, soak: 0, json: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--edits" => a.edits = num("--edits"),
            "--full-edits" => a.full_edits = num("--full-edits"),
            "--soak" => a.soak = num("--soak"),
            "--json" => a.json = true,
            other => panic!("unknown argument {other}: use --edits N --full-edits N --soak N --json"),
        }
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
    container: String,
}

impl Dev {
    fn start(app: &Path, port: u16, kocache: &Path) -> Dev {
        let container = format!("gohot-bench-{}", std::process::id());
        let mut child = Command::new(gohot_bin())
            .current_dir(app)
            .env("KOCACHE", kocache)
            .args(["dev", ".", "--json", "--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
            .arg(watchexec())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gohot dev");
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
        let _ = Command::new("docker").args(["rm", "-f", &self.container]).output();
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

fn main() {
    let args = parse_args();
    assert!(gohot_bin().is_file(), "build first: cargo build --release (bench/reload does it)");
    let work = tempfile::Builder::new().prefix("gohot-bench").tempdir().expect("tempdir");
    let kocache = work.path().join("kocache");
    let app = work.path().join("hello");
    copy_dir(&root().join("examples/hello"), &app);
    let log = |s: String| {
        if !args.json {
            eprintln!("{s}")
        } else {
            eprintln!("bench: {s}")
        }
    };

    // --- gohot dev ---
    let port = free_port();
    let dev = Dev::start(&app, port, &kocache);
    dev.next(&["started"], Duration::from_secs(300)).expect("gohot dev did not start");
    wait_answer(port, "Hello from gohot!", Duration::from_secs(60)).expect("app did not answer");
    dev.drain();
    // Idle CPU: gohot does nothing between saves.
    let cpu0 = dev.cpu_seconds();
    let idle = Duration::from_secs(5);
    std::thread::sleep(idle);
    let idle_cpu_percent = (dev.cpu_seconds() - cpu0) / idle.as_secs_f64() * 100.0;

    let mut totals = Vec::new();
    let mut split: [Vec<f64>; 5] = Default::default();
    let mut bytes = Vec::new();
    let mut binary_bytes = 0u64;
    let mut failed = 0usize;
    let mut stale = 0usize;
    for i in 1..=args.edits {
        let t0 = Instant::now();
        let text = apply_edit(&app, i);
        match wait_answer(port, &text, Duration::from_secs(60)) {
            Some(t1) => totals.push((t1 - t0).as_secs_f64()),
            None => {
                failed += 1;
                continue;
            }
        }
        match dev.next(&["reloaded", "sync_failed"], Duration::from_secs(30)) {
            Some(e) if e["event"] == "reloaded" => {
                let t = &e["timings"];
                for (k, name) in ["detect", "build", "sync", "restart", "answer"].iter().enumerate() {
                    split[k].push(t[*name].as_f64().unwrap_or(f64::NAN));
                }
                bytes.push(e["bytes_sent"].as_u64().unwrap_or(0) as f64);
                binary_bytes = e["binary_bytes"].as_u64().unwrap_or(0);
            }
            _ => failed += 1,
        }
        // Nothing older may serve after the new text did.
        for _ in 0..5 {
            if http_get(port, "/").as_deref() != Some(text.as_str()) {
                stale += 1;
                break;
            }
        }
        log(format!("edit {i}: {:.3}s", totals.last().copied().unwrap_or(f64::NAN)));
    }

    // Soak: many edits, some landing mid-build; each must end on its text.
    let mut soak_failed = 0;
    for j in 0..args.soak {
        let i = args.edits + 1 + j;
        let text = apply_edit(&app, i);
        if j % 3 == 1 {
            // Overwrite while the previous build runs.
            continue;
        }
        if wait_answer(port, &text, Duration::from_secs(60)).is_none() {
            soak_failed += 1;
            log(format!("soak edit {i}: never served"));
        }
        for _ in 0..3 {
            if http_get(port, "/").as_deref() != Some(text.as_str()) {
                stale += 1;
                break;
            }
        }
    }
    // The soak ends on its last edit, whether or not that one was waited for.
    if args.soak > 0 {
        let last = format!("bench edit {}", args.edits + args.soak);
        if wait_answer(port, &last, Duration::from_secs(60)).is_none() {
            soak_failed += 1;
            log(format!("soak: the last edit ({last}) was never served"));
        } else {
            log(format!("soak: {} edits, ended on the last one", args.soak));
        }
    }
    failed += soak_failed;
    drop(dev);

    // --- the floor: bare incremental go build of the same edits ---
    let floor_dir = work.path().join("floor");
    copy_dir(&root().join("examples/hello"), &floor_dir);
    let go_build = |dir: &Path| {
        let t = Instant::now();
        let out = Command::new(go())
            .current_dir(dir)
            .env("CGO_ENABLED", "0")
            .args(["build", "-trimpath", "-o", "out", "."])
            .output()
            .expect("go build");
        assert!(out.status.success(), "go build failed: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed().as_secs_f64()
    };
    go_build(&floor_dir);
    let floor: Vec<f64> = (1..=args.edits)
        .map(|i| {
            apply_edit(&floor_dir, i);
            go_build(&floor_dir)
        })
        .collect();

    // --- without gohot: rebuild the image, replace the container ---
    let full_dir = work.path().join("full");
    copy_dir(&root().join("examples/hello"), &full_dir);
    let full_port = free_port();
    let full_name = format!("gohot-bench-full-{}", std::process::id());
    let mut full = Vec::new();
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
            Some(t1) => full.push((t1 - t0).as_secs_f64()),
            None => log(format!("full rebuild {i}: never served")),
        }
    }
    let _ = Command::new("docker").args(["rm", "-f", &full_name]).output();
    let _ = Command::new("sh")
        .arg("-c")
        .arg("docker images -q ko.local/gohot-bench-full/hello | sort -u | xargs -r docker rmi -f")
        .output();

    let gohot_p50 = percentile(&totals, 50.0);
    let floor_p50 = percentile(&floor, 50.0);
    let full_p50 = percentile(&full, 50.0);
    let names = ["detect", "build", "sync", "restart", "answer"];
    let result = serde_json::json!({
        "edits": totals.len(),
        "soak_edits": args.soak,
        "gohot_p50_s": gohot_p50,
        "gohot_p95_s": percentile(&totals, 95.0),
        "floor_p50_s": floor_p50,
        "floor_p95_s": percentile(&floor, 95.0),
        "full_p50_s": full_p50,
        "full_edits": full.len(),
        "gohot_over_floor": gohot_p50 / floor_p50,
        "full_over_gohot": full_p50 / gohot_p50,
        "split_p50_s": names.iter().zip(&split).map(|(n, v)| (n.to_string(), serde_json::json!(percentile(v, 50.0)))).collect::<serde_json::Map<_, _>>(),
        "bytes_per_reload": percentile(&bytes, 50.0),
        "binary_bytes": binary_bytes,
        "bytes_ratio": percentile(&bytes, 50.0) / binary_bytes as f64,
        "failed_reloads": failed,
        "stale_reloads": stale,
        "idle_cpu_percent": idle_cpu_percent,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
        return;
    }
    let r = &result;
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| edits (gohot) | {} (+{} soak) |", r["edits"], args.soak);
    println!("| gohot edit→serving p50 / p95 | {:.3} s / {:.3} s |", gohot_p50, percentile(&totals, 95.0));
    println!("| floor: bare `go build -trimpath` p50 | {:.3} s ({:.2}× → gohot) |", floor_p50, gohot_p50 / floor_p50);
    println!(
        "| full image rebuild + container replace p50 | {:.3} s ({:.1}× slower than gohot, {} edits) |",
        full_p50,
        full_p50 / gohot_p50,
        full.len()
    );
    for (n, v) in names.iter().zip(&split) {
        println!("| step {n} p50 | {:.3} s |", percentile(v, 50.0));
    }
    println!(
        "| bytes sent per reload (median) | {:.0} B ({:.1}% of the {} B binary) |",
        percentile(&bytes, 50.0),
        100.0 * percentile(&bytes, 50.0) / binary_bytes as f64,
        binary_bytes
    );
    println!("| failed / stale reloads | {failed} / {stale} |");
    println!("| gohot CPU while idle | {idle_cpu_percent:.2} % |");
}
