//! The loop's core against a fake target and a fake builder: no Go
//! toolchain, engine or cluster (tests/dev.rs and tests/kube.rs run the real
//! ones), but the payload bytes are real — the fake target applies every put
//! with [`wayin::decode_payload`], the in-memory twin of the helper, and
//! answers `base-mismatch` exactly where the helper would. Source changes are
//! real file writes seen by the real watcher.

use std::sync::Mutex;

use tokio::sync::{mpsc, Semaphore};

use super::*;
use crate::builder::go::{Module, Package};
use crate::devloop::events::SessionSink;
use crate::hosting::{ExecOutput, Replica};
use crate::wayin::{self, sha256_hex};

/// The "binary" of a source: big enough for deltas to matter, and different
/// for every source text.
fn binary_of(source: &str) -> Bytes {
    let mut b = Vec::with_capacity(70_000);
    for i in 0..1000u32 {
        b.extend_from_slice(format!("{i:06} static code and data ").as_bytes());
        b.extend_from_slice(&[0u8; 40]);
    }
    b.extend_from_slice(source.as_bytes());
    Bytes::from(b)
}

/// Compiles `main.go` into [`binary_of`] it; each build waits for a permit
/// when `gate` is set, so a test decides when builds finish.
struct FakeBuilder {
    dir: PathBuf,
    gate: Option<Arc<Semaphore>>,
    compiled: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Rebuild for FakeBuilder {
    async fn compile(&self, _app: &DevApp) -> Result<Bytes, BuildError> {
        let source = std::fs::read_to_string(self.dir.join("main.go")).unwrap_or_default();
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate").forget();
        }
        self.compiled.lock().unwrap().push(source.clone());
        Ok(binary_of(&source))
    }

    async fn inputs(&self, _app: &DevApp) -> Result<BuildInputs, BuildError> {
        let mut inputs = BuildInputs::default();
        inputs.files.insert(self.dir.join("main.go"));
        inputs.package_dirs.insert(self.dir.clone());
        Ok(inputs)
    }
}

/// One container: what `/ko-app/app` holds.
struct FakeReplica {
    replica: Replica,
    content: Vec<u8>,
    puts: Vec<String>,
}

/// Replicas whose execs behave as the helper's `put` and `hash` do.
#[derive(Default)]
struct FakeTarget {
    replicas: Mutex<Vec<FakeReplica>>,
}

impl FakeTarget {
    fn add(&self, instance: &str, content: &[u8]) {
        let replica = Replica { name: instance.into(), instance: instance.into(), handle: instance.into() };
        self.replicas.lock().unwrap().push(FakeReplica { replica, content: content.to_vec(), puts: Vec::new() });
    }

    fn content(&self, instance: &str) -> Vec<u8> {
        let r = self.replicas.lock().unwrap();
        r.iter().find(|r| r.replica.instance == instance).map(|r| r.content.clone()).unwrap_or_default()
    }

    fn puts(&self, instance: &str) -> Vec<String> {
        let r = self.replicas.lock().unwrap();
        r.iter().find(|r| r.replica.instance == instance).map(|r| r.puts.clone()).unwrap_or_default()
    }

    /// The container restarted or was replaced: a new instance, with the image's binary.
    fn replace(&self, old: &str, new: &str, image_binary: &[u8]) {
        let mut r = self.replicas.lock().unwrap();
        let i = r.iter().position(|r| r.replica.instance == old).expect("replica");
        r[i] = FakeReplica {
            replica: Replica { name: new.into(), instance: new.into(), handle: new.into() },
            content: image_binary.to_vec(),
            puts: Vec::new(),
        };
    }
}

fn json_out(v: serde_json::Value, exit_code: i64) -> ExecOutput {
    ExecOutput { stdout: format!("{v}\n").into_bytes(), stderr: Vec::new(), exit_code }
}

#[async_trait::async_trait]
impl Target for FakeTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        Ok(self.replicas.lock().unwrap().iter().map(|r| r.replica.clone()).collect())
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        let mut all = self.replicas.lock().unwrap();
        let Some(r) = all.iter_mut().find(|r| r.replica.handle == replica.handle) else {
            return Err(TargetError::Exec { replica: replica.name.clone(), detail: "no such container".into() });
        };
        match argv.get(1).map(String::as_str) {
            Some("serving") => {
                Ok(json_out(serde_json::json!({"ok": true, "pid": 7, "restart_ms": 0, "answer_ms": 1}), 0))
            }
            Some("hash") => {
                Ok(json_out(serde_json::json!({"sha256": sha256_hex(&r.content), "size": r.content.len()}), 0))
            }
            Some("put") => match wayin::decode_payload(Some(&r.content), &stdin, 1 << 30) {
                Ok(new) => {
                    let kind = if stdin.starts_with(br#"{"v":3,"kind":"delta""#) { "delta" } else { "full" };
                    r.puts.push(kind.into());
                    r.content = new;
                    Ok(json_out(
                        serde_json::json!({"ok": true, "kind": kind, "bytes": r.content.len(),
                            "sha256": sha256_hex(&r.content), "pid": 7, "restart_ms": 1}),
                        0,
                    ))
                }
                Err(wayin::WayInError::BaseMismatch(m)) => {
                    r.puts.push("refused".into());
                    Ok(json_out(serde_json::json!({"ok": false, "error": "base-mismatch", "message": m}), 3))
                }
                Err(e) => {
                    Ok(json_out(serde_json::json!({"ok": false, "error": "bad-payload", "message": e.to_string()}), 1))
                }
            },
            other => panic!("unexpected helper command {other:?}"),
        }
    }
}

