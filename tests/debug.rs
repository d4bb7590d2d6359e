//! Issue 23, `--debug`: a debugger session that survives reloads. With the
//! real Go toolchain, the real delve (built by `scripts/setup` from its
//! vendored source) and a DAP client standing in for the editor
//! (`dap_client.rs`). No timing assertions: `bench/reload --debug` measures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::dap_client::{line_of, DapClient};
use crate::util::*;

/// The static delve `scripts/setup` builds (GOHOT_TEST_DELVE).
pub fn delve() -> PathBuf {
    let p = std::env::var_os("GOHOT_TEST_DELVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/gohot-delve/bin/dlv"));
    assert!(p.is_file(), "{} missing: run scripts/setup (builds a static delve)", p.display());
    p
}

/// Copies the debug fixture (an HTTP handler with a local) into the sandbox.
pub fn debug_app(sb: &Sandbox) -> PathBuf {
    let dst = sb.path().join("debugapp");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debugapp"), &dst);
    dst
}

/// Sets the fixture's greeting (the breakpoint's line does not move), atomically.
pub fn set_greeting(app: &Path, text: &str) {
    let main = app.join("main.go");
    let src = std::fs::read_to_string(&main).expect("main.go");
    let start = src.find("var greeting = \"").expect("greeting") + "var greeting = \"".len();
    let end = start + src[start..].find('"').expect("quote");
    let tmp = app.join(".main.go.edit");
    std::fs::write(&tmp, format!("{}{text}{}", &src[..start], &src[end..])).expect("write");
    std::fs::rename(&tmp, &main).expect("rename");
}

/// Builds the fixture as `gohot dev --debug` does: no optimisation, no
/// inlining, DWARF kept, `-trimpath`.
fn build_for_debugging(app: &Path, out: &Path) {
    ok(Command::new(go_binary())
        .current_dir(app)
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .args(["build", "-trimpath", "-gcflags=all=-N -l", "-ldflags=-compressdwarf=false", "-o"])
        .arg(out)
        .arg("."));
}

/// A delve running a binary as the debug dev image runs it; stopped on drop.
struct LocalDelve {
    child: Child,
    port: u16,
}

impl LocalDelve {
    fn start(binary: &Path, app_port: u16) -> Self {
        let port = free_port();
        let child = Command::new(delve())
            .args(["exec", "--headless", "--accept-multiclient", "--continue", "--api-version=2"])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(binary)
            .arg("--")
            .env("PORT", app_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dlv");
        LocalDelve { child, port }
    }

    /// As watchexec stops it on a reload: SIGTERM (delve ends the process it
    /// runs, once gohot has let go of it).
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        wait_for("delve to exit", Duration::from_secs(20), || self.child.try_wait().ok().flatten());
    }
}

