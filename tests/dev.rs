//! `gohot dev` end to end on the real Docker engine, with the real Go
//! toolchain and a real static watchexec: edits reach the running container,
//! compile errors keep the old process serving, lost containers come back
//! with the current code, a binary changed behind gohot's back gets the
//! whole new one, and a burst of saves ends on the last one. Only
//! build inputs build (issue 11): logs, editors' temporary files and notes
//! never do, embedded files do, changes that never stop do not starve the
//! build; sync rules (manual and infer) copy without building; production
//! images do not change because the dev loop ran.
//! No timing assertions: the benchmark measures speed. A check that
//! something did *not* happen waits for a later real edit to be served and
//! looks at every event before it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::*;

/// The static watchexec `scripts/setup` builds (GOHOT_TEST_WATCHEXEC).
pub fn watchexec() -> PathBuf {
    let p = std::env::var_os("GOHOT_TEST_WATCHEXEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/gohot-watchexec/bin/watchexec"));
    assert!(p.is_file(), "{} missing: run scripts/setup (builds a static watchexec)", p.display());
    p
}

/// A running `gohot dev` with its JSON event stream.
pub struct DevSession {
    child: Child,
    events: EventStream,
    pub port: u16,
    pub container: String,
    pub app: PathBuf,
    _sandbox: Option<Sandbox>,
}

impl DevSession {
    pub fn start(tag: &str) -> Self {
        Self::start_with(tag, |_| {})
    }

    /// Starts on a fresh copy of the hello example, changed by `prepare` first.
    pub fn start_with(tag: &str, prepare: impl FnOnce(&Path)) -> Self {
        Self::start_with_answer(tag, prepare, "Hello from gohot!")
    }

    /// [`Self::start_with`], for an app whose first answer is `answer`.
    pub fn start_with_answer(tag: &str, prepare: impl FnOnce(&Path), answer: &str) -> Self {
        let sb = Sandbox::new();
        let app = sb.copy_example("hello", "hello");
        prepare(&app);
        let mut s = Self::start_app(&sb, &app, tag, Stdio::inherit());
        s.wait_answer(answer);
        s._sandbox = Some(sb);
        s
    }

    /// Starts `gohot dev .` in the hello example at `app` (of `sb`), stderr
    /// going to `stderr`; returns once it serves the example's greeting.
    pub fn start_in(sb: &Sandbox, app: &Path, tag: &str, stderr: Stdio) -> Self {
        let s = Self::start_app(sb, app, tag, stderr);
        s.wait_answer("Hello from gohot!");
        s
    }

    /// Starts `gohot dev .` in `app` and waits for its `started` event.
    fn start_app(sb: &Sandbox, app: &Path, tag: &str, stderr: Stdio) -> Self {
        let port = free_port();
        let container = format!("gohot-test-{tag}-{}", std::process::id());
        let mut child = sb
            .gohot(app)
            .args(["dev", ".", "--json", "--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
            .arg(watchexec())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start gohot dev");
        let events = EventStream::read(child.stdout.take().expect("stdout"));
        let mut s = DevSession { child, events, port, container, app: app.to_path_buf(), _sandbox: None };
        s.wait_event("started", Duration::from_secs(180));
        s
    }

    /// Waits for an event of this kind, returning it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> serde_json::Value {
        self.collect_until(kind, timeout).pop().expect("the event")
    }

    /// Every event up to and including the next one of this kind.
    pub fn collect_until(&mut self, kind: &str, timeout: Duration) -> Vec<serde_json::Value> {
        self.events.until(&format!("{kind:?} event"), timeout, |e| e["event"] == kind)
    }

    /// Every event up to and including the `reloaded` of a build that
    /// `file` started: proof the loop handled what came before.
    pub fn collect_until_reload_of(&mut self, file: &str, timeout: Duration) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        loop {
            let batch = self.collect_until("reloaded", timeout);
            let done = batch.last().is_some_and(|e| e["files"].as_array().is_some_and(|f| f.iter().any(|x| x == file)));
            all.extend(batch);
            if done {
                return all;
            }
        }
    }

    /// Waits until the app answers `/` with exactly `text`.
    pub fn wait_answer(&self, text: &str) {
        self.wait_path("/", text);
    }

    /// Waits until the app answers `path` with exactly `text`.
    pub fn wait_path(&self, path: &str, text: &str) {
        let port = self.port;
        wait_for(&format!("the app to answer {text:?} on {path}"), Duration::from_secs(90), || {
            http_get(port, path).filter(|(s, b)| *s == 200 && b.trim() == text).map(|_| ())
        });
    }

    pub fn answer(&self) -> Option<String> {
        http_get(self.port, "/").map(|(_, b)| b.trim().to_string())
    }

    pub fn set_greeting(&self, text: &str) {
        set_greeting(&self.app, text);
    }

    /// Stops gohot with a signal (`INT` is Ctrl-C) and waits for it to exit.
    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let _ = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status();
        wait_for("gohot dev to exit", Duration::from_secs(30), || self.child.try_wait().ok().flatten())
    }

    /// gohot's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops gohot with Ctrl-C and waits for it to exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        self.signal("INT")
    }
}

impl Drop for DevSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("docker").args(["rm", "-f", &self.container]).output();
    }
}

/// Asserts that every `build_started` among `events` names exactly `files`:
/// no build was started by anything else, and no other name was shown.
fn assert_builds_only_for(events: &[serde_json::Value], files: &[&str]) {
    let builds: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "build_started").collect();
    assert!(!builds.is_empty(), "no build at all: {events:?}");
    for b in builds {
        let named: Vec<&str> = b["files"].as_array().expect("files").iter().filter_map(|f| f.as_str()).collect();
        assert_eq!(named, files, "a build named something else: {b}\nall events: {events:?}");
    }
}

