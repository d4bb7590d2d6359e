//! Several services in one session, against fake targets and a fake
//! builder (tests/multi.rs runs the real engine and cluster): a change
//! reaches exactly the services built from it, one service's compile error
//! or hung replica holds no other, and a save that touched several ends with
//! one `reloaded_all`. Source changes are real file writes seen by the real
//! watcher.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::*;
use crate::builder::go::{Module, Package};
use crate::devloop::events::{DevEvent, SessionSink};
use crate::hosting::{ExecOutput, Replica};
use crate::wayin::{self, sha256_hex};

/// Builds each service from `<dir>/<name>.go` and `shared.go`: the
/// "binary" holds both texts; a text containing `SYNTAX ERROR` does not compile.
struct FakeBuilder {
    dir: PathBuf,
    /// Which services each build was for, in order.
    compiled: Mutex<Vec<String>>,
}

fn binary(own: &str, shared: &str) -> Bytes {
    let mut b = vec![7u8; 20_000];
    b.extend_from_slice(format!("{own}|{shared}").as_bytes());
    Bytes::from(b)
}

#[async_trait::async_trait]
impl Rebuild for FakeBuilder {
    async fn compile(&self, app: &DevApp) -> Result<Bytes, BuildError> {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let (own, shared) = (read(&format!("{}.go", app.name())), read("shared.go"));
        self.compiled.lock().unwrap().push(app.name());
        if own.contains("SYNTAX ERROR") {
            return Err(BuildError::Go(crate::builder::go::GoError::Build {
                import_path: app.package.import_path.clone(),
                platform: "linux/amd64".into(),
                stderr: format!("./{}.go:1:1: syntax error\n", app.name()),
            }));
        }
        Ok(binary(&own, &shared))
    }

    async fn inputs(&self, app: &DevApp) -> Result<BuildInputs, BuildError> {
        let mut inputs = BuildInputs::default();
        inputs.files.insert(self.dir.join(format!("{}.go", app.name())));
        inputs.files.insert(self.dir.join("shared.go"));
        Ok(inputs)
    }
}

/// One replica per service, answering `hash` and `put` as the helper does;
/// a hung one never answers a `put`.
#[derive(Default)]
struct FakeTarget {
    held: Mutex<Vec<u8>>,
    name: String,
    hung: AtomicBool,
}

fn json_out(v: serde_json::Value) -> ExecOutput {
    ExecOutput { stdout: format!("{v}\n").into_bytes(), stderr: Vec::new(), exit_code: 0 }
}

#[async_trait::async_trait]
impl Target for FakeTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        Ok(vec![Replica { name: self.name.clone(), instance: self.name.clone(), handle: self.name.clone() }])
    }

    async fn exec(&self, _: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        if self.hung.load(Ordering::SeqCst) && argv[1] == "put" {
            std::future::pending::<()>().await;
        }
        let mut held = self.held.lock().unwrap();
        Ok(match argv[1].as_str() {
            "serving" => json_out(serde_json::json!({"ok": true, "pid": 7, "restart_ms": 0, "answer_ms": 1})),
            "hash" => json_out(serde_json::json!({"sha256": sha256_hex(&held), "size": held.len()})),
            "put" => match wayin::decode_payload(Some(&held), &stdin, 1 << 30) {
                Ok(new) => {
                    *held = new;
                    json_out(serde_json::json!({"ok": true, "kind": "full", "bytes": held.len(),
                        "sha256": sha256_hex(&held), "pid": 7, "restart_ms": 1}))
                }
                Err(e) => {
                    json_out(serde_json::json!({"ok": false, "error": "base-mismatch", "message": e.to_string()}))
                }
            },
            other => panic!("unexpected helper command {other}"),
        })
    }
}

struct Session {
    dir: tempfile::TempDir,
    builder: Arc<FakeBuilder>,
    targets: BTreeMap<String, Arc<FakeTarget>>,
    events: mpsc::UnboundedReceiver<(Option<String>, DevEvent)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), DevError>>,
}