impl Drop for LocalDelve {
    fn drop(&mut self) {
        // A test that failed may leave delve unable to stop: SIGKILL, and the
        // process it ran (left behind, traced no more) by its own pid.
        let children: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in children {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// GET / in the background: it waits as long as the handler is stopped
/// at a breakpoint (a minute at most); the body.
pub fn get_in_background(port: u16) -> std::thread::JoinHandle<Option<String>> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut s = wait_for("the app to accept connections", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        write!(s, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split_once("\r\n\r\n").map(|(_, body)| body.trim().to_string())
    })
}

/// The server alone, against delves run locally (no container, no loop):
/// an editor attaches once and sets a breakpoint with its local path; the
/// process is replaced by a new build under a new delve and gohot
/// reattaches; the breakpoint is hit again in the new code, with the new
/// value, and the editor never reconnected nor sent its breakpoints again.
#[test]
fn the_session_survives_a_new_process_under_a_new_delve() {
    let sb = Sandbox::new();
    let app = debug_app(&sb);
    let main_go = app.join("main.go");
    let line = line_of(&main_go, "// BREAK");
    let app_port = free_port();
    build_for_debugging(&app, &sb.path().join("v1"));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let sink: gohot::debug::DebugEvents = Arc::new(move |e| seen.lock().unwrap().push(e));
    let server = rt
        .block_on(gohot::debug::DebugServer::bind(([127, 0, 0, 1], 0).into(), sink, Default::default()))
        .expect("bind");
    let go = gohot::builder::go::GoToolchain::at(go_binary());
    let listed = rt
        .block_on(go.list_deps(&app, "example.com/debugapp", &gohot::platform::Platform::host_linux()))
        .expect("go list");
    rt.block_on(server.set_paths(gohot::debug::PathMap::from_listing(&listed)));

    let first = LocalDelve::start(&sb.path().join("v1"), app_port);
    let dial = |d: &LocalDelve, name: &str| -> Arc<dyn gohot::debug::Dial> {
        Arc::new(gohot::debug::TcpDial { addr: ([127, 0, 0, 1], d.port).into(), replica: name.into() })
    };
    server.set_upstream(dial(&first, "first"));

    // The editor attaches once, with its own path for main.go.
    let mut editor = DapClient::connect(server.addr().port());
    editor.attach();
    let bps = editor.set_breakpoints(&main_go.to_string_lossy(), &[line]);
    assert_eq!(bps[0]["verified"], true, "{bps:?}");
    assert_eq!(bps[0]["source"]["path"], main_go.to_string_lossy().as_ref(), "the editor's own path back");
    let id = bps[0]["id"].clone();
    editor.call("configurationDone", json!({}));

    let request = get_in_background(app_port);
    let (stop, thread, frame) = editor.stopped(Duration::from_secs(60));
    assert_eq!(stop["body"]["hitBreakpointIds"], json!([id]));
    assert_eq!(frame["line"], line);
    assert_eq!(frame["source"]["path"], main_go.to_string_lossy().as_ref(), "stack frames open the local file");
    assert_eq!(editor.local(&frame, "answer"), "\"greeting one\"");
    editor.call("continue", json!({"threadId": thread}));
    assert_eq!(request.join().expect("request").as_deref(), Some("greeting one"));

    // A reload: a new build, the old delve stopped, a new one started.
    set_greeting(&app, "two");
    build_for_debugging(&app, &sb.path().join("v2"));
    rt.block_on(server.release());
    first.stop();
    let second = LocalDelve::start(&sb.path().join("v2"), app_port);
    let replayed = rt.block_on(server.reattach(dial(&second, "second"))).expect("reattach").expect("a session");
    assert_eq!(replayed, gohot::debug::Replayed { breakpoints: 1, verified: 1, errors: vec![] });
    let changed = editor.event("breakpoint", Duration::from_secs(10));
    assert_eq!(changed["body"]["breakpoint"]["id"], id, "the editor's id, not the new delve's");
    assert_eq!(changed["body"]["breakpoint"]["verified"], true);

    let request = get_in_background(app_port);
    let (stop, thread, frame) = editor.stopped(Duration::from_secs(60));
    assert_eq!(stop["body"]["hitBreakpointIds"], json!([id]));
    assert_eq!(frame["line"], line);
    assert_eq!(editor.local(&frame, "answer"), "\"greeting two\"", "the new code");
    editor.call("continue", json!({"threadId": thread}));
    assert_eq!(request.join().expect("request").as_deref(), Some("greeting two"));
    assert_eq!(editor.count("response", "setBreakpoints"), 1, "the editor set its breakpoint once");
    assert_eq!(editor.count("event", "terminated"), 0, "the session did not end with the old process");

    // gohot stops: the editor's session ends cleanly.
    rt.block_on(server.shutdown());
    editor.event("terminated", Duration::from_secs(10));
    let events = events.lock().unwrap().clone();
    assert_eq!(events[0], gohot::debug::DebugEvent::Attached { replica: "first".into() }, "{events:?}");
    drop(second);
}

/// delve's vendored source (`../shared/vendor`, as CI and `scripts/setup` use it).
fn delve_source() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vendor/delve-1.27.1-src.tar.gz");
    assert!(p.is_file(), "{} missing: the --debug tests build delve from its vendored source", p.display());
    p
}

/// `GOHOT_DELVE_SRC=FILE.tar.gz`: gohot builds delve from the source with
/// the developer's Go, offline, for the container's platform (linux/arm64
/// here, not the machine's), into its cache by version and platform; the
/// second time it is the cached binary. A `--delve` binary for another
/// platform, and a source without vendor/, are refused by name.
#[test]
fn delve_is_built_from_its_source_for_the_containers_platform_and_cached() {
    use gohot::devimage::delve::{ensure_delve, DelveSource};
    let sb = Sandbox::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let go = gohot::builder::go::GoToolchain::at(go_binary());
    let arm64 = gohot::platform::Platform::linux("arm64");
    let cache = sb.path().join("cache");
    let source = DelveSource::Source(delve_source());
    let dlv = rt.block_on(ensure_delve(&go, &arm64, &source, &cache)).expect("delve built");
    let rel = dlv.strip_prefix(&cache).expect("in the cache").to_string_lossy().into_owned();
    assert!(rel.starts_with("delve/v1.27.1-src-") && rel.ends_with("-gohot2/linux/arm64/dlv"), "{rel}");
    // Built with gohot's changes to delve's start: each one's text is there in this delve.
    use gohot::devimage::delve::patches::{patched_files, GOROUTINE_CACHE, LAUNCH_WAIT};
    let unpacked = sb.path().join("delve-src");
    gohot::devimage::delve::unpack_tar_gz(&std::fs::read(delve_source()).expect("source"), &unpacked).expect("unpack");
    let files = patched_files(&unpacked);
    let text = |file: &str| files.iter().find(|(f, _)| *f == file).map(|(_, t)| t.clone()).unwrap_or_default();
    for patch in [LAUNCH_WAIT, GOROUTINE_CACHE] {
        let original = std::fs::read_to_string(unpacked.join(patch.file)).expect("delve's file");
        assert_eq!(text(patch.file), original.replacen(patch.old, patch.new, 1), "{} changed once", patch.file);
    }
    let info = ok(Command::new(go_binary()).args(["version", "-m"]).arg(&dlv));
    for want in ["GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0", "-trimpath=true", "github.com/go-delve/delve/cmd/dlv"] {
        assert!(info.contains(want), "{want} missing from go version -m:\n{info}");
    }
    let built = std::fs::metadata(&dlv).and_then(|m| m.modified()).expect("mtime");
    let again = rt.block_on(ensure_delve(&go, &arm64, &source, &cache)).expect("cached");
    assert_eq!(again, dlv);
    assert_eq!(std::fs::metadata(&again).and_then(|m| m.modified()).expect("mtime"), built, "not built again");

    // That arm64 delve given as --delve for an amd64 container.
    let amd64 = gohot::platform::Platform::linux("amd64");
    let e = rt.block_on(ensure_delve(&go, &amd64, &DelveSource::Binary(dlv.clone()), &cache)).unwrap_err();
    assert!(e.to_string().contains("built for linux/arm64, the container runs linux/amd64"), "{e}");
    // A source tree without vendor/.
    let tree = sb.path().join("delve-no-vendor");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("go.mod"), "module github.com/go-delve/delve\n").expect("go.mod");
    let e = rt.block_on(ensure_delve(&go, &amd64, &DelveSource::Source(tree.clone()), &cache)).unwrap_err();
    assert!(e.to_string().contains("no vendor/ directory"), "{e}");
    assert!(!cache.join("delve").read_dir().expect("cache").any(|e| e.expect("entry").path().ends_with("dlv")));
}

