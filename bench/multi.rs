//! `bench/reload --services`: several services in one session against one
//! service alone, interleaved in one run.
//!
//! Two copies of examples/shop (api, worker and gateway sharing
//! `internal/price`) run side by side: one under `gohot dev ./cmd/api`
//! alone, one under a session of all three (on `--kube`: `gohot dev
//! ./cmd/api -f manifests` and `gohot dev -f manifests`, `--replicas` pods
//! each, in namespaces of their own). Each round edits, in turn:
//!
//! 1. the shared package in the single session's copy → the api serving it;
//! 2. the shared package in the session's copy → all three serving it;
//! 3. the api's own `main.go` in the single session's copy → the api serving;
//! 4. the api's own `main.go` in the session's copy → the api serving, and
//!    how many builds of the other services that save started (want 0).
//!
//! After 1 and 2, a third copy of the module builds the same edit bare —
//! `go build -trimpath` of the api, then of the three at once — the floors
//! no tool can beat: on a machine of few cores three links cost more than one.
//!
//! Then the gateway gets a compile error and the shared package is edited
//! again for half as many rounds: the api and the worker must serve every
//! edit (stale: a round where one did not). Last, the session's idle CPU
//! and RSS. Every time is save → the last replica serving, over HTTP (on
//! the cluster, through a port-forward to each pod).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{copy_dir, free_port, go, gohot_bin, http_get, percentile, root, watchexec, Cluster, Dev};

const SERVICES: [(&str, u16); 3] = [("api", 8080), ("worker", 9090), ("gateway", 8081)];