/// Rewrites the greeting in main.go atomically (as editors save).
pub fn set_greeting(app: &Path, text: &str) {
    let main = app.join("main.go");
    let src = std::fs::read_to_string(&main).expect("main.go");
    let start = src.find("var greeting = \"").expect("greeting line") + "var greeting = \"".len();
    let end = start + src[start..].find('"').expect("end quote");
    let new = format!("{}{}{}", &src[..start], text, &src[end..]);
    let tmp = app.join(".main.go.tmp-edit");
    std::fs::write(&tmp, new).expect("write");
    std::fs::rename(&tmp, &main).expect("rename");
}

fn container_exists(name: &str) -> bool {
    Command::new("docker").args(["inspect", name]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// On the default base (non-root): an edit reloads, a compile error keeps
/// the old process, kodata syncs, Ctrl-C cleans up.
#[test]
fn edit_reloads_and_compile_error_keeps_the_old_process() {
    let mut dev = DevSession::start("edit");
    // Issue 22: the time to the first served request, once the app answered.
    let serving = dev.wait_event("serving", Duration::from_secs(60));
    assert!(serving["seconds"].as_f64().is_some_and(|s| s > 0.0), "{serving}");
    assert!(dev.answer().is_some(), "serving said before the app answers");
    // The default base runs everything (watchexec, the app) as nonroot.
    let top = ok(Command::new("docker").args(["top", &dev.container, "-o", "pid,uid,args"]));
    let uids: Vec<&str> = top.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert!(!uids.is_empty() && uids.iter().all(|u| *u == "65532"), "{top}");
    dev.set_greeting("first edit");
    dev.wait_answer("first edit");
    let reloaded = dev.wait_event("reloaded", Duration::from_secs(60));
    assert!(reloaded["bytes_sent"].as_u64().expect("bytes") < reloaded["binary_bytes"].as_u64().expect("size"));

    // A compile error: the compiler's words come through, the old code serves on.
    std::fs::write(dev.app.join("broken.go"), "package main\n\nfunc broken() { undefinedThing() }\n").expect("write");
    let failed = dev.wait_event("build_failed", Duration::from_secs(60));
    assert!(failed["output"].as_str().expect("output").contains("undefined: undefinedThing"), "{failed}");
    assert_eq!(dev.answer().as_deref(), Some("first edit"));

    // The next good save recovers.
    std::fs::remove_file(dev.app.join("broken.go")).expect("rm");
    dev.set_greeting("fixed");
    dev.wait_answer("fixed");

    // kodata edits are synced without a rebuild.
    std::fs::write(dev.app.join("kodata/message.txt"), "kodata v2\n").expect("kodata");
    dev.wait_event("kodata_synced", Duration::from_secs(60));
    let port = dev.port;
    wait_for("kodata to be served", Duration::from_secs(30), || {
        http_get(port, "/kodata/message.txt").filter(|(_, b)| b.trim() == "kodata v2").map(|_| ())
    });

    // Ctrl-C removes the container and exits 130, as the README says.
    let status = dev.interrupt();
    assert_eq!(status.code(), Some(130), "gohot dev exit status {status}");
    assert!(!container_exists(&dev.container), "container {} left behind", dev.container);
}

/// Issue 21: an app that dies right after a reload is reported as it
/// happens — its exit and its last lines — by the helper that watches the
/// new process, not once the probe's deadline (20 s) has passed as an app
/// that "did not answer". No timing: the failure must be the exit's, with
/// nothing about an unanswered probe before it; the next good save serves.
#[test]
fn crash_after_reload_is_reported_with_its_exit_and_last_lines() {
    let mut dev = DevSession::start("crash");
    let crash = dev.app.join("crash.go");
    std::fs::write(
        &crash,
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc init() {\n\tfmt.Fprintln(os.Stderr, \"crashing on purpose\")\n\tos.Exit(2)\n}\n",
    )
    .expect("crash.go");
    let events = dev.collect_until("sync_failed", Duration::from_secs(120));
    let error = events.last().expect("sync_failed")["errors"].to_string();
    assert!(error.contains("the app exited") && error.contains("before it answered"), "{error}");
    assert!(error.contains("crashing on purpose"), "the last lines are missing: {error}");
    for e in &events {
        assert!(e["event"] != "reloaded", "a crashed app was reported as reloaded: {e}");
        assert!(!e.to_string().contains("did not answer"), "the probe's deadline came first: {e}");
    }
    std::fs::remove_file(&crash).expect("rm crash.go");
    dev.set_greeting("after the crash");
    dev.wait_answer("after the crash");
    dev.wait_event("reloaded", Duration::from_secs(60));
}

/// Copies the app's binary out of the dev container into `to` (`docker cp`).
fn copy_binary_out(container: &str, to: &Path) {
    ok(Command::new("docker").arg("cp").arg(format!("{container}:/ko-app/hello")).arg(to));
}

/// Puts `binary` into the dev container as its app binary, behind gohot's
/// back; watchexec starts it. `docker cp` writes the file in place (watchexec
/// could start a partial one), so it goes beside it first and is then
/// copied over it atomically (temp file and rename) by the image's helper.
fn copy_binary_in(container: &str, binary: &Path) {
    ok(Command::new("docker").arg("cp").arg(binary).arg(format!("{container}:/ko-app/.hello-from-the-test")));
    ok(Command::new("docker").args([
        "exec",
        container,
        gohot::layout::HELPER_PATH,
        "seed",
        "-mode",
        "0755",
        "/ko-app/.hello-from-the-test",
        "/ko-app/hello",
    ]));
}

/// A restarted container keeps its files, so before the restart it gets an
/// old binary (the image's, as another session or a person could leave it):
/// after the restart gohot must find it stale, sync the current one and say
/// so. A removed container is re-created from the image (old code).
#[test]
fn restarted_or_removed_container_gets_the_current_binary() {
    let mut dev = DevSession::start("recover");
    let sb = Sandbox::new();
    let old = sb.path().join("hello-from-the-image");
    copy_binary_out(&dev.container, &old);
    dev.set_greeting("synced code");
    dev.wait_answer("synced code");
    dev.wait_event("reloaded", Duration::from_secs(60));

    copy_binary_in(&dev.container, &old);
    dev.wait_answer("Hello from gohot!");
    ok(Command::new("docker").args(["restart", "-t", "1", &dev.container]));
    // gohot sees the restarted container (a new start, an old binary), or, if
    // it looks while the container is stopped, re-creates it from the image
    // (an old binary too): either way the current binary is synced and said.
    let mut recovered = dev.wait_event("recovered", Duration::from_secs(60));
    if recovered["reason"].as_str().expect("reason").contains("re-created") {
        recovered = dev.wait_event("recovered", Duration::from_secs(60));
    }
    assert!(recovered["reason"].as_str().expect("reason").contains("stale binary"), "{recovered}");
    dev.wait_answer("synced code");

    // A removed container is re-created from the image (old code) and must be
    // brought up to date before gohot says so.
    ok(Command::new("docker").args(["rm", "-f", &dev.container]));
    let recovered = dev.wait_event("recovered", Duration::from_secs(60));
    assert!(recovered["reason"].as_str().expect("reason").contains("re-created"), "{recovered}");
    let synced = dev.wait_event("recovered", Duration::from_secs(60));
    assert!(synced["reason"].as_str().expect("reason").contains("stale binary"), "{synced}");
    dev.wait_answer("synced code");
}

/// The loop sends a delta against the binary it last synced. A container
/// whose binary changed behind its back (here: the image's, copied in)
/// refuses that delta, as its copy is not the delta's base; the loop then
/// sends the whole binary, and the save is served.
#[test]
fn a_refused_delta_falls_back_to_the_whole_binary() {
    let mut dev = DevSession::start("fallback");
    let sb = Sandbox::new();
    let old = sb.path().join("hello-from-the-image");
    copy_binary_out(&dev.container, &old);
    dev.set_greeting("first edit");
    dev.wait_answer("first edit");
    let delta = dev.wait_event("reloaded", Duration::from_secs(60));

    copy_binary_in(&dev.container, &old);
    dev.wait_answer("Hello from gohot!");
    dev.set_greeting("after a refused delta");
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(90));
    assert!(!events.iter().any(|e| e["event"] == "sync_failed"), "{events:#?}");
    dev.wait_answer("after a refused delta");
    let whole = events.last().expect("the reload");
    let sent = |e: &serde_json::Value| e["bytes_sent"].as_u64().expect("bytes_sent");
    eprintln!(
        "a delta sent {} bytes; the reload after it was refused {} (binary {} bytes)",
        sent(&delta),
        sent(whole),
        whole["binary_bytes"]
    );
    assert!(
        sent(whole) > 10 * sent(&delta),
        "the whole binary was sent after the delta: {whole} (a delta alone: {delta})"
    );
}

#[test]
fn burst_of_saves_ends_on_the_last_edit() {
    let dev = DevSession::start("burst");
    let last = "edit 12";
    for i in 1..=12 {
        dev.set_greeting(&format!("edit {i}"));
        // Pacing like a person saving repeatedly, so edits land mid-build.
        std::thread::sleep(Duration::from_millis(150));
    }
    dev.wait_answer(last);
    // No stale reload may replace it afterwards. The loop builds and reloads
    // one change at a time, in order: once a sentinel edit made after this
    // point is served, every earlier build has been dealt with. Until then
    // the app answers the last edit or the sentinel, never an older edit.
    dev.set_greeting("sentinel");
    wait_for("the sentinel edit to be served", Duration::from_secs(90), || {
        let answer = dev.answer();
        let answer = answer.as_deref();
        assert!(matches!(answer, Some("edit 12" | "sentinel") | None), "a stale build served {answer:?}");
        (answer == Some("sentinel")).then_some(())
    });
    for _ in 0..20 {
        assert_eq!(dev.answer().as_deref(), Some("sentinel"), "nothing older came back");
    }
}

/// The way in under load: 1,000 new binaries written through one persistent
/// helper session (the dev loop's way in) into a running container, as the
/// non-root user ko's default base uses, while watchexec supervises; every
/// start must be of a complete binary.
#[test]
fn thousand_atomic_writes_through_one_session_never_start_a_partial_binary() {
    use gohot::wayin;
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::write(
        app.join("selfhash.go"),
        "package main\n\nimport (\n\t\"crypto/sha256\"\n\t\"log\"\n\t\"os\"\n)\n\nfunc init() {\n\tb, err := os.ReadFile(\"/proc/self/exe\")\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tlog.Printf(\"START %x\", sha256.Sum256(b))\n}\n",
    )
    .expect("selfhash.go");
    let image = ok(sb
        .gohot(&app)
        .args(["build", "--dev", "-B", "--repo", "ko.local/gohot-test-atomic", "--watchexec"])
        .arg(watchexec())
        .arg("."))
    .trim()
    .to_string();
    let _image = DockerImage(image.clone());
    // Two versions to alternate between.
    let build = |greeting: &str| std::fs::read(sb.build_greeting(&app, greeting)).expect("binary");
    let versions = [build("a"), build("b")];
    let hashes: Vec<String> = versions.iter().map(|v| sha256(v)).collect();

    let name = format!("gohot-test-atomic-{}", std::process::id());
    let command = gohot::resolve::devrewrite::dev_command("hello", &["/ko-app/hello".to_string()]);
    ok(Command::new("docker")
        .args(["run", "-d", "--user", "65532", "--name", &name, "--entrypoint", &command[0], &image])
        .args(&command[1..]));
    let _container = Container(name.clone());
    wait_for("the first start", Duration::from_secs(30), || {
        let logs = run(Command::new("docker").args(["logs", &name]));
        String::from_utf8_lossy(&logs.stderr).contains("START ").then_some(())
    });

    let argv = wayin::put_wait_argv("/ko-app/hello", 0o755, Duration::from_secs(10));
    const PUTS: usize = 1000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let docker = gohot::docker::connect().await.expect("engine");
        let attached =
            gohot::docker::exec_attached(&docker, &name, &wayin::session::serve_argv()).await.expect("attach");
        let mut session = wayin::session::Session::open(attached.stdin, attached.stdout, attached.keep)
            .await
            .expect("open a session");
        let mut previous: Option<&Vec<u8>> = None;
        for i in 0..PUTS {
            let next = &versions[i % 2];
            let payload = match previous {
                Some(p) => wayin::encode_delta(p, next),
                None => wayin::encode_full(next),
            };
            let reply = session.request(&argv, &payload).await.unwrap_or_else(|e| panic!("write {i}: {e}"));
            match wayin::parse_put_status(&reply) {
                Ok(wayin::PutStatus::Written { pid: Some(_), .. }) => {}
                other => panic!("write {i}: {other:?}"),
            }
            previous = Some(next);
        }
    });
    // The last process may still be about to log its start line.
    let text = wait_for("a start line per write in the logs", Duration::from_secs(30), || {
        let logs = run(Command::new("docker").args(["logs", &name]));
        let text = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
        (text.matches("START ").count() > PUTS).then_some(text)
    });
    let starts: Vec<&str> = text.lines().filter_map(|l| l.split("START ").nth(1)).collect();
    for s in &starts[1..] {
        assert!(hashes.iter().any(|h| h == s.trim()), "a start ran a binary that is neither version: {s}");
    }
    for bad in ["exec format error", "text file busy", "no such file"] {
        assert!(!text.to_lowercase().contains(bad), "{bad} in the logs:\n{text}");
    }
}

/// `gohot.yaml` manual sync rules: covered files are copied into the running
/// container (folder structure kept, strip applied) and deleted there when
/// deleted locally — no rebuild. The destination is one the default base's
/// user (65532) can write: its home. A rule whose destination that user
/// cannot write fails loudly, and its file is not reported as synced.
#[test]
fn sync_rules_copy_and_delete_without_rebuild() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    // Every key gohot reads from gohot.yaml, in the one file: the cluster
    // allow list does not stop the Docker loop from reading its sync rules.
    std::fs::write(
        app.join("gohot.yaml"),
        "allowContexts: [staging-eu]\nsync:\n  manual:\n  - src: 'static/**'\n    dest: /home/nonroot/www\n    strip: static/\n  - src: 'locked/**'\n    dest: /srv/locked\n    strip: locked/\n",
    )
    .expect("gohot.yaml");
    std::fs::create_dir_all(app.join("static/css")).expect("mkdir");
    let port = free_port();
    let container = format!("gohot-test-rules-{}", std::process::id());
    let mut child = sb
        .gohot(&app)
        .args(["dev", ".", "--json", "--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
        .arg(watchexec())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gohot dev");
    let _cleanup = Container(container.clone());
    let mut events = EventStream::read(child.stdout.take().expect("stdout"));
    let mut next = |kind: &str| {
        let batch = events.until(&format!("{kind} event"), Duration::from_secs(180), |e| e["event"] == kind);
        for e in &batch {
            assert_ne!(e["event"], "build_started", "a rule-covered change must not rebuild: {e}");
            assert_ne!(e["event"], "sync_failed", "{e}");
        }
        batch.last().cloned().expect("the event")
    };
    next("started");
    let remote_hash = |path: &str| -> serde_json::Value {
        let out = ok(Command::new("docker").args(["exec", &container, "/var/run/gohot/helper", "hash", path]));
        serde_json::from_str(out.trim()).expect("hash json")
    };
    std::fs::write(app.join("static/css/site.css"), "body{}\n").expect("write");
    let e = next("rules_synced");
    assert_eq!(e["copied"], serde_json::json!(["static/css/site.css"]));
    assert_eq!(remote_hash("/home/nonroot/www/css/site.css")["sha256"], sha256(b"body{}\n"));
    std::fs::remove_file(app.join("static/css/site.css")).expect("rm");
    let e = next("rules_synced");
    assert_eq!(e["deleted"], serde_json::json!(["static/css/site.css"]));
    assert_eq!(remote_hash("/home/nonroot/www/css/site.css")["missing"], true);

    // /srv belongs to root: user 65532 cannot create /srv/locked.
    std::fs::create_dir_all(app.join("locked")).expect("mkdir");
    std::fs::write(app.join("locked/app.conf"), "x=1\n").expect("write");
    let batch = events.until("sync_failed event", Duration::from_secs(180), |e| e["event"] == "sync_failed");
    for e in &batch {
        assert_ne!(e["event"], "rules_synced", "a failed write reported as synced: {e}");
    }
    let failed = batch.last().cloned().expect("the event");
    let why = failed["errors"].to_string();
    assert!(why.contains("/srv/locked/app.conf") && why.contains("permission denied"), "{why}");
    assert!(why.contains("/home/nonroot"), "the error names a writable place: {why}");
    assert_eq!(remote_hash("/srv/locked/app.conf")["missing"], true);
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// Files synced back from the container into the app's own package directory
/// do not make `gohot dev` rebuild (no loop), even a Go file that would be a
/// build input; a later local edit of such a file does.
#[test]
fn syncback_writes_do_not_trigger_rebuilds() {
    let mut dev = DevSession::start("syncback");
    // Make a file inside the container through the helper (the base has no shell).
    let generated = "package main\n\nvar generated = \"in the container\"\n";
    let payload = gohot::wayin::encode_full(generated.as_bytes());
    let mut child = Command::new("docker")
        .args(["exec", "-i", &dev.container])
        .args(gohot::wayin::put_argv("/tmp/gen/gen.go", 0o644))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker exec");
    child.stdin.take().expect("stdin").write_all(&payload).expect("payload");
    assert!(child.wait_with_output().expect("exec").status.success());

    let sb = Sandbox::new();
    let out = run(sb
        .gohot(&dev.app)
        .env("KOCACHE", dev.app.parent().expect("sandbox").join("kocache"))
        .args(["syncback", &format!("{}:/tmp/gen", dev.container)])
        .arg(&dev.app));
    assert!(out.status.success(), "syncback: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dev.app.join("gen.go")).expect("synced back"), generated);
    // The watcher saw the new Go file; it must not have asked for a build.
    // Proof that the loop got past it: a later real edit is built and served,
    // and the only build before that names main.go.
    dev.set_greeting("after syncback");
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(60));
    assert_builds_only_for(&events, &["main.go"]);
    dev.wait_answer("after syncback");
    // A person editing it afterwards is a real change.
    std::fs::write(dev.app.join("gen.go"), "package main\n\nvar generated = \"edited locally\"\n").expect("edit");
    let started = dev.wait_event("build_started", Duration::from_secs(30));
    assert_eq!(started["files"], serde_json::json!(["gen.go"]));
}

/// Appends to a file until dropped (a log being written continuously).
struct Appender {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Appender {
    fn start(path: PathBuf) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("log");
            let mut lines = 0u64;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                writeln!(f, "request {lines} served").expect("append");
                lines += 1;
                // A busy log, not a spinning one: the 2-core machine builds meanwhile.
                std::thread::sleep(Duration::from_millis(5));
            }
            lines
        });
        Appender { stop, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().map(|t| t.join().expect("appender")).unwrap_or(0)
    }
}

/// Issue 11, as reported: `gohot dev . -p H:8080 > dev.log 2>&1` run in the
/// package directory (every line gohot writes changes dev.log), and an app
/// log appended to continuously there. Every real edit is served, and the
/// status lines in dev.log name main.go only: neither log started a build.
#[test]
fn log_files_in_the_package_directory_start_no_build() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let port = free_port();
    let container = format!("gohot-test-logs-{}", std::process::id());
    let _cleanup = Container(container.clone());
    let log = std::fs::File::create(app.join("dev.log")).expect("dev.log");
    let mut child = sb
        .gohot(&app)
        .args(["dev", ".", "--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
        .arg(watchexec())
        .stdout(log.try_clone().expect("dev.log"))
        .stderr(log)
        .spawn()
        .expect("gohot dev");
    let answers = |text: &str| {
        wait_for(&format!("the app to answer {text:?}"), Duration::from_secs(120), || {
            http_get(port, "/").filter(|(s, b)| *s == 200 && b.trim() == text).map(|_| ())
        })
    };
    answers("Hello from gohot!");
    let appender = Appender::start(app.join("app.log"));
    for i in 1..=4 {
        let text = format!("edit {i} with busy logs");
        set_greeting(&app, &text);
        answers(&text);
    }
    let appended = appender.stop();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = wait_for("gohot dev to exit", Duration::from_secs(30), || child.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(130));
    let written = std::fs::read_to_string(app.join("dev.log")).expect("dev.log");
    assert!(appended > 0);
    let changes: Vec<&str> = written.lines().filter(|l| l.starts_with("change in ")).collect();
    assert!(changes.len() >= 4, "one build per edit at least:\n{written}");
    assert!(changes.iter().all(|l| *l == "change in main.go: building…"), "a build named something else:\n{written}");
    assert!(written.lines().filter(|l| l.starts_with("reloaded hello in ")).count() >= 4, "{written}");
}

/// Editors' saves (vim's 4913 probe, backup rename and swap file; VS Code's
/// atomic `.vsctmp` save; `sed -i`) are built once and named by the real
/// file; their temporary files, notes, coverage output, test binaries and
/// `.git` start no build.
#[test]
fn editor_saves_name_the_real_file_and_noise_starts_no_build() {
    let mut dev = DevSession::start("editors");
    let app = dev.app.clone();
    let main = app.join("main.go");
    let with_greeting = |text: &str| {
        let src = std::fs::read_to_string(&main).expect("main.go");
        let start = src.find("var greeting = \"").expect("greeting") + "var greeting = \"".len();
        let end = start + src[start..].find('"').expect("quote");
        format!("{}{}{}", &src[..start], text, &src[end..])
    };

    // vim (backupcopy=no, writebackup): probe file, swap file, main.go → main.go~, write, drop the backup.
    let new = with_greeting("saved by vim");
    std::fs::write(app.join("4913"), "").expect("4913");
    std::fs::remove_file(app.join("4913")).expect("rm 4913");
    std::fs::write(app.join(".main.go.swp"), "swap 1").expect("swp");
    std::fs::rename(&main, app.join("main.go~")).expect("backup");
    std::fs::write(&main, new).expect("write");
    std::fs::write(app.join(".main.go.swp"), "swap 2").expect("swp");
    std::fs::remove_file(app.join("main.go~")).expect("rm backup");
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["main.go"]);
    dev.wait_answer("saved by vim");

    // VS Code's atomic save: write main.go.vsctmp, move it over main.go.
    let new = with_greeting("saved by vs code");
    std::fs::write(app.join("main.go.vsctmp"), new).expect("vsctmp");
    std::fs::rename(app.join("main.go.vsctmp"), &main).expect("rename");
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["main.go"]);
    dev.wait_answer("saved by vs code");

    // sed -i: a sedXXXXXX temporary renamed over main.go.
    ok(Command::new("sed").arg("-i").arg("s/saved by vs code/saved by sed/").arg(&main));
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["main.go"]);
    dev.wait_answer("saved by sed");

    // Noise only, then one real edit: the only build is the edit's.
    ok(Command::new("git").args(["init", "-q"]).current_dir(&app));
    for i in 0..20 {
        std::fs::write(app.join(".main.go.swp"), format!("swap {i}")).expect("swp");
        std::fs::write(app.join("notes.txt"), format!("note {i}")).expect("notes");
        std::fs::write(app.join("cover.out"), format!("mode: set {i}")).expect("cover");
        std::fs::write(app.join("hello.test"), format!("test binary {i}")).expect("test binary");
        std::fs::write(app.join("main_test.go"), format!("package main\n\n// {i}\n")).expect("test file");
        std::fs::write(app.join(".git/COMMIT_EDITMSG"), format!("message {i}")).expect("git");
    }
    dev.set_greeting("after the noise");
    let events = dev.collect_until_reload_of("main.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["main.go"]);
    dev.wait_answer("after the noise");
}