/// A Go newer than delve supports is refused before anything is built,
/// naming both versions. There is no Go 1.28 on this machine: a stand-in
/// `go` that answers `go env GOVERSION` with go1.28.0 (and fails anything else).
#[test]
fn a_go_version_delve_does_not_support_is_refused_naming_both() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let fake = sb.path().join("go");
    std::fs::write(&fake, "#!/bin/sh\n[ \"$1 $2\" = \"env GOVERSION\" ] && echo go1.28.0 && exit 0\nexit 3\n")
        .expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let go = gohot::builder::go::GoToolchain::at(fake);
    let cache = sb.path().join("cache");
    let amd64 = gohot::platform::Platform::linux("amd64");
    for source in
        [gohot::devimage::delve::DelveSource::Release, gohot::devimage::delve::DelveSource::Source(delve_source())]
    {
        let e = rt.block_on(gohot::devimage::delve::ensure_delve(&go, &amd64, &source, &cache)).unwrap_err();
        assert!(e.to_string().contains("delve 1.27.1 supports Go 1.25–1.27, but the Go toolchain is go1.28.0"), "{e}");
    }
    assert!(!cache.exists(), "nothing built or cached");
}

/// gohot's port serves JSON-RPC clients (GoLand, `dlv connect`) too: their
/// bytes go to the debugged replica's delve as they are. And one editor at
/// a time: a second DAP client is told why it is refused.
#[test]
fn json_rpc_clients_are_relayed_and_a_second_editor_is_refused() {
    use std::io::{BufRead, Write};
    let sb = Sandbox::new();
    let app = debug_app(&sb);
    build_for_debugging(&app, &sb.path().join("v1"));
    let dlv = LocalDelve::start(&sb.path().join("v1"), free_port());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sink: gohot::debug::DebugEvents = Arc::new(|_| {});
    let server = rt
        .block_on(gohot::debug::DebugServer::bind(([127, 0, 0, 1], 0).into(), sink, Default::default()))
        .expect("bind");
    server
        .set_upstream(Arc::new(gohot::debug::TcpDial { addr: ([127, 0, 0, 1], dlv.port).into(), replica: "r".into() }));

    let mut rpc = std::net::TcpStream::connect(server.addr()).expect("connect");
    rpc.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut answer = String::new();
    let running = wait_for("delve to report the process running", Duration::from_secs(30), || {
        rpc.write_all(b"{\"method\":\"RPCServer.State\",\"params\":[{\"NonBlocking\":true}],\"id\":1}\n").ok()?;
        answer.clear();
        std::io::BufReader::new(&rpc).read_line(&mut answer).ok()?;
        let v: serde_json::Value = serde_json::from_str(&answer).ok()?;
        v["result"]["State"]["Running"].as_bool().filter(|r| *r)
    });
    assert!(running, "{answer}");

    let mut first = DapClient::connect(server.addr().port());
    first.attach();
    let mut second = DapClient::connect(server.addr().port());
    let seq = second.send("initialize", json!({"adapterID": "go", "pathFormat": "path"}));
    let refused = second.response(seq, Duration::from_secs(30));
    assert_eq!(refused["success"], false);
    assert!(refused["message"].as_str().unwrap_or_default().contains("one debug session at a time"), "{refused}");
    first.call("disconnect", json!({}));
    drop(dlv);
}