/// Where a session's services answer.
enum Reach<'a> {
    /// Host ports, by service.
    Ports(Vec<(&'static str, u16)>),
    /// Every pod of each service in this namespace.
    Pods(&'a Cluster, String),
}

impl Reach<'_> {
    /// When every replica of `service` answered with a body containing `text`.
    fn serving(&self, service: &str, text: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        match self {
            Reach::Ports(ports) => {
                let port = ports.iter().find(|(n, _)| *n == service)?.1;
                while Instant::now() < deadline {
                    if http_get(port, "/").is_some_and(|b| b.contains(text)) {
                        return Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                None
            }
            Reach::Pods(cluster, ns) => {
                let port = SERVICES.iter().find(|(n, _)| *n == service)?.1;
                cluster.wait_all_in(ns, service, port, text, timeout)
            }
        }
    }

    /// When all three answered `text`.
    fn all_serving(&self, text: &str, timeout: Duration) -> Option<Instant> {
        SERVICES.iter().map(|(n, _)| self.serving(n, text, timeout)).collect::<Option<Vec<_>>>()?.into_iter().max()
    }
}

/// What the multi-service run measured.
#[derive(Default)]
pub struct MultiStats {
    single_shared: Vec<f64>,
    multi_shared: Vec<f64>,
    single_own: Vec<f64>,
    multi_own: Vec<f64>,
    single_floor: Vec<f64>,
    three_floor: Vec<f64>,
    other_builds: usize,
    failed: usize,
    isolation_edits: usize,
    stale: usize,
    idle_cpu_percent: f64,
    rss_mb: f64,
}

fn set_var(dir: &Path, file: &str, var: &str, value: &str) {
    let path = dir.join(file);
    let src = std::fs::read_to_string(&path).expect("source");
    let key = format!("var {var} = \"");
    let start = src.find(&key).expect("the variable") + key.len();
    let end = start + src[start..].find('"').expect("end quote");
    let tmp = path.with_extension("go.bench-tmp");
    std::fs::write(&tmp, format!("{}{value}{}", &src[..start], &src[end..])).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

/// The floor for the services of one edit: bare incremental `go build
/// -trimpath` of each, all at once, in the floor's own copy of the module.
fn floor_build(dir: &Path, services: &[&str]) -> f64 {
    let t = Instant::now();
    let builds: Vec<_> = services
        .iter()
        .map(|s| {
            Command::new(go())
                .current_dir(dir)
                .env("CGO_ENABLED", "0")
                .args(["build", "-trimpath", "-o", &format!("out/{s}"), &format!("./cmd/{s}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("go build")
        })
        .collect();
    for b in builds {
        let out = b.wait_with_output().expect("go build");
        assert!(out.status.success(), "go build failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    t.elapsed().as_secs_f64()
}

/// Times one edit: from the save until `done` says when it was served.
fn timed(edit: impl FnOnce(), done: impl FnOnce() -> Option<Instant>) -> Option<f64> {
    let t0 = Instant::now();
    edit();
    done().map(|t| (t - t0).as_secs_f64())
}

fn start(dir: &Path, argv: &[String], kocache: &Path) -> Dev {
    let mut cmd = Command::new(gohot_bin());
    cmd.current_dir(dir)
        .env("KOCACHE", kocache)
        .arg("dev")
        .args(argv)
        .args(["--json", "--watchexec"])
        .arg(watchexec())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    Dev::spawn(cmd, None)
}

/// Runs the comparison (see the module doc).
pub fn run(edits: usize, kube: bool, replicas: usize, work: &Path, log: &dyn Fn(String)) -> MultiStats {
    let kocache = work.join("kocache");
    let (single_dir, multi_dir, floor_dir) = (work.join("single"), work.join("multi"), work.join("floor"));
    for d in [&single_dir, &multi_dir, &floor_dir] {
        copy_dir(&root().join("examples/shop"), d);
        for (n, _) in SERVICES {
            let m = d.join(format!("manifests/{n}.yaml"));
            let text = std::fs::read_to_string(&m).expect("manifest");
            std::fs::write(&m, text.replace("  replicas: 1\n", &format!("  replicas: {replicas}\n"))).expect("write");
        }
    }
    let cluster = kube.then(Cluster::connect);
    let pid = std::process::id();
    let (single_args, multi_args, single_reach, multi_reach) = match &cluster {
        None => {
            let ports: Vec<(&str, u16)> = SERVICES.iter().map(|(n, _)| (*n, free_port())).collect();
            let p = |n: &str| ports.iter().find(|(m, _)| *m == n).map(|(_, p)| *p).unwrap_or(0);
            let single_port = free_port();
            let single = vec![
                "./cmd/api".to_string(),
                "--name".into(),
                format!("gohot-bench-single-{pid}"),
                "-p".into(),
                format!("{single_port}:8080"),
            ];
            let mut multi: Vec<String> = vec!["./cmd/api".into(), "./cmd/worker".into(), "./cmd/gateway".into()];
            multi.extend(["--name".into(), format!("gohot-bench-multi-{pid}")]);
            for (n, port) in SERVICES {
                multi.extend(["-p".into(), format!("{n}={}:{port}", p(n))]);
            }
            (single, multi, Reach::Ports(vec![("api", single_port)]), Reach::Ports(ports))
        }
        Some(c) => {
            let (ns1, ns2) = (format!("{}-single", c.ns), format!("{}-multi", c.ns));
            c.create_namespace(&ns1);
            c.create_namespace(&ns2);
            let single = vec!["./cmd/api".to_string(), "-f".into(), "manifests".into(), "-n".into(), ns1.clone()];
            let multi = vec!["-f".to_string(), "manifests".into(), "-n".into(), ns2.clone()];
            (single, multi, Reach::Pods(c, ns1), Reach::Pods(c, ns2))
        }
    };
    let single = start(&single_dir, &single_args, &kocache);
    single.next(&["started"], Duration::from_secs(420)).expect("the single session did not start");
    let multi = start(&multi_dir, &multi_args, &kocache);
    for _ in SERVICES {
        multi.next(&["started"], Duration::from_secs(420)).expect("the session of three did not start");
    }
    single_reach.serving("api", "prices v1", Duration::from_secs(180)).expect("the single api does not answer");
    multi_reach.all_serving("prices v1", Duration::from_secs(180)).expect("the three services do not answer");
    floor_build(&floor_dir, &["api", "worker", "gateway"]);
    log(format!("both sessions serve ({})", if kube { "cluster" } else { "Docker engine" }));
    let timeout = Duration::from_secs(60);
    let mut st = MultiStats::default();
    let push = |v: &mut Vec<f64>, t: Option<f64>, failed: &mut usize| match t {
        Some(t) => v.push(t),
        None => *failed += 1,
    };
    for i in 1..=edits {
        let label = format!("prices s{i}");
        let t = timed(
            || set_var(&single_dir, "internal/price/price.go", "Label", &label),
            || single_reach.serving("api", &label, timeout),
        );
        push(&mut st.single_shared, t, &mut st.failed);
        // The floors of the same edit, right after gohot served it (load falls on both alike).
        set_var(&floor_dir, "internal/price/price.go", "Label", &format!("prices f{i}"));
        st.single_floor.push(floor_build(&floor_dir, &["api"]));
        let label = format!("prices m{i}");
        let t = timed(
            || set_var(&multi_dir, "internal/price/price.go", "Label", &label),
            || multi_reach.all_serving(&label, timeout),
        );
        push(&mut st.multi_shared, t, &mut st.failed);
        set_var(&floor_dir, "internal/price/price.go", "Label", &format!("prices g{i}"));
        st.three_floor.push(floor_build(&floor_dir, &["api", "worker", "gateway"]));
        let greeting = format!("api s{i}");
        let t = timed(
            || set_var(&single_dir, "cmd/api/main.go", "greeting", &greeting),
            || single_reach.serving("api", &greeting, timeout),
        );
        push(&mut st.single_own, t, &mut st.failed);
        multi.drain();
        let greeting = format!("api m{i}");
        let t = timed(
            || set_var(&multi_dir, "cmd/api/main.go", "greeting", &greeting),
            || multi_reach.serving("api", &greeting, timeout),
        );
        push(&mut st.multi_own, t, &mut st.failed);
        // Builds that save started for the other services (seen until the api's reload).
        while let Some(e) = multi.next(&["build_started", "reloaded"], Duration::from_secs(5)) {
            if e["event"] == "build_started" && e["app"] != "api" {
                st.other_builds += 1;
            }
            if e["event"] == "reloaded" && e["app"] == "api" {
                break;
            }
        }
        log(format!(
            "round {i}: shared {:.3}s alone (floor {:.3}s), {:.3}s all three (floor {:.3}s) · own {:.3}s alone, {:.3}s in the session",
            st.single_shared.last().copied().unwrap_or(f64::NAN),
            st.single_floor.last().copied().unwrap_or(f64::NAN),
            st.multi_shared.last().copied().unwrap_or(f64::NAN),
            st.three_floor.last().copied().unwrap_or(f64::NAN),
            st.single_own.last().copied().unwrap_or(f64::NAN),
            st.multi_own.last().copied().unwrap_or(f64::NAN),
        ));
    }
    // A compile error in the gateway: the api and the worker keep reloading.
    std::fs::write(multi_dir.join("cmd/gateway/broken.go"), "package main\n\nfunc broken() { undefinedThing() }\n")
        .expect("write");
    for i in 1..=edits.div_ceil(2) {
        let label = format!("prices broken{i}");
        set_var(&multi_dir, "internal/price/price.go", "Label", &label);
        st.isolation_edits += 1;
        let served = ["api", "worker"].iter().all(|s| multi_reach.serving(s, &label, timeout).is_some());
        if !served {
            st.stale += 1;
        }
    }
    (st.idle_cpu_percent, st.rss_mb, _) = multi.idle(None);
    drop(multi);
    drop(single);
    if let Some(c) = &cluster {
        for ns in [format!("{}-single", c.ns), format!("{}-multi", c.ns)] {
            c.delete_namespace(&ns);
        }
    }
    st
}

/// The comparison as JSON and, for people, a table.
pub fn report(st: &MultiStats, kube: bool, replicas: usize, json: bool) {
    let p50 = |v: &Vec<f64>| percentile(v, 50.0);
    let result = serde_json::json!({
        "target": if kube { "kube" } else { "docker" },
        "replicas": replicas,
        "rounds": st.multi_shared.len(),
        "single_shared_p50_s": p50(&st.single_shared),
        "all_three_shared_p50_s": p50(&st.multi_shared),
        "shared_ratio": p50(&st.multi_shared) / p50(&st.single_shared),
        "single_floor_p50_s": p50(&st.single_floor),
        "three_floor_p50_s": p50(&st.three_floor),
        "floor_ratio": p50(&st.three_floor) / p50(&st.single_floor),
        "all_three_over_their_floor": p50(&st.multi_shared) / p50(&st.three_floor),
        "single_over_its_floor": p50(&st.single_shared) / p50(&st.single_floor),
        "single_own_p50_s": p50(&st.single_own),
        "session_own_p50_s": p50(&st.multi_own),
        "own_ratio": p50(&st.multi_own) / p50(&st.single_own),
        "builds_of_other_services": st.other_builds,
        "failed": st.failed,
        "compile_error_rounds": st.isolation_edits,
        "stale_with_a_compile_error": st.stale,
        "idle_cpu_percent": st.idle_cpu_percent,
        "rss_mb": st.rss_mb,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
        return;
    }
    let every = if kube { format!(" ({replicas} pods each)") } else { String::new() };
    println!("| measure{every} | value |");
    println!("| --- | --- |");
    println!(
        "| shared-package edit → all three serving p50, vs the api alone | {:.3} s vs {:.3} s ({:.2}×) |",
        p50(&st.multi_shared),
        p50(&st.single_shared),
        p50(&st.multi_shared) / p50(&st.single_shared)
    );
    println!(
        "| floor: bare `go build -trimpath` of the three at once vs of the api, interleaved p50 | {:.3} s vs {:.3} s ({:.2}×) |",
        p50(&st.three_floor),
        p50(&st.single_floor),
        p50(&st.three_floor) / p50(&st.single_floor)
    );
    println!(
        "| over their floor: all three / the api alone | {:.2}× / {:.2}× |",
        p50(&st.multi_shared) / p50(&st.three_floor),
        p50(&st.single_shared) / p50(&st.single_floor)
    );
    println!(
        "| api's own edit → the api serving p50, in the session vs alone | {:.3} s vs {:.3} s ({:.2}×) |",
        p50(&st.multi_own),
        p50(&st.single_own),
        p50(&st.multi_own) / p50(&st.single_own)
    );
    println!("| builds of the other services for the api's own edits | {} |", st.other_builds);
    println!(
        "| rounds with a compile error in the gateway where api or worker went stale | {} of {} |",
        st.stale, st.isolation_edits
    );
    println!("| failed edits | {} |", st.failed);
    println!("| session of three: idle CPU / RSS | {:.2} % / {:.0} MB |", st.idle_cpu_percent, st.rss_mb);
}
