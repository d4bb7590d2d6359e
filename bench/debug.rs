//! `bench/reload --debug`: a reload under `gohot dev --debug`, with an
//! editor attached and its breakpoint set again in every new process,
//! against the same reload without `--debug`, interleaved in one run.
//!
//! Two copies of examples/hello run side by side on the Docker engine (with
//! `--kube`, on the cluster, `--replicas` pods each, in namespaces of their
//! own): one under `gohot dev`, one under `gohot dev --debug` (delve as
//! users get it: built by gohot, here from the vendored source offline),
//! with the test suite's DAP client attached
//! through gohot's port and a breakpoint in the `/kodata/` handler (never requested: the
//! timing is not a stop). Each round edits the plain copy, waits for its
//! `reloaded`, then the same edit in the debug copy, and waits for its
//! `reloaded` — which under `--debug` comes after the breakpoint was set
//! again (`debug_reattached`). Compared: `timings.total` (save → serving,
//! with the breakpoints replayed under `--debug`), and its parts: the build
//! (`-gcflags=all=-N -l` and DWARF kept are slower), restart + answer
//! (delve starting the process is the rest) and the replay itself.

use std::path::Path;
use std::time::Duration;

use super::dap_client::{line_of, DapClient};
use super::{apply_edit, copy_dir, free_port, percentile, root, Cluster, Dev};

/// One side's per-reload numbers.
#[derive(Default)]
pub struct Side {
    total: Vec<f64>,
    build: Vec<f64>,
    /// restart + answer: the new process started and answering.
    start: Vec<f64>,
    /// Encoding, sending and writing the binary, up to its rename.
    sync: Vec<f64>,
    /// Of `start`: the rename until the new process was seen.
    restart: Vec<f64>,
    /// The save until the build started (the debounce).
    detect: Vec<f64>,
    /// Of `sync`: encoding the delta, and the helper writing the binary.
    encode: Vec<f64>,
    write: Vec<f64>,
    failed: usize,
}

/// What the run measured.
#[derive(Default)]
pub struct Stats {
    plain: Side,
    debug: Side,
    /// `debug_reattached.seconds`: the new process answering → breakpoints set.
    replay: Vec<f64>,
    /// Reloads whose replay verified every breakpoint.
    replayed_ok: usize,
    binary_bytes: (u64, u64),
    /// Where it ran.
    target: String,
}

/// How the debug session gets delve: built by gohot (as users get it, with
/// its launch-wait patch) from the vendored source when it is there
/// (offline), else the binary `scripts/setup` built.
fn delve_args() -> Vec<String> {
    let source = root().join("../shared/vendor/delve-1.27.1-src.tar.gz");
    if source.is_file() {
        return vec!["--delve-src".into(), source.to_string_lossy().into_owned()];
    }
    let binary = std::env::var_os("GOHOT_TEST_DELVE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/gohot-delve/bin/dlv".into());
    vec!["--delve".into(), binary.to_string_lossy().into_owned()]
}

/// Waits for the session's `reloaded` (noting `debug_reattached` on the way).
fn reloaded(dev: &Dev, side: &mut Side, stats_replay: Option<(&mut Vec<f64>, &mut usize)>) -> Option<u64> {
    let mut replay = stats_replay;
    loop {
        let e = match dev
            .next(&["reloaded", "debug_reattached", "sync_failed", "build_failed"], Duration::from_secs(120))
        {
            Some(e) => e,
            None => {
                side.failed += 1;
                return None;
            }
        };
        match e["event"].as_str() {
            Some("debug_reattached") => {
                if let Some((seconds, ok)) = replay.as_mut() {
                    seconds.push(e["seconds"].as_f64().unwrap_or(f64::NAN));
                    if e["breakpoints"] == e["verified"] && e["breakpoints"].as_u64() > Some(0) {
                        **ok += 1;
                    }
                }
            }
            Some("reloaded") => {
                let t = &e["timings"];
                let f = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
                side.total.push(f("total"));
                side.build.push(f("build"));
                side.start.push(f("restart") + f("answer"));
                side.sync.push(f("sync"));
                side.restart.push(f("restart"));
                side.detect.push(f("detect"));
                side.encode.push(f("encode"));
                side.write.push(f("write"));
                return e["binary_bytes"].as_u64();
            }
            _ => {
                side.failed += 1;
                return None;
            }
        }
    }
}