/// A request to the app on `port` stops at breakpoint `id` on `line` of the
/// editor's own file, with `answer` readable as `want`; continued, the
/// request is answered `want`.
fn hit_breakpoint(editor: &mut DapClient, port: u16, id: &serde_json::Value, line: u64, local_path: &str, want: &str) {
    let request = get_in_background(port);
    let (stop, thread, frame) = editor.stopped(Duration::from_secs(60));
    assert_eq!(stop["body"]["hitBreakpointIds"], json!([id]));
    assert_eq!(frame["line"], line);
    assert_eq!(frame["source"]["path"], local_path, "the editor's own file");
    assert_eq!(editor.local(&frame, "answer"), format!("\"{want}\""));
    editor.call("continue", json!({"threadId": thread}));
    assert_eq!(request.join().expect("request").as_deref(), Some(want));
}

/// Issue 23 on the Docker engine, end to end: `gohot dev --debug` runs the
/// fixture under delve in its container; the editor attaches once through
/// gohot's port and sets a breakpoint in the HTTP handler; a request stops
/// there (the right line, a readable local) and answers once continued.
/// A save reloads it: `debug_reattached` (the breakpoint set again) comes
/// before `reloaded`, and the next request stops at the same breakpoint in
/// the new code — the editor never reconnected nor sent its breakpoints
/// again. A compile error keeps the process and the session; Ctrl-C ends the
/// editor's session with `terminated`.
#[test]
fn dev_debug_on_docker_keeps_the_editors_session_across_reloads() {
    let sb = Sandbox::new();
    let app = debug_app(&sb);
    let main_go = app.join("main.go");
    let local_path = main_go.to_string_lossy().into_owned();
    let line = line_of(&main_go, "// BREAK");
    let (port, debug_port) = (free_port(), free_port());
    let container = format!("gohot-test-debug-{}", std::process::id());
    let mut child = sb
        .gohot(&app)
        .args(["dev", ".", "--json", "--debug", "--debug-port", &debug_port.to_string(), "--delve"])
        .arg(delve())
        .args(["--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
        .arg(crate::dev::watchexec())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gohot dev --debug");
    let _cleanup = Container(container.clone());
    let mut events = EventStream::read(child.stdout.take().expect("stdout"));
    let mut child = KillOnDrop(child);
    let listening = events.event("debug_listening", None, Duration::from_secs(60));
    assert_eq!(listening["address"], format!("127.0.0.1:{debug_port}"));
    events.event("started", Some("debugapp"), Duration::from_secs(300));

    let mut editor = DapClient::connect(debug_port);
    editor.attach();
    let bps = editor.set_breakpoints(&local_path, &[line]);
    assert_eq!(bps[0]["verified"], true, "{bps:?}");
    let id = bps[0]["id"].clone();
    editor.call("configurationDone", json!({}));
    events.event("debug_attached", None, Duration::from_secs(30));

    let hit = |editor: &mut DapClient, want: &str| hit_breakpoint(editor, port, &id, line, &local_path, want);
    hit(&mut editor, "greeting one");

    // A save: the breakpoint is set in the new process before the reload is reported.
    set_greeting(&app, "two");
    let batch = events.until("reloaded", Duration::from_secs(180), |e| {
        assert_ne!(e["event"], "sync_failed", "{e}");
        e["event"] == "reloaded"
    });
    let replayed = batch.iter().find(|e| e["event"] == "debug_reattached").unwrap_or_else(|| {
        panic!("no debug_reattached before reloaded: {batch:#?}");
    });
    assert_eq!((replayed["breakpoints"].as_u64(), replayed["verified"].as_u64()), (Some(1), Some(1)), "{replayed}");
    assert_eq!(replayed["replica"], container.as_str());
    hit(&mut editor, "greeting two");
    assert_eq!(editor.count("response", "setBreakpoints"), 1, "the editor set its breakpoint once");

    // A compile error: the old process and the session stay.
    let good = std::fs::read_to_string(&main_go).expect("main.go");
    std::fs::write(&main_go, format!("{good}\nfunc broken() {{ undefined() }}\n")).expect("write");
    events.event("build_failed", Some("debugapp"), Duration::from_secs(180));
    hit(&mut editor, "greeting two");
    assert_eq!(editor.count("event", "terminated"), 0, "the session never ended");

    // Ctrl-C: the editor's session ends cleanly.
    let _ = Command::new("kill").args(["-INT", &child.0.id().to_string()]).status();
    editor.event("terminated", Duration::from_secs(30));
    events.event("stopped", None, Duration::from_secs(60));
    let _ = child.0.wait();
}

/// The debug fixture as a Deployment of one pod, ready when its port
/// accepts (a kubelet probe of `/` would stop at the editor's breakpoint).
fn debug_manifest(app: &Path) {
    std::fs::create_dir_all(app.join("manifests")).expect("mkdir");
    std::fs::write(
        app.join("manifests/deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: debugapp\n  labels:\n    app: debugapp\nspec:\n  \
         replicas: 1\n  selector:\n    matchLabels:\n      app: debugapp\n  template:\n    metadata:\n      labels:\n        \
         app: debugapp\n    spec:\n      containers:\n        - name: debugapp\n          image: ko://example.com/debugapp\n          \
         ports:\n            - containerPort: 8080\n          readinessProbe:\n            tcpSocket:\n              port: 8080\n            \
         periodSeconds: 2\n",
    )
    .expect("manifest");
}

/// Issue 23 on a real cluster: `gohot dev ./ -f manifests --debug` deploys
/// the fixture under delve; the editor attaches once through gohot's port
/// (a port-forward to the pod's delve behind it), a request through the
/// user's port-forward stops at its breakpoint, and after a save the next
/// one stops at the same breakpoint in the new code, the editor never
/// having reconnected nor resent it; the debugged pod deleted, the session
/// moves to its replacement and says so; Ctrl-C sends it `terminated`.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn dev_debug_on_a_real_cluster_keeps_the_editors_session_across_reloads() {
    let env = crate::kube::KubeEnv::new("dev_debug_on_a_real_cluster");
    let sb = Sandbox::new();
    let app = debug_app(&sb);
    debug_manifest(&app);
    let main_go = app.join("main.go");
    let local_path = main_go.to_string_lossy().into_owned();
    let line = line_of(&main_go, "// BREAK");
    let (forward, debug_port) = (free_port(), free_port());
    let mut cmd = env.gohot(&sb, &app);
    cmd.args(["dev", ".", "--json", "-n", &env.ns, "-f", "manifests", "--port-forward", &format!("{forward}:8080")])
        .args(["--debug", "--debug-port", &debug_port.to_string(), "--delve"])
        .arg(delve())
        .arg("--watchexec")
        .arg(crate::dev::watchexec());
    let mut dev = crate::kube::KubeDev::start(cmd);
    dev.wait_event("started", Duration::from_secs(300));

    let mut editor = DapClient::connect(debug_port);
    editor.attach();
    let bps = editor.set_breakpoints(&local_path, &[line]);
    assert_eq!(bps[0]["verified"], true, "{bps:?}");
    let id = bps[0]["id"].clone();
    editor.call("configurationDone", json!({}));
    dev.seen_or_wait("debug_attached", Duration::from_secs(60), |e| e["event"] == "debug_attached");

    let hit = |editor: &mut DapClient, want: &str| hit_breakpoint(editor, forward, &id, line, &local_path, want);
    hit(&mut editor, "greeting one");

    set_greeting(&app, "two");
    let replayed = dev.wait("debug_reattached", Duration::from_secs(180), |e| {
        assert_ne!(e["event"], "reloaded", "reloaded before the breakpoints were set again");
        e["event"] == "debug_reattached"
    });
    assert_eq!((replayed["breakpoints"].as_u64(), replayed["verified"].as_u64()), (Some(1), Some(1)), "{replayed}");
    dev.wait_event("reloaded", Duration::from_secs(60));
    hit(&mut editor, "greeting two");

    // The debugged pod is deleted: its replacement is brought current, and
    // the session moves to it and says so.
    let old = env.running_pods("debugapp").into_iter().next().and_then(|p| p.metadata.name).expect("the pod");
    env.delete_pod(&old);
    let moved = dev.wait("debug_reattached to another pod", Duration::from_secs(180), |e| {
        e["event"] == "debug_reattached" && !e["replica"].as_str().unwrap_or_default().ends_with(&format!("/{old}"))
    });
    assert_eq!(moved["verified"], 1, "{moved}");
    let said = dev.seen().iter().any(|e| {
        e["event"] == "warning" && e["message"].as_str().is_some_and(|m| m.contains(&old) && m.contains("moved to"))
    });
    assert!(said, "no warning that the session moved: {:#?}", dev.seen());
    hit(&mut editor, "greeting two");
    assert_eq!(editor.count("response", "setBreakpoints"), 1, "the editor set its breakpoint once");
    assert_eq!(editor.count("event", "terminated"), 0, "the session never ended");

    dev.interrupt();
    editor.event("terminated", Duration::from_secs(30));
}

/// Issue 23, ko's meaning of `--debug` for `apply --dev` (and `resolve
/// --dev`): the dev image carries delve and the app runs under it — the
/// pod serves, its command is delve's, and a DAP client reaching the pod's
/// port 40000 (a port-forward of the test's own) attaches and has a
/// breakpoint at the binary's own name for main.go verified (DWARF kept).
/// Without --dev, --debug is refused naming it.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn apply_dev_debug_runs_the_app_under_delve_on_a_real_cluster() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = crate::kube::KubeEnv::new("apply_dev_debug");
    let sb = Sandbox::new();
    let app = debug_app(&sb);
    debug_manifest(&app);
    let refused = run(env.gohot(&sb, &app).args(["apply", "--debug", "-n", &env.ns, "-f", "manifests"]));
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("add --dev"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let mut cmd = env.gohot(&sb, &app);
    cmd.args(["apply", "--dev", "--debug", "--wait=true", "-n", &env.ns, "-f", "manifests", "--delve"])
        .arg(delve())
        .arg("--watchexec")
        .arg(crate::dev::watchexec());
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pods = env.wait_all_serve("debugapp", 1, "greeting one");
    let pod = env.running_pods("debugapp").into_iter().next().expect("the pod");
    let command = pod.spec.as_ref().map(|s| s.containers[0].command.clone().unwrap_or_default()).unwrap_or_default();
    assert!(command.iter().any(|a| a == "/var/run/gohot/dlv"), "{command:?}");

    // DAP straight to the pod's delve: initialize, attach, one breakpoint.
    let line = line_of(&app.join("main.go"), "// BREAK");
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(env.cluster.client.clone(), &env.ns);
    let replies = env.rt.block_on(async {
        let mut pf = api.portforward(&pods[0], &[gohot::layout::DELVE_PORT]).await.expect("port-forward");
        let mut s = pf.take_stream(gohot::layout::DELVE_PORT).expect("stream");
        let requests = [
            json!({"command": "initialize", "arguments": {"adapterID": "go", "pathFormat": "path", "linesStartAt1": true}}),
            json!({"command": "attach", "arguments": {"mode": "remote", "request": "attach"}}),
            json!({"command": "setBreakpoints", "arguments": {"source": {"path": "example.com/debugapp/main.go"},
                "breakpoints": [{"line": line}]}}),
        ];
        let mut text = String::new();
        for (i, r) in requests.iter().enumerate() {
            let mut m = r.clone();
            m["seq"] = json!(i + 1);
            m["type"] = json!("request");
            let body = m.to_string();
            s.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.expect("send");
            let want = format!("\"request_seq\":{}", i + 1);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !text.contains(&want) {
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout_at(deadline, s.read(&mut chunk)).await.expect("delve answers").expect("read");
                assert!(n > 0, "delve closed the connection: {text}");
                text.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        }
        text
    });
    assert!(
        replies.contains("\"command\":\"attach\",\"success\":true")
            || replies.contains("\"success\":true,\"command\":\"attach\""),
        "{replies}"
    );
    assert!(replies.contains("\"verified\":true"), "the breakpoint was not verified: {replies}");
}