/// Issue 11: an edit of an embedded file is built and served; so is a new
/// file in an embedded directory.
#[test]
fn embedded_files_rebuild() {
    let mut dev = DevSession::start_with("embed", |app| {
        std::fs::create_dir_all(app.join("static")).expect("static");
        std::fs::create_dir_all(app.join("templates")).expect("templates");
        std::fs::write(app.join("static/banner.txt"), "banner v1").expect("banner");
        std::fs::write(app.join("templates/a.txt"), "template a").expect("template");
        std::fs::write(
            app.join("embed.go"),
            "package main\n\nimport (\n\t\"embed\"\n\t\"net/http\"\n)\n\n//go:embed static/banner.txt\nvar banner string\n\n//go:embed templates\nvar templates embed.FS\n\nfunc init() {\n\thttp.HandleFunc(\"/banner\", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(banner)) })\n\thttp.Handle(\"/templates/\", http.FileServer(http.FS(templates)))\n}\n",
        )
        .expect("embed.go");
    });
    dev.wait_path("/banner", "banner v1");
    std::fs::write(dev.app.join("static/banner.txt"), "banner v2").expect("edit banner");
    let events = dev.collect_until_reload_of("static/banner.txt", Duration::from_secs(90));
    assert_builds_only_for(&events, &["static/banner.txt"]);
    dev.wait_path("/banner", "banner v2");
    // A new file in an embedded directory is a new build input.
    std::fs::write(dev.app.join("templates/b.txt"), "template b").expect("new template");
    dev.collect_until_reload_of("templates/b.txt", Duration::from_secs(90));
    dev.wait_path("/templates/b.txt", "template b");
    // Writing a file nothing embeds, many times, builds nothing.
    for i in 0..20 {
        std::fs::write(dev.app.join("static/notes.txt"), format!("note {i}")).expect("notes");
    }
    std::fs::write(dev.app.join("static/banner.txt"), "banner v3").expect("edit banner");
    let events = dev.collect_until_reload_of("static/banner.txt", Duration::from_secs(90));
    assert_builds_only_for(&events, &["static/banner.txt"]);
    dev.wait_path("/banner", "banner v3");
}