struct Harness {
    dir: tempfile::TempDir,
    events: mpsc::UnboundedReceiver<DevEvent>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), DevError>>,
}

impl Harness {
    /// Starts the loop on `target`, the app's initial source being `source`.
    async fn start(target: Arc<FakeTarget>, source: &str, gate: Option<Arc<Semaphore>>) -> (Harness, Arc<FakeBuilder>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.go"), source).unwrap();
        let builder = Arc::new(FakeBuilder { dir: dir.path().to_path_buf(), gate, compiled: Mutex::default() });
        let app = DevApp {
            package: Package {
                import_path: "example.com/app".into(),
                name: "main".into(),
                dir: dir.path().to_path_buf(),
                module: Some(Module { path: "example.com/app".into(), dir: Some(dir.path().to_path_buf()) }),
            },
            requested: ".".into(),
            platform: crate::platform::Platform::linux("amd64"),
        };
        let opts = LoopOptions { health_interval: Duration::from_millis(50), ..Default::default() };
        let watching = watch(builder.as_ref(), std::slice::from_ref(&app), &opts).await.unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let sink: SessionSink = Arc::new(move |_, e| {
            let _ = tx.send(e);
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let initial = binary_of(source);
        let b = builder.clone();
        let task = tokio::spawn(async move {
            let service = Service { app, target: target.as_ref(), initial, probe: Probe::Started, debug: None };
            run(b.as_ref(), vec![service], watching, opts, sink, async {
                let _ = stopped.await;
            })
            .await
        });
        (Harness { dir, events, stop: Some(stop), task }, builder)
    }

    fn edit(&self, source: &str) {
        let tmp = self.dir.path().join(".main.go.tmp");
        std::fs::write(&tmp, source).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("main.go")).unwrap();
    }

    /// The next event matching `want`; every event before it is returned too.
    async fn until(&mut self, what: &str, want: impl Fn(&DevEvent) -> bool) -> Vec<DevEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    let done = want(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                _ => panic!("no {what}; events: {seen:?}"),
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.task.await.expect("loop task").expect("loop");
    }
}

fn is_reloaded(e: &DevEvent) -> bool {
    matches!(e, DevEvent::Reloaded { .. })
}

/// A replica that holds the previous build gets a delta; one whose binary
/// is not the delta's base refuses it, gets the whole file, and both end up
/// with the new build.
#[tokio::test]
async fn delta_then_base_mismatch_then_full() {
    let target = Arc::new(FakeTarget::default());
    target.add("a", &binary_of("v1"));
    target.add("b", &binary_of("v1"));
    let (mut h, _) = Harness::start(target.clone(), "v1", None).await;
    // The first reload sends a delta against the image's binary (what a
    // replica not yet checked most likely holds)...
    h.edit("v2");
    h.until("the first reload", is_reloaded).await;
    // ...after which both are known to hold v2. b is changed behind the
    // loop's back (as if someone copied another file in): its copy is not
    // the base of the next delta.
    target.replicas.lock().unwrap()[1].content = binary_of("someone else's").to_vec();
    h.edit("v3");
    let events = h.until("the second reload", is_reloaded).await;
    match events.last() {
        Some(DevEvent::Reloaded { replicas, replicas_total, .. }) => assert_eq!((*replicas, *replicas_total), (2, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(target.content("a"), binary_of("v3"));
    assert_eq!(target.content("b"), binary_of("v3"));
    assert_eq!(target.puts("a").last().map(String::as_str), Some("delta"));
    assert_eq!(target.puts("b")[target.puts("b").len() - 2..], ["refused".to_string(), "full".to_string()]);
    h.stop().await;
}

/// A replica that restarted from the image (new instance, old binary) is
/// found by the health check, gets the current build and is reported.
#[tokio::test]
async fn restarted_replica_gets_the_current_binary() {
    let target = Arc::new(FakeTarget::default());
    target.add("a/0", &binary_of("v1"));
    let (mut h, _) = Harness::start(target.clone(), "v1", None).await;
    h.edit("v2");
    h.until("a reload", is_reloaded).await;
    target.replace("a/0", "a/1", &binary_of("v1"));
    let events = h.until("the recovery", |e| matches!(e, DevEvent::Recovered { .. })).await;
    assert!(matches!(events.last(), Some(DevEvent::Recovered { replica, .. }) if replica == "a/1"), "{events:?}");
    assert_eq!(target.content("a/1"), binary_of("v2"));
    h.stop().await;
}

/// A save while a build runs cancels it; what runs in the end is the
/// newest source, and the stale build was never sent.
#[tokio::test]
async fn newer_save_cancels_the_running_build() {
    let target = Arc::new(FakeTarget::default());
    target.add("a", &binary_of("v1"));
    let gate = Arc::new(Semaphore::new(0));
    let (mut h, builder) = Harness::start(target.clone(), "v1", Some(gate.clone())).await;
    h.edit("v2");
    h.until("the build of v2", |e| matches!(e, DevEvent::BuildStarted { .. })).await;
    h.edit("v3");
    h.until("the cancellation", |e| matches!(e, DevEvent::BuildCancelled)).await;
    h.until("the build of v3", |e| matches!(e, DevEvent::BuildStarted { .. })).await;
    gate.add_permits(1);
    h.until("the reload", is_reloaded).await;
    assert_eq!(target.content("a"), binary_of("v3"));
    assert_eq!(*builder.compiled.lock().unwrap(), ["v3"], "the stale build never finished");
    h.stop().await;
}
