//! The reload layer against a fake target whose replicas answer `hash`,
//! `put` and `rm` as the helper does, with real payload bytes: every put is
//! applied with [`wayin::decode_payload`], the helper's in-memory twin, and
//! a delta whose base does not match is refused exactly where the helper
//! would refuse it. (The real helper, engine and cluster run in tests/dev.rs,
//! tests/kube.rs and tests/skaffold_sync.rs.)

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::hosting::{ExecOutput, Replica, TargetError};
use crate::wayin;

const DEST: &str = "/ko-app/app";

struct FakeReplica {
    replica: Replica,
    files: BTreeMap<String, Vec<u8>>,
    /// Requests, as `hash`, `put delta`, `put full`, `put refused`, `rm`.
    log: Vec<String>,
}

/// Replicas whose one-shot execs behave as the helper's commands do; paths
/// under `/srv` are not writable (as on the nonroot default base).
#[derive(Default)]
struct FakeTarget(Mutex<Vec<FakeReplica>>);

impl FakeTarget {
    fn add(&self, instance: &str, binary: &[u8]) {
        let replica = Replica { name: instance.into(), instance: instance.into(), handle: instance.into() };
        let files = BTreeMap::from([(DEST.to_string(), binary.to_vec())]);
        self.0.lock().unwrap().push(FakeReplica { replica, files, log: Vec::new() });
    }

    /// The container was replaced: a new instance with only the image's binary.
    fn replace(&self, old: &str, new: &str, binary: &[u8]) {
        self.0.lock().unwrap().retain(|r| r.replica.instance != old);
        self.add(new, binary);
    }

    fn file(&self, instance: &str, path: &str) -> Option<Vec<u8>> {
        let all = self.0.lock().unwrap();
        all.iter().find(|r| r.replica.instance == instance).and_then(|r| r.files.get(path).cloned())
    }

    fn log(&self, instance: &str) -> Vec<String> {
        let all = self.0.lock().unwrap();
        all.iter().find(|r| r.replica.instance == instance).map(|r| r.log.clone()).unwrap_or_default()
    }
}

fn line(v: serde_json::Value) -> ExecOutput {
    ExecOutput { stdout: format!("{v}\n").into_bytes(), stderr: Vec::new(), exit_code: 0 }
}

#[async_trait::async_trait]
impl Target for FakeTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        Ok(self.0.lock().unwrap().iter().map(|r| r.replica.clone()).collect())
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        let mut all = self.0.lock().unwrap();
        let r = all.iter_mut().find(|r| r.replica.handle == replica.handle).expect("a live replica");
        let path = argv.last().expect("a path").clone();
        let held = r.files.get(&path).cloned();
        Ok(match argv[1].as_str() {
            "hash" => {
                r.log.push("hash".into());
                match held {
                    Some(h) => line(serde_json::json!({"sha256": wayin::sha256_hex(&h), "size": h.len()})),
                    None => line(serde_json::json!({"missing": true})),
                }
            }
            "put" if path.starts_with("/srv/") => line(
                serde_json::json!({"ok": false, "error": "write", "message": format!("open {path}: permission denied")}),
            ),
            "put" => match wayin::decode_payload(held.as_deref(), &stdin, 1 << 30) {
                Ok(new) => {
                    let kind = if stdin.starts_with(br#"{"v":3,"kind":"delta""#) { "delta" } else { "full" };
                    r.log.push(format!("put {kind}"));
                    let status = serde_json::json!({"ok": true, "kind": kind, "bytes": new.len(),
                        "sha256": wayin::sha256_hex(&new), "pid": 7, "restart_ms": 3});
                    r.files.insert(path, new);
                    line(status)
                }
                Err(wayin::WayInError::BaseMismatch(m)) => {
                    r.log.push("put refused".into());
                    line(serde_json::json!({"ok": false, "error": "base-mismatch", "message": m}))
                }
                Err(e) => panic!("{e}"),
            },
            "rm" => {
                r.log.push("rm".into());
                let removed = r.files.remove(&path).is_some();
                line(serde_json::json!({"ok": true, "removed": removed}))
            }
            other => panic!("unexpected helper command {other}"),
        })
    }
}

fn options() -> ReloadOptions {
    ReloadOptions {
        app: "app".into(),
        dest: DEST.into(),
        restart_timeout: Duration::from_secs(1),
        probe: Probe::Started,
        one_shot: true,
    }
}

fn edit(binary: &[u8], at: usize, text: &[u8]) -> Vec<u8> {
    let mut b = binary.to_vec();
    b[at..at + text.len()].copy_from_slice(text);
    b
}