/// No starvation: a build input rewritten every few milliseconds, forever,
/// still lets builds finish (the restart bound), and what the last edit says
/// ends up running.
#[test]
fn changes_that_never_stop_do_not_starve_the_build() {
    let dev = DevSession::start_with("churn", |app| {
        std::fs::write(app.join("churn.go"), "package main\n\nvar churn = 0\n").expect("churn.go");
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churner = {
        let (stop, app) = (stop.clone(), dev.app.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let tmp = app.join(".churn.go.tmp");
                std::fs::write(&tmp, format!("package main\n\nvar churn = {n}\n")).expect("churn");
                std::fs::rename(&tmp, app.join("churn.go")).expect("rename");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    dev.set_greeting("served while churning");
    dev.wait_answer("served while churning");
    dev.set_greeting("served again while churning");
    dev.wait_answer("served again while churning");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    churner.join().expect("churner");
    dev.set_greeting("after the churn");
    dev.wait_answer("after the churn");
}

/// A compile error when `gohot dev` starts shows the compiler's output, as
/// `gohot build` does, and exits 1.
#[test]
fn compile_error_at_start_shows_the_compiler_output() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::write(app.join("broken.go"), "package main\n\nfunc broken() { undefinedThing() }\n").expect("write");
    let out = run(sb.gohot(&app).args(["dev", ".", "--watchexec"]).arg(watchexec()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("undefined: undefinedThing"), "compiler output missing:\n{stderr}");
    assert!(stderr.contains("go build failed for example.com/hello"), "{stderr}");
}

/// SIGTERM stops `gohot dev` like Ctrl-C (container removed) and exits 143.
#[test]
fn sigterm_cleans_up_and_exits_143() {
    let mut dev = DevSession::start("sigterm");
    let status = dev.signal("TERM");
    assert_eq!(status.code(), Some(143), "gohot dev exit status {status}");
    assert!(!container_exists(&dev.container), "container {} left behind", dev.container);
}

/// Dev-only files never reach a production image: the digest of a plain
/// `gohot build` is the same before and after a `gohot dev` session, which
/// leaves watchexec in kodata (with its .gitignore entry) for ko-based
/// pipelines.
#[test]
fn production_digest_is_unchanged_by_a_dev_session() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    // No .gitignore yet: gohot dev creates it.
    std::fs::remove_file(app.join("kodata/.gitignore")).expect("rm .gitignore");
    let repo = format!("{}/prod", reg.host());
    let build = || ok(sb.gohot(&app).args(["build", "."]).env("KO_DOCKER_REPO", &repo)).trim().to_string();
    let before = build();
    assert!(!app.join("kodata/watchexec").exists());

    let mut dev = DevSession::start_in(&sb, &app, "prod", Stdio::inherit());
    assert_eq!(dev.interrupt().code(), Some(130));
    drop(dev);
    assert!(app.join("kodata/watchexec").is_file(), "watchexec stays in kodata for ko-based pipelines");
    let ignore = std::fs::read_to_string(app.join("kodata/.gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "watchexec"), "{ignore}");

    let after = build();
    assert_eq!(before, after, "the production image changed because the dev loop ran");
    // And it really holds no dev tool (checked by a tool gohot did not write).
    let manifest = skopeo_inspect(&after, "--raw");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3, "static base + kodata + binary: {manifest}");
    assert_eq!(layers[0]["digest"], gohot::builder::staticbase::base_layer().expect("base").descriptor.digest);
    let kodata_size = layers[1]["size"].as_u64().expect("size");
    assert!(kodata_size < 4096, "the kodata layer is {kodata_size} bytes: watchexec (18 MB) inside? {manifest}");
}

/// `sync.infer` on a real container: destinations come from a Dockerfile
/// (its own name, a build arg), each changed file is copied to every one;
/// a deleted file is removed there and triggers a rebuild (the Skaffold
/// proposal's rule).
#[test]
fn infer_rules_sync_to_the_dockerfile_destinations() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::create_dir_all(app.join("static/css")).expect("mkdir");
    std::fs::create_dir_all(app.join("conf")).expect("mkdir");
    std::fs::write(app.join("static/index.html"), "<p>hi</p>").expect("index");
    std::fs::write(app.join("conf/app.conf"), "level=info\n").expect("conf");
    std::fs::write(
        app.join("dev.Dockerfile"),
        "FROM scratch\nARG WWW=/default\nWORKDIR /app\nCOPY static ${WWW}/\nADD conf/app.conf .\nADD conf/app.conf /etc/\n",
    )
    .expect("Dockerfile");
    std::fs::write(
        app.join("gohot.yaml"),
        "sync:\n  infer: ['static/**', 'conf/*.conf']\n  dockerfile: dev.Dockerfile\n  buildArgs: {WWW: /srv/www}\n",
    )
    .expect("gohot.yaml");
    // The Dockerfile's image is FROM scratch and runs as root, which may
    // write /srv, /app and /etc: the dev image is on the same base (the
    // default, static, runs as nonroot, which may not).
    std::fs::write(app.join(".ko.yaml"), "defaultBaseImage: scratch\n").expect(".ko.yaml");
    // What gohot syncmap prints is what the loop uses.
    let map: serde_json::Value = serde_json::from_str(&ok(sb.gohot(&app).args([
        "syncmap",
        "--dockerfile",
        "dev.Dockerfile",
        "--build-arg",
        "WWW=/srv/www",
    ])))
    .expect("syncmap json");
    assert_eq!(map["conf/app.conf"], serde_json::json!(["/app/app.conf", "/etc/app.conf"]));
    assert_eq!(map["static/index.html"], serde_json::json!(["/srv/www/index.html"]));

    let mut dev = DevSession::start_in(&sb, &app, "infer", Stdio::inherit());
    let container = dev.container.clone();
    let remote_hash = |path: &str| -> serde_json::Value {
        let out = ok(Command::new("docker").args(["exec", &container, "/var/run/gohot/helper", "hash", path]));
        serde_json::from_str(out.trim()).expect("hash json")
    };
    let no_build = |events: &[serde_json::Value]| {
        assert!(!events.iter().any(|e| e["event"] == "build_started"), "an infer sync rebuilt: {events:?}");
    };

    std::fs::write(app.join("static/css/site.css"), "body{}\n").expect("css");
    let events = dev.collect_until("rules_synced", Duration::from_secs(60));
    no_build(&events);
    assert_eq!(events.last().expect("event")["copied"], serde_json::json!(["static/css/site.css"]));
    assert_eq!(remote_hash("/srv/www/css/site.css")["sha256"], sha256(b"body{}\n"));

    std::fs::write(app.join("conf/app.conf"), "level=debug\n").expect("conf");
    let events = dev.collect_until("rules_synced", Duration::from_secs(60));
    no_build(&events);
    for dest in ["/app/app.conf", "/etc/app.conf"] {
        assert_eq!(remote_hash(dest)["sha256"], sha256(b"level=debug\n"), "{dest}");
    }

    std::fs::remove_file(app.join("static/css/site.css")).expect("rm");
    let events = dev.collect_until("rules_synced", Duration::from_secs(60));
    assert_eq!(events.last().expect("event")["deleted"], serde_json::json!(["static/css/site.css"]));
    assert_eq!(remote_hash("/srv/www/css/site.css")["missing"], true, "no stale copy");
    let started = dev.wait_event("build_started", Duration::from_secs(60));
    assert_eq!(started["files"], serde_json::json!(["static/css/site.css"]), "a deletion under infer rebuilds");
    dev.wait_event("unchanged", Duration::from_secs(90));
}

/// Build tags from `.ko.yaml` decide which files are inputs, as they decide
/// what is compiled: a file only the tag includes rebuilds; one the tag
/// leaves out does not (until its constraint changes).
#[test]
fn build_tags_from_ko_yaml_decide_the_inputs() {
    let mut dev = DevSession::start_with_answer(
        "tags",
        |app| {
            std::fs::write(app.join(".ko.yaml"), "defaultFlags: [\"-tags=prod\"]\n").expect(".ko.yaml");
            std::fs::write(
                app.join("prod.go"),
                "//go:build prod\n\npackage main\n\nfunc init() { greeting = \"prod v1\" }\n",
            )
            .expect("prod.go");
            std::fs::write(
                app.join("local.go"),
                "//go:build !prod\n\npackage main\n\nfunc init() { greeting = \"local\" }\n",
            )
            .expect("local.go");
        },
        "prod v1",
    );
    std::fs::write(
        dev.app.join("local.go"),
        "//go:build !prod\n\npackage main\n\nfunc init() { greeting = \"local v2\" }\n",
    )
    .expect("local.go");
    std::fs::write(
        dev.app.join("prod.go"),
        "//go:build prod\n\npackage main\n\nfunc init() { greeting = \"prod v2\" }\n",
    )
    .expect("prod.go");
    let events = dev.collect_until_reload_of("prod.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["prod.go"]);
    dev.wait_answer("prod v2");
    // Its constraint changed so that the tag includes it: now it is an input.
    std::fs::write(
        dev.app.join("local.go"),
        "//go:build prod\n\npackage main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n)\n\nfunc init() {\n\thttp.HandleFunc(\"/local\", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, \"local now built\") })\n}\n",
    )
    .expect("local.go");
    let events = dev.collect_until_reload_of("local.go", Duration::from_secs(90));
    assert_builds_only_for(&events, &["local.go"]);
    dev.wait_path("/local", "local now built");
}

/// kodata synced in dev mode is held to the build's symlink rule: a link
/// leading out of the module is refused by name (`sync_failed`) and never
/// reaches the container; a link within the module is synced.
#[test]
fn kodata_links_out_of_the_module_are_not_synced() {
    let mut dev = DevSession::start("kodata-links");
    let secret = dev.app.parent().expect("sandbox").join("credentials");
    std::fs::write(&secret, "SECRET\n").expect("secret");
    std::os::unix::fs::symlink(&secret, dev.app.join("kodata/leak.txt")).expect("link");
    let failed = dev.wait_event("sync_failed", Duration::from_secs(60));
    let errors = failed["errors"].to_string();
    assert!(errors.contains("kodata/leak.txt") && errors.contains(&secret.display().to_string()), "{failed}");

    // A link within the module is synced; by then the refused one has been handled.
    std::fs::write(dev.app.join("NOTICE"), "notice v1\n").expect("notice");
    std::os::unix::fs::symlink("../NOTICE", dev.app.join("kodata/notice.txt")).expect("link");
    dev.wait_path("/kodata/notice.txt", "notice v1");
    let (status, _) = http_get(dev.port, "/kodata/leak.txt").expect("the app answers");
    assert_eq!(status, 404, "the secret reached the container");
}

/// `gohot dev --name X` where X is a container gohot did not make: refused,
/// naming it, and the container is left as it was (it used to be
/// force-removed).
#[test]
fn a_container_gohot_did_not_make_is_never_replaced() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let image = ok(sb.gohot(&app).args(["build", "-L", "."])).trim().to_string();
    let name = format!("gohot-test-foreign-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    ok(Command::new("docker").args(["create", "--name", &name, "--label", "owner=someone-else", &image]));
    let (code, stderr) =
        refused_or_started(sb.gohot(&app).args(["dev", ".", "--name", &name, "--watchexec"]).arg(watchexec()));
    let still_there = container_exists(&name);
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&name) && stderr.contains("gohot did not make it") && stderr.contains("--name"),
        "{stderr}"
    );
    assert!(still_there, "the foreign container {name} was removed");
}

/// A second `gohot dev` of the same package (same container name) sees the
/// first by its label and refuses, naming its pid and how to stop it; the
/// first keeps serving. Once the first is gone (killed: its container is
/// left running, stale), the next session takes the container over.
#[test]
fn a_second_session_for_the_same_app_is_refused_while_the_first_runs() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let mut first = DevSession::start_in(&sb, &app, "twice", Stdio::inherit());
    let name = first.container.clone();
    let second = || {
        let port = free_port();
        let mut cmd = sb.gohot(&app);
        cmd.args(["dev", ".", "--name", &name, "-p", &format!("{port}:8080"), "--watchexec"]).arg(watchexec());
        (cmd, port)
    };
    let (mut cmd, _) = second();
    let (code, stderr) = refused_or_started(&mut cmd);
    assert_eq!(code, Some(1), "{stderr}");
    let pid = first.pid().to_string();
    assert!(stderr.contains("another gohot dev session") && stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(stderr.contains(&format!("kill {pid}")) && stderr.contains("--name"), "{stderr}");
    assert_eq!(first.answer().as_deref(), Some("Hello from gohot!"), "the first session's app stopped serving");

    // The first dies without cleaning up: its container stays, stale; the next session replaces it.
    first.signal("KILL");
    assert!(container_exists(&name), "the killed session's container is still there");
    let (mut cmd, port) = second();
    let mut next = cmd.stdout(Stdio::null()).spawn().expect("start gohot dev");
    wait_for("the next session to serve", Duration::from_secs(120), || {
        http_get(port, "/").filter(|(s, b)| *s == 200 && b.trim() == "Hello from gohot!").map(|_| ())
    });
    let _ = next.kill();
    let _ = next.wait();
}

/// A `-p` host port that something else holds: gohot names the port and
/// how to pick another, exits 1, and leaves no container behind (the engine
/// had created one, left in `Created`).
#[test]
fn a_host_port_in_use_is_named_and_leaves_no_container() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let port = holder.local_addr().expect("addr").port();
    let name = format!("gohot-test-portheld-{}", std::process::id());
    let (code, stderr) = refused_or_started(
        sb.gohot(&app)
            .args(["dev", ".", "--name", &name, "-p", &format!("{port}:8080"), "--watchexec"])
            .arg(watchexec()),
    );
    let left = container_exists(&name);
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    drop(holder);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("host port {port} is already in use")), "{stderr}");
    assert!(stderr.contains("-p OTHER:8080"), "{stderr}");
    assert!(!left, "container {name} left behind");
}

/// Runs a `gohot dev` that should refuse to start: its exit code and
/// stderr; or, if it starts instead (a `started` event), it is stopped and
/// the code is None.
fn refused_or_started(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd.arg("--json").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start gohot dev");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, started) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"event\":\"started\"") {
                let _ = tx.send(());
            }
        }
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let code = wait_for("gohot dev to refuse or start", Duration::from_secs(240), || {
        if started.try_recv().is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return Some(None);
        }
        child.try_wait().ok().flatten().map(|status| status.code())
    });
    (code, err.join().unwrap_or_default())
}