impl Session {
    async fn start(names: &[&str]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shared.go"), "s1").unwrap();
        for n in names {
            std::fs::write(dir.path().join(format!("{n}.go")), format!("{n} v1")).unwrap();
        }
        let builder = Arc::new(FakeBuilder { dir: dir.path().to_path_buf(), compiled: Mutex::default() });
        let apps: Vec<DevApp> = names
            .iter()
            .map(|n| DevApp {
                package: Package {
                    import_path: format!("example.com/m/cmd/{n}"),
                    name: "main".into(),
                    dir: dir.path().join("cmd").join(n),
                    module: Some(Module { path: "example.com/m".into(), dir: Some(dir.path().to_path_buf()) }),
                },
                requested: format!("./cmd/{n}"),
                platform: crate::platform::Platform::linux("amd64"),
            })
            .collect();
        let mut targets = BTreeMap::new();
        for n in names {
            let t = FakeTarget { name: format!("gohot-{n}"), ..Default::default() };
            *t.held.lock().unwrap() = binary(&format!("{n} v1"), "s1").to_vec();
            targets.insert(n.to_string(), Arc::new(t));
        }
        let opts = LoopOptions {
            health_interval: Duration::from_secs(3600),
            restart_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let watching = watch(builder.as_ref(), &apps, &opts).await.unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let sink: SessionSink = Arc::new(move |app, e| {
            let _ = tx.send((app.map(String::from), e));
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (b, t) = (builder.clone(), targets.clone());
        let task = tokio::spawn(async move {
            let services = apps
                .into_iter()
                .map(|app| {
                    let target: &dyn Target = t[&app.name()].as_ref();
                    let initial = binary(&format!("{} v1", app.name()), "s1");
                    Service { app, target, initial, probe: Probe::Started, debug: None }
                })
                .collect();
            run(b.as_ref(), services, watching, opts, sink, async {
                let _ = stopped.await;
            })
            .await
        });
        Session { dir, builder, targets, events, stop: Some(stop), task }
    }

    fn write(&self, file: &str, text: &str) {
        let tmp = self.dir.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.path().join(file)).unwrap();
    }

    /// Events up to and including the first matching `want`.
    async fn until(
        &mut self,
        what: &str,
        want: impl Fn(Option<&str>, &DevEvent) -> bool,
    ) -> Vec<(Option<String>, DevEvent)> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((app, e))) => {
                    let done = want(app.as_deref(), &e);
                    seen.push((app, e));
                    if done {
                        return seen;
                    }
                }
                _ => panic!("no {what}; events: {seen:?}"),
            }
        }
    }

    fn holds(&self, name: &str) -> Vec<u8> {
        self.targets[name].held.lock().unwrap().clone()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.task.await.expect("loop task").expect("loop");
    }
}

fn all_done(_: Option<&str>, e: &DevEvent) -> bool {
    matches!(e, DevEvent::ReloadedAll { .. })
}

/// An edit of a package every service imports builds and reloads all three
/// and ends with one `reloaded_all`; an edit of one service's own file
/// builds that one only.
#[tokio::test]
async fn a_shared_edit_reloads_every_service_and_an_own_edit_only_its_own() {
    let mut s = Session::start(&["api", "worker", "gateway"]).await;
    s.write("shared.go", "s2");
    let events = s.until("reloaded_all", all_done).await;
    let Some((None, DevEvent::ReloadedAll { services, files, .. })) = events.last() else { panic!("{events:?}") };
    assert_eq!(files, &["shared.go"]);
    let names: Vec<&str> = services.iter().map(|r| r.app.as_str()).collect();
    assert_eq!(names, ["api", "worker", "gateway"], "in session order");
    assert!(services.iter().all(|r| r.outcome == "reloaded"), "{services:?}");
    for n in ["api", "worker", "gateway"] {
        assert_eq!(s.holds(n), binary(&format!("{n} v1"), "s2").to_vec(), "{n}");
        let tagged = events.iter().any(|(app, e)| app.as_deref() == Some(n) && matches!(e, DevEvent::Reloaded { .. }));
        assert!(tagged, "{n}'s reload carries its app: {events:?}");
    }
    s.builder.compiled.lock().unwrap().clear();
    s.write("worker.go", "worker v2");
    s.until("worker's reload", |app, e| app == Some("worker") && matches!(e, DevEvent::Reloaded { .. })).await;
    assert_eq!(*s.builder.compiled.lock().unwrap(), ["worker"], "0 builds of the others");
    assert_eq!(s.holds("api"), binary("api v1", "s2").to_vec());
    s.stop().await;
}

/// A compile error in one service leaves it on its old binary while the
/// others reload; `reloaded_all` says which failed.
#[tokio::test]
async fn a_compile_error_in_one_service_holds_no_other() {
    let mut s = Session::start(&["api", "worker"]).await;
    s.write("api.go", "api SYNTAX ERROR");
    s.until("api's failure", |app, e| app == Some("api") && matches!(e, DevEvent::BuildFailed { .. })).await;
    s.write("shared.go", "s2");
    let events = s.until("reloaded_all", all_done).await;
    let Some((_, DevEvent::ReloadedAll { services, .. })) = events.last() else { panic!("{events:?}") };
    let outcome: Vec<(&str, &str)> = services.iter().map(|r| (r.app.as_str(), r.outcome.as_str())).collect();
    assert_eq!(outcome, [("api", "failed"), ("worker", "reloaded")]);
    assert_eq!(s.holds("api"), binary("api v1", "s1").to_vec(), "api keeps its old binary");
    assert_eq!(s.holds("worker"), binary("worker v1", "s2").to_vec());
    s.stop().await;
}

/// A replica of one service that never answers delays no other service's
/// reload: the worker's status line comes before the api's failure.
#[tokio::test]
async fn a_hung_replica_of_one_service_delays_no_other() {
    let mut s = Session::start(&["api", "worker"]).await;
    s.targets["api"].hung.store(true, Ordering::SeqCst);
    s.write("shared.go", "s2");
    let events =
        s.until("the api's failure", |app, e| app == Some("api") && matches!(e, DevEvent::SyncFailed { .. })).await;
    let worker =
        events.iter().position(|(app, e)| app.as_deref() == Some("worker") && matches!(e, DevEvent::Reloaded { .. }));
    assert!(worker.is_some_and(|w| w < events.len() - 1), "the worker reloaded first: {events:?}");
    let events = s.until("reloaded_all", all_done).await;
    let Some((_, DevEvent::ReloadedAll { services, .. })) = events.last() else { panic!("{events:?}") };
    assert_eq!(services[0].outcome, "failed");
    s.stop().await;
}