/// Runs `edits` rounds, on the engine or (`kube`) the cluster with
/// `replicas` pods a session; see the module doc.
pub fn run(edits: usize, kube: bool, replicas: usize, work: &Path, log: &dyn Fn(String)) -> Stats {
    let mut st = Stats::default();
    let (plain_app, debug_app) = (work.join("plain/hello"), work.join("debug/hello"));
    copy_dir(&root().join("examples/hello"), &plain_app);
    copy_dir(&root().join("examples/hello"), &debug_app);
    let editor_port = free_port();
    let pid = std::process::id();
    let cluster = kube.then(Cluster::connect);
    let debug_ns = cluster.as_ref().map(|c| format!("{}-debug", c.ns));
    let (plain_args, debug_args, containers) = match (&cluster, &debug_ns) {
        (Some(c), Some(debug_ns)) => {
            c.create_namespace(debug_ns);
            for app in [&plain_app, &debug_app] {
                let manifest = app.join("manifests/deployment.yaml");
                let text = std::fs::read_to_string(&manifest).expect("manifest");
                std::fs::write(&manifest, text.replace("  replicas: 1\n", &format!("  replicas: {replicas}\n")))
                    .expect("write manifest");
            }
            let args = |ns: &str| vec!["-n".to_string(), ns.to_string(), "-f".into(), "manifests".into()];
            (args(&c.ns), args(debug_ns), (None, None))
        }
        _ => {
            let (plain_name, debug_name) = (format!("gohot-bench-plain-{pid}"), format!("gohot-bench-debug-{pid}"));
            let args =
                |name: &str| vec!["--name".to_string(), name.to_string(), "-p".into(), format!("{}:8080", free_port())];
            (args(&plain_name), args(&debug_name), (Some(plain_name), Some(debug_name)))
        }
    };
    let plain = Dev::start(&plain_app, &plain_args, &work.join("plain/kocache"), containers.0, &[]);
    plain.next(&["started"], Duration::from_secs(300)).expect("gohot dev did not start");
    let mut debug_args = debug_args;
    debug_args.extend(["--debug".into(), "--debug-port".into(), editor_port.to_string()]);
    debug_args.extend(delve_args());
    let debug = Dev::start(&debug_app, &debug_args, &work.join("debug/kocache"), containers.1, &[]);
    debug.next(&["started"], Duration::from_secs(300)).expect("gohot dev --debug did not start");

    // The editor: attached once, one breakpoint where no request goes.
    let main_go = debug_app.join("main.go");
    let line = line_of(&main_go, "dir := os.Getenv(\"KO_DATA_PATH\")");
    let mut editor = DapClient::connect(editor_port);
    editor.attach();
    let bps = editor.set_breakpoints(&main_go.to_string_lossy(), &[line]);
    assert_eq!(bps[0]["verified"], true, "the breakpoint was not set: {bps:?}");
    editor.call("configurationDone", serde_json::json!({}));
    debug.next(&["debug_attached"], Duration::from_secs(30)).expect("the editor did not attach");
    plain.drain();
    debug.drain();

    for i in 1..=edits {
        apply_edit(&plain_app, i);
        if let Some(b) = reloaded(&plain, &mut st.plain, None) {
            st.binary_bytes.0 = b;
        }
        apply_edit(&debug_app, i);
        if let Some(b) = reloaded(&debug, &mut st.debug, Some((&mut st.replay, &mut st.replayed_ok))) {
            st.binary_bytes.1 = b;
        }
        let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        log(format!(
            "edit {i}: {:.3}s, --debug {:.3}s (replay {:.3}s)",
            last(&st.plain.total),
            last(&st.debug.total),
            last(&st.replay)
        ));
    }
    assert_eq!(editor.count("event", "terminated"), 0, "the editor's session ended during the run");
    editor.call("disconnect", serde_json::json!({}));
    drop((plain, debug));
    if let (Some(c), Some(ns)) = (&cluster, &debug_ns) {
        c.delete_namespace(ns);
    }
    st.target = if kube { format!("kube, {replicas} replicas") } else { "docker".into() };
    st
}

