//! `gohot dev` end to end on the real Docker engine, with the real Go
//! toolchain and a real static watchexec: edits reach the running container,
//! compile errors keep the old process serving, lost containers come back
//! with the current code, and a burst of saves ends on the last one.
//! No timing assertions: the benchmark measures speed.

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
    events: mpsc::Receiver<serde_json::Value>,
    pub port: u16,
    pub container: String,
    pub app: PathBuf,
    _sandbox: Sandbox,
}

impl DevSession {
    pub fn start(tag: &str) -> Self {
        let sb = Sandbox::new();
        let app = sb.copy_example("hello", "hello");
        let port = free_port();
        let container = format!("gohot-test-{tag}-{}", std::process::id());
        let mut child = sb
            .gohot(&app)
            .args(["dev", ".", "--json", "--name", &container, "-p", &format!("{port}:8080"), "--watchexec"])
            .arg(watchexec())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gohot dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("--json printed a line that is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut s = DevSession { child, events, port, container, app, _sandbox: sb };
        s.wait_event("started", Duration::from_secs(180));
        s.wait_answer("Hello from gohot!");
        s
    }

    /// Waits for an event of this kind, returning it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if e["event"] == kind => return e,
                Ok(_) => continue,
                Err(_) => panic!("no {kind:?} event within {timeout:?}"),
            }
        }
    }

    /// Waits until the app answers `/` with exactly `text`.
    pub fn wait_answer(&self, text: &str) {
        let port = self.port;
        wait_for(&format!("the app to answer {text:?}"), Duration::from_secs(90), || {
            http_get(port, "/").filter(|(s, b)| *s == 200 && b.trim() == text).map(|_| ())
        });
    }

    pub fn answer(&self) -> Option<String> {
        http_get(self.port, "/").map(|(_, b)| b.trim().to_string())
    }

    pub fn set_greeting(&self, text: &str) {
        set_greeting(&self.app, text);
    }

    /// Stops gohot with Ctrl-C and waits for it to exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        wait_for("gohot dev to exit", Duration::from_secs(30), || self.child.try_wait().ok().flatten())
    }
}

impl Drop for DevSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("docker").args(["rm", "-f", &self.container]).output();
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

    // Ctrl-C removes the container.
    let status = dev.interrupt();
    assert!(status.success(), "gohot dev exit status {status}");
    assert!(!container_exists(&dev.container), "container {} left behind", dev.container);
}

#[test]
fn restarted_or_removed_container_gets_the_current_binary() {
    let mut dev = DevSession::start("recover");
    dev.set_greeting("synced code");
    dev.wait_answer("synced code");
    dev.wait_event("reloaded", Duration::from_secs(60));

    // A restart keeps the container's files: the synced binary serves again.
    ok(Command::new("docker").args(["restart", "-t", "1", &dev.container]));
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
    // Everything that was started has settled on the last edit: one more
    // event-free check that no stale reload replaced it afterwards.
    loop {
        match dev.events.recv_timeout(Duration::from_secs(5)) {
            Ok(e) if ["reloaded", "build_started", "build_cancelled", "log"].iter().any(|k| e["event"] == *k) => {
                continue
            }
            Ok(e) => panic!("unexpected event after the burst: {e}"),
            Err(_) => break,
        }
    }
    assert_eq!(dev.answer().as_deref(), Some(last));
}

/// The way in under load: 100 new binaries written through the helper into a
/// running container (as the non-root user ko's default base uses) while
/// watchexec supervises; every start must be of a complete binary.
#[test]
fn hundred_atomic_writes_never_start_a_partial_binary() {
    use gohot::sync::wayin;
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
    let build = |greeting: &str| -> Vec<u8> {
        let out = sb.path().join(format!("bin-{greeting}"));
        ok(Command::new(go_binary())
            .current_dir(&app)
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .arg("build")
            .arg("-trimpath")
            .arg(format!("-ldflags=-s -w -X main.greeting={greeting}"))
            .arg("-o")
            .arg(&out)
            .arg("."));
        std::fs::read(out).expect("binary")
    };
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
    let mut previous: Option<&Vec<u8>> = None;
    for i in 0..100 {
        let next = &versions[i % 2];
        let payload = match previous {
            Some(p) => wayin::encode_delta(p, next),
            None => wayin::encode_full(next),
        };
        let mut child = Command::new("docker")
            .args(["exec", "-i", &name])
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker exec");
        child.stdin.take().expect("stdin").write_all(&payload).expect("payload");
        let out = child.wait_with_output().expect("exec");
        match wayin::parse_put_status(&out.stdout) {
            Ok(wayin::PutStatus::Written { pid: Some(_), .. }) => {}
            other => panic!("write {i}: {other:?} {}", String::from_utf8_lossy(&out.stderr)),
        }
        previous = Some(next);
    }
    // The last process may still be about to log its start line.
    let text = wait_for("101 start lines in the logs", Duration::from_secs(30), || {
        let logs = run(Command::new("docker").args(["logs", &name]));
        let text = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
        (text.matches("START ").count() > 100).then_some(text)
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
/// user (65532) can write: its home.
#[test]
fn sync_rules_copy_and_delete_without_rebuild() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::write(
        app.join("gohot.yaml"),
        "sync:\n  manual:\n  - src: 'static/**'\n    dest: /home/nonroot/www\n    strip: static/\n",
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
    let stdout = child.stdout.take().expect("stdout");
    let (tx, events) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("json"));
        }
    });
    let next = |kind: &str| loop {
        let e = events.recv_timeout(Duration::from_secs(180)).unwrap_or_else(|_| panic!("no {kind} event"));
        assert_ne!(e["event"], "build_started", "a rule-covered change must not rebuild: {e}");
        assert_ne!(e["event"], "sync_failed", "{e}");
        if e["event"] == kind {
            return e;
        }
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
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// Files synced back from the container into the app's own package directory
/// do not make `gohot dev` rebuild (no loop); a later local edit of such a
/// file does.
#[test]
fn syncback_writes_do_not_trigger_rebuilds() {
    let mut dev = DevSession::start("syncback");
    // Make a file inside the container through the helper (the base has no shell).
    let payload = gohot::sync::wayin::encode_full(b"generated in the container\n");
    let mut child = Command::new("docker")
        .args(["exec", "-i", &dev.container])
        .args(gohot::sync::wayin::put_argv("/tmp/gen/notes.txt", 0o644))
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
    assert_eq!(
        std::fs::read_to_string(dev.app.join("notes.txt")).expect("synced back"),
        "generated in the container\n"
    );
    // The watcher saw the new file; it must not have asked for a build.
    if let Ok(e) = dev.events.recv_timeout(Duration::from_secs(3)) {
        assert_ne!(e["event"], "build_started", "syncback's own write triggered a rebuild: {e}");
    }
    // A person editing it afterwards is a real change.
    std::fs::write(dev.app.join("notes.txt"), "edited locally\n").expect("edit");
    dev.wait_event("build_started", Duration::from_secs(30));
}