/// One replica holds the previous build (a delta goes straight out), one
/// holds something else (the delta is refused, the whole binary follows);
/// pushed again, both hold the build and are only asked.
#[tokio::test]
async fn a_delta_where_the_base_is_held_and_the_whole_binary_elsewhere() {
    let previous = wayin::noise(200_000, 1);
    let new = edit(&previous, 1000, b"0123456789");
    let fake = FakeTarget::default();
    fake.add("a", &previous);
    fake.add("b", b"the image's own binary");
    let mut r = Reloader::new(&fake, options(), Some(Binary::new(Bytes::from(previous.clone()))));
    let report = r.push_binary(Binary::new(Bytes::from(new.clone()))).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    assert!(report.answered);
    assert_eq!(report.current(), 2);
    assert_eq!(fake.file("a", DEST).as_deref(), Some(&new[..]));
    assert_eq!(fake.file("b", DEST).as_deref(), Some(&new[..]));
    assert_eq!(fake.log("a"), ["put delta"]);
    assert_eq!(fake.log("b"), ["put refused", "put full"]);
    assert!(report.bytes_sent < new.len() as u64 + 10_000, "{report:?}");
    // A new reloader (the next hook run) with the same binary as "previous":
    // nothing to send, each replica is asked.
    let mut again = Reloader::new(&fake, options(), Some(Binary::new(Bytes::from(new.clone()))));
    let report = again.push_binary(Binary::new(Bytes::from(new))).await;
    assert_eq!(report.bytes_sent, 0);
    assert!(report.replicas.iter().all(|(_, o)| *o == ReplicaOutcome::Unchanged), "{report:?}");
    assert_eq!(fake.log("a"), ["put delta", "hash"]);
}

/// Files synced during the session (copied and removed) and the binary are
/// all given to a replica that replaced another — by the health check, and
/// by a reload that finds the new replica first — before it is reported.
#[tokio::test]
async fn a_replaced_replica_gets_the_binary_and_every_synced_file() {
    let dir = tempfile::tempdir().unwrap();
    let (page, gone) = (dir.path().join("page.html"), dir.path().join("gone.css"));
    std::fs::write(&page, "v1").unwrap();
    std::fs::write(&gone, "x").unwrap();
    let image = wayin::noise(50_000, 2);
    let fake = FakeTarget::default();
    fake.add("a/0", &image);
    let mut r = Reloader::new(&fake, options(), Some(Binary::new(Bytes::from(image.clone()))));
    let v2 = edit(&image, 10, b"v2");
    assert!(r.push_binary(Binary::new(Bytes::from(v2.clone()))).await.answered);
    let item = |rel: &str, local: &std::path::Path| FileItem {
        rel: rel.into(),
        local: local.to_path_buf(),
        dests: vec![format!("/var/run/ko/{rel}")],
    };
    let synced = r.sync_files(vec![item("page.html", &page), item("gone.css", &gone)]).await;
    assert_eq!(synced.copied, ["page.html", "gone.css"]);
    std::fs::remove_file(&gone).unwrap();
    let synced = r.sync_files(vec![item("gone.css", &gone)]).await;
    assert_eq!(synced.deleted, ["gone.css"]);

    // Replaced from the image: the old binary, none of the files.
    fake.replace("a/0", "a/1", &image);
    let health = r.check_replicas().await;
    assert_eq!(health.errors, Vec::<String>::new());
    assert_eq!(health.recovered.len(), 1, "{health:?}");
    assert!(health.recovered[0].1.contains("synced files"), "{health:?}");
    assert_eq!(fake.file("a/1", DEST), Some(v2.clone()));
    assert_eq!(fake.file("a/1", "/var/run/ko/page.html").as_deref(), Some(&b"v1"[..]));
    assert_eq!(fake.file("a/1", "/var/run/ko/gone.css"), None);
    assert!(r.check_replicas().await.recovered.is_empty(), "checked once");

    // Replaced again, and a reload comes before the health check.
    fake.replace("a/1", "a/2", &image);
    let v3 = edit(&image, 10, b"v3");
    let report = r.push_binary(Binary::new(Bytes::from(v3.clone()))).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
    assert_eq!(fake.file("a/2", DEST), Some(v3));
    assert_eq!(fake.file("a/2", "/var/run/ko/page.html").as_deref(), Some(&b"v1"[..]));
    // The image's binary was not the delta's base (v2): refused, then whole.
    assert_eq!(fake.log("a/2")[..2], ["put refused".to_string(), "put full".to_string()]);
}

/// A file counts as synced only where it reached every destination of every
/// replica; a destination the container's user cannot write names the fix;
/// a second sync of the same content sends nothing.
#[tokio::test]
async fn files_are_reported_synced_only_where_they_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    std::fs::write(&f, "hello").unwrap();
    let fake = FakeTarget::default();
    fake.add("a", b"bin");
    fake.add("b", b"bin");
    let mut r = Reloader::new(&fake, options(), None);
    let item = |dests: &[&str]| FileItem {
        rel: "a.txt".into(),
        local: f.clone(),
        dests: dests.iter().map(|d| d.to_string()).collect(),
    };
    let report = r.sync_files(vec![item(&["/tmp/a.txt", "/srv/a.txt"])]).await;
    assert!(report.copied.is_empty(), "{report:?}");
    assert_eq!(report.errors.len(), 2, "one per replica: {report:?}");
    assert!(report.errors.iter().all(|e| e.contains("/srv/a.txt") && e.contains("/home/nonroot")), "{report:?}");
    let report = r.sync_files(vec![item(&["/tmp/a.txt"])]).await;
    assert_eq!((report.copied.len(), report.bytes_sent), (0, 0), "held already, nothing sent: {report:?}");
    std::fs::write(&f, "hello again").unwrap();
    let report = r.sync_files(vec![item(&["/tmp/a.txt"])]).await;
    assert_eq!(report.copied, ["a.txt"]);
    assert_eq!(fake.file("b", "/tmp/a.txt").as_deref(), Some(&b"hello again"[..]));
    assert_eq!(r.sync_files(vec![item(&[])]).await.errors, ["a.txt: the sync rules give it no destination"]);
}