/// Prints the comparison (a table, or JSON).
pub fn report(st: &Stats, json: bool) {
    let p50 = |v: &[f64]| percentile(v, 50.0);
    let (plain, debug) = (p50(&st.plain.total), p50(&st.debug.total));
    let result = serde_json::json!({
        "target": st.target,
        "edits": st.plain.total.len().min(st.debug.total.len()),
        "plain_p50_s": plain,
        "debug_p50_s": debug,
        "debug_over_plain": debug / plain,
        "target_ratio": 1.5,
        "plain_build_p50_s": p50(&st.plain.build),
        "debug_build_p50_s": p50(&st.debug.build),
        "plain_start_p50_s": p50(&st.plain.start),
        "debug_start_p50_s": p50(&st.debug.start),
        "plain_sync_p50_s": p50(&st.plain.sync),
        "debug_sync_p50_s": p50(&st.debug.sync),
        "plain_restart_p50_s": p50(&st.plain.restart),
        "debug_restart_p50_s": p50(&st.debug.restart),
        "replay_p50_s": p50(&st.replay),
        "replayed_every_breakpoint": st.replayed_ok,
        "plain_binary_bytes": st.binary_bytes.0,
        "debug_binary_bytes": st.binary_bytes.1,
        "failed_reloads": st.plain.failed + st.debug.failed,
    });
    if json {
        println!("{result}");
        return;
    }
    println!("gohot dev --debug against gohot dev, {}, {} edits each (p50, seconds)", st.target, result["edits"]);
    println!("{:<34}{:>10}{:>10}", "", "plain", "--debug");
    println!("{:<34}{:>10.3}{:>10.3}", "save → serving (breakpoints set)", plain, debug);
    println!("{:<34}{:>10.3}{:>10.3}", "  detect (save → build)", p50(&st.plain.detect), p50(&st.debug.detect));
    println!("{:<34}{:>10.3}{:>10.3}", "  build", p50(&st.plain.build), p50(&st.debug.build));
    println!("{:<34}{:>10.3}{:>10.3}", "  sync (encode, send, write)", p50(&st.plain.sync), p50(&st.debug.sync));
    println!("{:<34}{:>10.3}{:>10.3}", "    of it, encode", p50(&st.plain.encode), p50(&st.debug.encode));
    println!("{:<34}{:>10.3}{:>10.3}", "    of it, write", p50(&st.plain.write), p50(&st.debug.write));
    println!("{:<34}{:>10.3}{:>10.3}", "  restart + answer", p50(&st.plain.start), p50(&st.debug.start));
    println!("{:<34}{:>10.3}{:>10.3}", "    of it, restart", p50(&st.plain.restart), p50(&st.debug.restart));
    println!("{:<34}{:>10}{:>10.3}", "  replay (after answering)", "-", p50(&st.replay));
    println!(
        "--debug / plain: {:.2}× (target ≤ 1.5×); every breakpoint set again in {}/{} reloads; binary {} → {} bytes; failed {}",
        debug / plain,
        st.replayed_ok,
        st.debug.total.len(),
        st.binary_bytes.0,
        st.binary_bytes.1,
        result["failed_reloads"]
    );
}
