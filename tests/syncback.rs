//! `gohot syncback`: files from a real container back into a local tree,
//! and the Rust side fed hostile listings and streams directly.

use crate::wayin_support as support;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::StreamExt;
use gohot::hosting::{ExecOutput, ExecStream, Replica, Target, TargetError};
use gohot::syncback::plan::ConflictKind;
use gohot::syncback::{Options, Report, Syncback, SyncbackError};
use gohot::wayin::{ListLimits, WayInError};

use crate::util::{sha256, Sandbox};

// ================================================================ helpers

/// Every file below `root` (relative path → content; links as `-> target`).
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").to_string_lossy().into_owned();
            let ft = std::fs::symlink_metadata(&p).expect("lstat").file_type();
            if ft.is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&p).expect("readlink").display()));
            } else if ft.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned());
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn expect_tree(root: &Path, want: &[(&str, &str)]) {
    let want: BTreeMap<String, String> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let got = tree(root);
    assert_eq!(got, want, "\nlocal tree differs:\n got: {got:#?}\nwant: {want:#?}");
}

fn opts() -> Options {
    Options::default()
}

/// A target answering `list` and `get` with canned bytes, as a hostile
/// container could. Records the get requests.
struct Scripted {
    listing: Vec<u8>,
    stream: Vec<u8>,
    gets: Mutex<Vec<String>>,
    /// Runs when the get is asked for: after the plan, before any file lands.
    on_get: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Scripted {
    fn new(listing: Vec<u8>, stream: Vec<u8>) -> Self {
        Scripted { listing, stream, gets: Mutex::new(Vec::new()), on_get: None }
    }
}

#[async_trait::async_trait]
impl Target for Scripted {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        Ok(vec![Replica { name: "fake".into(), instance: "1".into(), handle: "fake".into() }])
    }
    async fn exec(&self, _replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        let stdout = match argv[1].as_str() {
            "list" => self.listing.clone(),
            "get" => {
                self.gets.lock().expect("lock").push(String::from_utf8_lossy(&stdin).into_owned());
                if let Some(f) = &self.on_get {
                    f();
                }
                self.stream.clone()
            }
            other => panic!("unexpected helper command {other}"),
        };
        Ok(ExecOutput { stdout, stderr: Vec::new(), exit_code: 0 })
    }
}

fn file_entry(path: &str, content: &[u8], mode: u32) -> serde_json::Value {
    serde_json::json!({"path": path, "type": "file", "size": content.len(), "mode": mode, "mtime": 1, "sha256": sha256(content)})
}

fn listing(entries: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"root": "/data", "entries": entries, "skipped": []})).expect("json")
}

/// One record of a get stream.
fn rec(path: &str, content: &[u8]) -> Vec<u8> {
    let mut v = format!("{{\"path\":\"{path}\",\"size\":{},\"mode\":420,\"mtime\":1}}\n", content.len()).into_bytes();
    v.extend_from_slice(content);
    v.extend_from_slice(format!("{{\"sha256\":\"{}\"}}\n", sha256(content)).as_bytes());
    v
}

fn gz(parts: &[&[u8]]) -> Vec<u8> {
    let mut z = GzEncoder::new(Vec::new(), Compression::fast());
    for p in parts {
        z.write_all(p).expect("gz");
    }
    z.finish().expect("gz")
}

fn end(files: usize) -> Vec<u8> {
    format!("{{\"end\":true,\"files\":{files},\"errors\":0}}\n").into_bytes()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    local: PathBuf,
    outside: PathBuf,
    state: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = tmp.path().join("local");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&local).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let state = tmp.path().join("state.json");
    Dirs { local: std::fs::canonicalize(&local).expect("canon"), outside, state, _tmp: tmp }
}

async fn round(target: &dyn Target, d: &Dirs, o: Options) -> Result<Report, SyncbackError> {
    let mut sb = Syncback::new(target, "/data", &d.local, d.state.clone(), o)?;
    let r = sb.replica().await?;
    sb.round(&r).await
}

// ============================================== hostile input, no container

#[tokio::test]
async fn syncback_refuses_hostile_listings_and_writes_nothing() {
    let d = dirs();
    for bad in [
        listing(vec![file_entry("../escape", b"x", 0o644)]),
        listing(vec![file_entry("/etc/passwd", b"x", 0o644)]),
        listing(vec![file_entry("a/../../escape", b"x", 0o644)]),
        // an entry below a symlink: following it could lead anywhere
        listing(vec![
            serde_json::json!({"path": "l", "type": "symlink", "target": "/etc"}),
            file_entry("l/passwd", b"x", 0o644),
        ]),
    ] {
        let t = Scripted::new(bad, gz(&[&end(0)]));
        let err = round(&t, &d, opts()).await.expect_err("hostile listing accepted");
        assert!(matches!(err, SyncbackError::Helper { what: "list", .. }), "{err}");
        assert!(t.gets.lock().expect("lock").is_empty(), "fetched after a hostile listing");
    }
    expect_tree(&d.local, &[]);
    expect_tree(&d.outside, &[]);
}

#[tokio::test]
async fn syncback_refuses_symlinks_that_lead_outside() {
    let d = dirs();
    let good = b"good content";
    let t = Scripted::new(
        listing(vec![
            serde_json::json!({"path": "abs", "type": "symlink", "target": "/etc/passwd"}),
            serde_json::json!({"path": "d", "type": "dir", "mode": 0o755}),
            serde_json::json!({"path": "d/a", "type": "dir", "mode": 0o755}),
            // each lexically inside, but y -> c/.. climbs through c, which leads to the root
            serde_json::json!({"path": "d/a/c", "type": "symlink", "target": "../.."}),
            serde_json::json!({"path": "d/inside", "type": "symlink", "target": "../good"}),
            file_entry("good", good, 0o644),
            serde_json::json!({"path": "up", "type": "symlink", "target": "../outside"}),
            serde_json::json!({"path": "y", "type": "symlink", "target": "d/a/c/.."}),
        ]),
        gz(&[&rec("good", good), &end(1)]),
    );
    let r = round(&t, &d, opts()).await.expect("round");
    let refused: Vec<&str> = r.refused.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(refused, ["abs", "up", "y"], "{r}");
    expect_tree(
        &d.local,
        &[("d/", ""), ("d/a/", ""), ("d/a/c", "-> ../.."), ("d/inside", "-> ../good"), ("good", "good content")],
    );
    assert_eq!(*t.gets.lock().expect("lock"), ["good\n\n"], "only the regular file is requested");
}

#[tokio::test]
async fn syncback_refuses_hostile_streams_and_leaves_no_half_file() {
    let d = dirs();
    let long_b = vec![b'b'; 1000];
    let (a, b) = (b"new a".as_slice(), long_b.as_slice());
    let list = listing(vec![file_entry("a", a, 0o644), file_entry("b", b, 0o644)]);
    // b's header announces its size, then the stream is cut in its body
    let mut cut_b = rec("b", b);
    cut_b.truncate(cut_b.len() - 300);
    let mut wrong = rec("a", a);
    let at = wrong.iter().position(|&c| c == b'\n').expect("nl") + 1;
    wrong[at] ^= 1;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("traversal", gz(&[&rec("../a", a), &rec("b", b), &end(2)])),
        ("absolute", gz(&[&rec("/tmp/a", a), &rec("b", b), &end(2)])),
        ("not requested", gz(&[&rec("zzz", a), &end(1)])),
        ("wrong hash", gz(&[&wrong, &rec("b", b), &end(2)])),
        ("cut short", gz(&[&rec("a", a), &cut_b])[..].to_vec()),
        ("gzip cut short", {
            let mut z = gz(&[&rec("a", a), &rec("b", b), &end(2)]);
            z.truncate(z.len() - 12);
            z
        }),
    ];
    for (what, stream) in hostile {
        // Old local versions, synced before (so they may be replaced).
        std::fs::write(d.local.join("a"), "old a").expect("write");
        std::fs::write(d.local.join("b"), "old b").expect("write");
        let _ = std::fs::remove_file(&d.state);
        let seed = Scripted::new(
            listing(vec![file_entry("a", b"old a", 0o644), file_entry("b", b"old b", 0o644)]),
            gz(&[&end(0)]),
        );
        let r = round(&seed, &d, opts()).await.expect("adopt");
        assert_eq!(r.unchanged, 2);

        let t = Scripted::new(list.clone(), stream);
        let err = round(&t, &d, opts()).await.expect_err(what);
        assert!(matches!(err, SyncbackError::Helper { what: "get", .. }), "{what}: {err}");
        let got = tree(&d.local);
        // Each file is old or new, never anything else; no temp files left.
        assert_eq!(got.len(), 2, "{what}: {got:?}");
        assert!(["old a", "new a"].contains(&got["a"].as_str()), "{what}: a = {:?}", got["a"]);
        // (A gzip stream cut in its trailer still delivered whole, verified files.)
        if what != "gzip cut short" {
            assert_eq!(got["b"], "old b", "{what}");
        }
        assert!(got["b"] == "old b" || got["b"].len() == 1000, "{what}: half a file");
        if what.ends_with("cut short") {
            if what == "cut short" {
                // a arrived complete before the cut: it is new.
                assert_eq!(got["a"], "new a", "{what}");
            }
            // The next round resumes: what landed is recorded, so no conflict.
            let mut parts: Vec<Vec<u8>> = Vec::new();
            if got["a"] != "new a" {
                parts.push(rec("a", a));
            }
            if got["b"] == "old b" {
                parts.push(rec("b", b));
            }
            let n = parts.len();
            parts.push(end(n));
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let t = Scripted::new(list.clone(), gz(&refs));
            let r = round(&t, &d, opts()).await.expect("resume");
            assert!(r.conflicts.is_empty(), "{r}");
            assert_eq!(r.fetched.len(), n, "{r}");
            let got = tree(&d.local);
            assert_eq!((got["a"].as_str(), got["b"].len()), ("new a", 1000));
        } else {
            assert_eq!(got["a"], "old a", "{what}");
        }
    }
    expect_tree(&d.outside, &[]);
}

#[tokio::test]
async fn syncback_never_writes_through_a_local_symlink() {
    let d = dirs();
    symlink(&d.outside, d.local.join("x")).expect("symlink");
    let passwd = b"root::0:0::/:/bin/sh\n";
    let t = Scripted::new(
        listing(vec![
            serde_json::json!({"path": "x", "type": "dir", "mode": 0o755}),
            file_entry("x/passwd", passwd, 0o644),
        ]),
        gz(&[&rec("x/passwd", passwd), &end(1)]),
    );
    let r = round(&t, &d, opts()).await.expect("round");
    assert_eq!(r.conflicts.len(), 1, "{r}");
    assert_eq!(r.conflicts[0].kind, ConflictKind::NotFromSyncback);
    assert!(t.gets.lock().expect("lock").is_empty());
    expect_tree(&d.outside, &[]);
    // --force replaces the link itself by a directory; the link's target is untouched.
    let r = round(&t, &d, Options { force: true, ..opts() }).await.expect("force");
    assert_eq!(r.fetched.len(), 1, "{r}");
    expect_tree(&d.outside, &[]);
    expect_tree(&d.local, &[("x/", ""), ("x/passwd", "root::0:0::/:/bin/sh\n")]);

    // Even a plan computed before a link appeared cannot write through it.
    let e = gohot::syncback::apply::real_dir(&d.local, Some(&gohot::wayin::RelPath::new("y/z").expect("p")), true);
    assert!(e.is_ok());
    std::fs::remove_dir_all(d.local.join("y")).expect("rm");
    symlink(&d.outside, d.local.join("y")).expect("symlink");
    let e = gohot::syncback::apply::real_dir(&d.local, Some(&gohot::wayin::RelPath::new("y/z").expect("p")), true);
    assert!(matches!(e, Err(SyncbackError::Unsafe { .. })), "{e:?}");
    expect_tree(&d.outside, &[]);
}

// ================================================= a real container

/// A container from a tar holding a static busybox and the helper, removed on drop.
struct Ctr {
    id: String,
    tag: String,
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
        let _ = Command::new("docker").args(["rmi", "-f", &self.tag]).output();
    }
}

impl Ctr {
    fn start() -> Option<Ctr> {
        let busybox = support::require_docker_and_busybox();
        let work = tempfile::tempdir().expect("tempdir");
        let rootfs = work.path().join("rootfs");
        for d in ["bin", "data", "var/run/gohot", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
        std::fs::copy(support::helper(), rootfs.join("var/run/gohot/helper")).expect("copy helper");
        let tag = format!("gohot-syncback-test:{}", std::process::id());
        let tar =
            Command::new("tar").args(["-C", rootfs.to_str().expect("utf8"), "-cf", "-", "."]).output().expect("tar");
        assert!(tar.status.success());
        let mut imp = Command::new("docker")
            .args(["import", "-", &tag])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker import");
        imp.stdin.take().expect("stdin").write_all(&tar.stdout).expect("feed tar");
        let out = imp.wait_with_output().expect("import");
        assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
        let name = format!("gohot-syncback-{}", std::process::id());
        let run = Command::new("docker")
            .args(["run", "-d", "--network", "none", "--name", &name, &tag, "/bin/busybox", "sleep", "600"])
            .output()
            .expect("docker run");
        assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
        Some(Ctr { id: name, tag })
    }

    /// Runs a busybox shell script in the container.
    fn sh(&self, script: &str) {
        let out = Command::new("docker")
            .args(["exec", &self.id, "/bin/busybox", "sh", "-c", &format!("export PATH=/bin; cd /data && {script}")])
            .output()
            .expect("docker exec");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn syncback_from_a_real_container() {
    let Some(c) = Ctr::start() else { return };
    c.sh("/bin/busybox --install -s /bin");
    let docker = gohot::docker::connect().await.expect("docker");
    let target = gohot::hosting::docker::ExistingContainer::new(docker, &c.id);
    let d = dirs();
    let state = d.state.clone();
    let mut sb = Syncback::new(&target, "/data", &d.local, state.clone(), opts()).expect("syncback");
    let replica = sb.replica().await.expect("replica");

    // Create: files, a subdirectory, an executable, links inside and outside, an excluded log.
    c.sh("mkdir -p sub && echo hello > a.txt && head -c 100000 /dev/urandom > sub/big.bin \
         && printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh \
         && ln -s a.txt link && ln -s /etc/passwd evil && ln -s ../../etc up && echo noise > x.log");
    let r = sb.round(&replica).await.expect("round 1");
    assert_eq!(r.fetched.len(), 4, "{r}");
    assert!(r.wire_bytes > 100_000 && r.wire_bytes < 110_000, "random data does not compress: {}", r.wire_bytes);
    let refused: Vec<&str> = r.refused.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(refused, ["evil", "up"], "{r}");
    let big = std::fs::read(d.local.join("sub/big.bin")).expect("big");
    assert_eq!(big.len(), 100_000);
    assert_eq!(std::fs::metadata(d.local.join("run.sh")).expect("meta").permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::read_link(d.local.join("link")).expect("link"), Path::new("a.txt"));
    assert!(!d.local.join("evil").exists() && std::fs::symlink_metadata(d.local.join("evil")).is_err());
    assert!(sb.is_own_write(&d.local.join("a.txt")));

    // Nothing changed: nothing travels.
    let r = sb.round(&replica).await.expect("round 2");
    assert_eq!((r.fetched.len(), r.wire_bytes), (0, 0), "{r}");

    // Modify, rename, create, delete — without --delete: the rename is a local copy.
    c.sh("echo changed > a.txt && mv sub/big.bin sub/moved.bin && echo new > new.txt && rm run.sh");
    let r = sb.round(&replica).await.expect("round 3");
    let fetched: Vec<&str> = r.fetched.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(fetched, ["a.txt", "new.txt"], "{r}");
    assert_eq!(r.copied.len(), 1, "{r}");
    assert!(r.deleted.is_empty());
    assert!(d.local.join("run.sh").exists() && d.local.join("sub/big.bin").exists());
    assert_eq!(std::fs::read(d.local.join("sub/moved.bin")).expect("moved"), big);
    assert_eq!(std::fs::read_to_string(d.local.join("a.txt")).expect("a"), "changed\n");

    // With --delete: a rename is a local move, deletions happen, content is not re-sent.
    c.sh("mv sub/moved.bin renamed.bin");
    let mut sbd = Syncback::new(&target, "/data", &d.local, state.clone(), Options { delete: true, ..opts() })
        .expect("syncback --delete");
    let r = sbd.round(&replica).await.expect("round 4");
    assert!(r.fetched.is_empty(), "{r}");
    assert_eq!(r.wire_bytes, 0, "{r}");
    assert_eq!(r.renamed.len(), 1, "{r}");
    assert_eq!(r.renamed[0].1.as_str(), "renamed.bin");
    // One of the two local copies (sub/big.bin, sub/moved.bin) moved, the other was deleted.
    let deleted: Vec<&str> = r.deleted.iter().map(|p| p.as_str()).collect();
    assert_eq!(deleted.len(), 2, "{r}");
    assert!(deleted.contains(&"run.sh"), "{r}");
    assert_eq!(std::fs::read(d.local.join("renamed.bin")).expect("renamed"), big);
    assert!(!d.local.join("sub/moved.bin").exists() && !d.local.join("sub/big.bin").exists());
    assert!(d.local.join("sub").is_dir(), "the container still has sub/");

    // Conflicts: changed on both sides → kept, reported; --force overwrites.
    std::fs::write(d.local.join("a.txt"), "my local edit\n").expect("edit");
    std::fs::write(d.local.join("new.txt"), "only local edit\n").expect("edit");
    c.sh("echo remote edit > a.txt");
    let r = sbd.round(&replica).await.expect("round 5");
    assert_eq!(r.conflicts.len(), 1, "{r}");
    assert_eq!(r.conflicts[0].path.as_str(), "a.txt");
    assert_eq!(r.kept_local.len(), 1, "new.txt changed only locally: kept, no conflict: {r}");
    assert!(r.to_string().contains("1 conflict: a.txt (local changes; --force to overwrite)"), "{r}");
    assert_eq!(std::fs::read_to_string(d.local.join("a.txt")).expect("a"), "my local edit\n");
    let mut forced = Syncback::new(&target, "/data", &d.local, state.clone(), Options { force: true, ..opts() })
        .expect("syncback --force");
    let r = forced.round(&replica).await.expect("round 6");
    assert!(r.conflicts.is_empty(), "{r}");
    assert_eq!(std::fs::read_to_string(d.local.join("a.txt")).expect("a"), "remote edit\n");
    assert_eq!(std::fs::read_to_string(d.local.join("new.txt")).expect("new"), "new\n");

    // Excludes (gitignore syntax): the log is never fetched.
    let mut ex = Syncback::new(
        &target,
        "/data",
        &d.local,
        state.clone(),
        Options { excludes: vec!["*.log".into(), "/sub/".into()], ..opts() },
    )
    .expect("syncback --exclude");
    c.sh("echo more > y.log && echo s > sub/s.txt");
    let r = ex.round(&replica).await.expect("round 7");
    assert!(r.fetched.is_empty(), "{r}");
    assert!(!d.local.join("y.log").exists());
    // (x.log was fetched by the first round, which had no excludes.)

    // --watch picks up a change; what it wrote is known to the dev loop.
    let mut w = Syncback::new(&target, "/data", &d.local, state.clone(), opts()).expect("watch");
    assert!(w.watch_tick().await.expect("tick").is_some(), "the first tick always syncs");
    assert!(w.watch_tick().await.expect("tick").is_none(), "no change, no round");
    c.sh("echo watched > w.txt");
    let r = w.watch_tick().await.expect("tick").expect("a change");
    assert_eq!(r.fetched.len(), 1, "{r}");
    let wrote = d.local.join("w.txt");
    assert!(w.written().contains(&wrote));
    assert!(w.is_own_write(&wrote));
    std::fs::write(&wrote, "user edit").expect("edit");
    assert!(!w.is_own_write(&wrote), "a later user edit is not syncback's");
}

#[test]
fn syncback_cli_dry_run_and_conflicts() {
    let Some(c) = Ctr::start() else { return };
    c.sh("/bin/busybox --install -s /bin");
    let sandbox = Sandbox::new();
    let local = sandbox.path().join("out");
    c.sh("echo one > f.txt && mkdir d && echo two > d/g.txt");
    let source = format!("{}:/data", c.id);
    let run = |extra: &[&str]| {
        let mut cmd = sandbox.gohot(sandbox.path());
        cmd.arg("syncback").arg(&source).arg(&local).args(extra);
        crate::util::run(&mut cmd)
    };
    // --dry-run changes nothing (not even creating LOCAL_DIR) and says what it would do.
    let out = run(&["--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dry run") && err.contains("fetch   d/g.txt"), "{err}");
    assert!(!local.exists());
    // A real run.
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 fetched"), "{err}");
    expect_tree(&local, &[("d/", ""), ("d/g.txt", "two\n"), ("f.txt", "one\n")]);
    // Dry run again after a remote change: still nothing changes.
    c.sh("echo three > f.txt && rm d/g.txt");
    let out = run(&["--dry-run", "--delete"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("delete  d/g.txt"), "{err}");
    expect_tree(&local, &[("d/", ""), ("d/g.txt", "two\n"), ("f.txt", "one\n")]);
    // A conflict: exit 1, local edit kept, named in the report.
    std::fs::write(local.join("f.txt"), "mine\n").expect("edit");
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("1 conflict: f.txt (local changes; --force to overwrite)"), "{err}");
    assert_eq!(std::fs::read_to_string(local.join("f.txt")).expect("f"), "mine\n");
    // .gohotignore in LOCAL_DIR excludes too, and is itself never deleted.
    std::fs::write(local.join(".gohotignore"), "# generated\n/d/\n").expect("ignore file");
    c.sh("echo again > d/h.txt");
    let out = run(&["--delete", "--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    expect_tree(
        &local,
        &[(".gohotignore", "# generated\n/d/\n"), ("d/", ""), ("d/g.txt", "two\n"), ("f.txt", "three\n")],
    );
    // A bad interval is a usage error.
    assert_eq!(run(&["--interval", "soon"]).status.code(), Some(2));
    // Bad sources are errors with a hint.
    let mut cmd = sandbox.gohot(sandbox.path());
    let out = crate::util::run(cmd.args(["syncback", "no-dir-here", "x"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TARGET:REMOTE_DIR"));
}

// ===================================== the local tree is never hurt

/// A local edit saved while a round runs (after the scan, before the
/// write) is kept: a file about to be replaced, one about to be deleted
/// and one about to be created are each a conflict, left alone.
#[tokio::test]
async fn syncback_keeps_a_local_edit_made_while_the_round_runs() {
    let d = dirs();
    // Round 1: a, gone and other synced back.
    let first = Scripted::new(
        listing(vec![
            file_entry("a", b"a1", 0o644),
            file_entry("gone", b"g", 0o644),
            file_entry("other", b"o1", 0o644),
        ]),
        gz(&[&rec("a", b"a1"), &rec("gone", b"g"), &rec("other", b"o1"), &end(3)]),
    );
    round(&first, &d, opts()).await.expect("round 1");
    // Round 2: the container changed a and other, dropped gone, made new;
    // while the files are being fetched, the developer saves a, gone and new.
    let mut t = Scripted::new(
        listing(vec![file_entry("a", b"a2", 0o644), file_entry("new", b"n", 0o644), file_entry("other", b"o2", 0o644)]),
        gz(&[&rec("a", b"a2"), &rec("new", b"n"), &rec("other", b"o2"), &end(3)]),
    );
    let local = d.local.clone();
    t.on_get = Some(Box::new(move || {
        std::fs::write(local.join("a"), "saved mid-round").expect("edit a");
        std::fs::write(local.join("gone"), "saved mid-round").expect("edit gone");
        std::fs::write(local.join("new"), "made mid-round").expect("make new");
    }));
    let r = round(&t, &d, Options { delete: true, ..opts() }).await.expect("round 2");
    let mut c: Vec<(&str, ConflictKind)> = r.conflicts.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    c.sort_by_key(|(p, _)| *p);
    assert_eq!(
        c,
        [
            ("a", ConflictKind::ChangedDuringRound),
            ("gone", ConflictKind::ChangedDuringRound),
            ("new", ConflictKind::ChangedDuringRound)
        ],
        "{r}"
    );
    assert!(r.to_string().contains("changed locally while syncback ran"), "{r}");
    expect_tree(
        &d.local,
        &[("a", "saved mid-round"), ("gone", "saved mid-round"), ("new", "made mid-round"), ("other", "o2")],
    );
    // The next round sees the edits as local changes: still kept.
    let again = Scripted::new(
        listing(vec![file_entry("a", b"a2", 0o644), file_entry("new", b"n", 0o644), file_entry("other", b"o2", 0o644)]),
        gz(&[&end(0)]),
    );
    let r = round(&again, &d, Options { delete: true, ..opts() }).await.expect("round 3");
    assert_eq!(r.conflicts.len(), 3, "{r}");
    expect_tree(
        &d.local,
        &[("a", "saved mid-round"), ("gone", "saved mid-round"), ("new", "made mid-round"), ("other", "o2")],
    );
}

/// `--delete` removes only directories syncback created, never one the
/// developer made (even empty), and a local repository is never touched.
#[tokio::test]
async fn syncback_delete_removes_only_directories_it_created() {
    let d = dirs();
    std::fs::create_dir_all(d.local.join("mine/empty")).expect("mkdir");
    std::fs::create_dir_all(d.local.join(".git/hooks")).expect("mkdir");
    std::fs::write(d.local.join(".git/config"), "[core]\n").expect("git config");
    let dir = |p: &str| serde_json::json!({"path": p, "type": "dir", "mode": 0o755});
    let t = Scripted::new(
        listing(vec![dir("made"), dir("made/deep"), file_entry("made/deep/f", b"f", 0o644)]),
        gz(&[&rec("made/deep/f", b"f"), &end(1)]),
    );
    round(&t, &d, Options { delete: true, ..opts() }).await.expect("round 1");
    // The container drops everything: what syncback made goes, the rest stays.
    let t = Scripted::new(listing(vec![]), gz(&[&end(0)]));
    let r = round(&t, &d, Options { delete: true, force: true, ..opts() }).await.expect("round 2");
    let mut removed: Vec<&str> = r.dirs_removed.iter().map(|p| p.as_str()).collect();
    removed.sort();
    assert_eq!(removed, ["made", "made/deep"], "{r}");
    expect_tree(
        &d.local,
        &[(".git/", ""), (".git/config", "[core]\n"), (".git/hooks/", ""), ("mine/", ""), ("mine/empty/", "")],
    );
}

/// A target whose listing never ends (a lying helper): the listing stops at
/// its cap with a clear error, memory bounded, and nothing is written.
struct Endless(&'static str, &'static str);

#[async_trait::async_trait]
impl Target for Endless {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        Ok(vec![Replica { name: "liar".into(), instance: "1".into(), handle: "liar".into() }])
    }
    async fn exec(&self, _: &Replica, _: &[String], _: Bytes) -> Result<ExecOutput, TargetError> {
        unreachable!("syncback streams its execs")
    }
    async fn exec_stream(&self, _: &Replica, _: &[String], _: Bytes) -> Result<ExecStream, TargetError> {
        let (start, repeat) = (self.0.as_bytes().to_vec(), self.1.as_bytes().to_vec());
        let chunks = futures::stream::iter(std::iter::once(start).chain(std::iter::repeat(repeat)))
            .map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
        Ok(ExecStream {
            stdout: Box::pin(tokio_util::io::StreamReader::new(chunks)),
            stderr: Default::default(),
            keep: Box::new(()),
        })
    }
}

#[tokio::test]
async fn syncback_refuses_an_endless_or_oversized_listing_at_its_cap() {
    let d = dirs();
    let limits = ListLimits { max_entries: 1000, max_bytes: 1 << 20 };
    for (what, target) in [
        ("endless entries", Endless(r#"{"root":"/d","entries":["#, r#"{"path":"x","type":"dir"},"#)),
        ("endless string", Endless(r#"{"root":""#, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
        ("endless whitespace", Endless(r#"{"root":"/d","entries":[]}"#, "                    ")),
        ("endless unknown field", Endless(r#"{"root":"/d","x":["#, "1,")),
    ] {
        let err = round(&target, &d, Options { list_limits: limits, ..opts() }).await.expect_err(what);
        let SyncbackError::Helper { what: "list", source, .. } = &err else { panic!("{what}: {err}") };
        assert!(matches!(**source, WayInError::TooLarge { .. }), "{what}: {err}");
        assert!(err.to_string().contains("over the limit"), "{what}: {err}");
    }
    // Unique entries past the count cap.
    let many: Vec<serde_json::Value> =
        (0..1001).map(|i| serde_json::json!({"path": format!("d{i}"), "type": "dir"})).collect();
    let t = Scripted::new(listing(many), gz(&[&end(0)]));
    let err = round(&t, &d, Options { list_limits: limits, ..opts() }).await.expect_err("too many");
    assert!(err.to_string().contains("entries") && err.to_string().contains("over the limit of 1000"), "{err}");
    expect_tree(&d.local, &[]);
}

/// One odd name in a listing (a backslash, a control character, longer
/// than a path may be) is skipped and reported by itself; the rest syncs.
#[tokio::test]
async fn syncback_skips_an_odd_name_by_itself() {
    let d = dirs();
    let t = Scripted::new(
        listing(vec![
            file_entry("back\\slash", b"x", 0o644),
            file_entry("new\nline", b"x", 0o644),
            file_entry("tab\there", b"x", 0o644),
            file_entry(&format!("{}x", "long/".repeat(900)), b"x", 0o644),
            file_entry("fine", b"fine", 0o644),
        ]),
        gz(&[&rec("fine", b"fine"), &end(1)]),
    );
    let r = round(&t, &d, opts()).await.expect("round");
    assert_eq!(r.fetched.len(), 1, "{r}");
    assert_eq!(r.refused.len(), 4, "{r}");
    assert!(r.refused.iter().any(|x| x.path.contains("back\\\\slash") && x.reason.contains("backslash")), "{r}");
    assert!(r.refused.iter().any(|x| x.path.contains("new\\nline") && x.reason.contains("control")), "{r}");
    expect_tree(&d.local, &[("fine", "fine")]);
}

/// A container's VCS metadata never lands in the local tree — not its git
/// hooks, not its `.git/config`, with `--force` and `--delete` or without —
/// and the local repository's own metadata is neither replaced nor deleted.
#[tokio::test]
async fn syncback_never_brings_back_vcs_metadata() {
    let Some(c) = Ctr::start() else { return };
    c.sh("/bin/busybox --install -s /bin");
    c.sh("mkdir -p .git/hooks sub/.hg .jj/repo .svn && printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit \
         && chmod 755 .git/hooks/pre-commit && echo '[core] hooksPath = /tmp' > .git/config && echo x > sub/.hg/hgrc \
         && echo x > .jj/repo/store && echo x > .svn/entries && echo gitdir: /etc > sub/.git && echo kept > main.go");
    let docker = gohot::docker::connect().await.expect("docker");
    let target = gohot::hosting::docker::ExistingContainer::new(docker, &c.id);
    let d = dirs();
    std::fs::create_dir_all(d.local.join(".git")).expect("mkdir");
    std::fs::write(d.local.join(".git/config"), "mine\n").expect("write");
    for o in [opts(), Options { force: true, delete: true, ..opts() }] {
        let mut sb = Syncback::new(&target, "/data", &d.local, d.state.clone(), o).expect("syncback");
        let replica = sb.replica().await.expect("replica");
        let r = sb.round(&replica).await.expect("round");
        assert!(r.conflicts.is_empty(), "{r}");
        expect_tree(&d.local, &[(".git/", ""), (".git/config", "mine\n"), ("main.go", "kept\n"), ("sub/", "")]);
    }
}

/// One odd name in a real container — a backslash, a tab, a newline — is
/// skipped and reported by itself, and names of 238 bytes and more (too long
/// for a temporary name built from them before) sync like any other.
#[tokio::test]
async fn syncback_skips_odd_names_in_a_real_container_and_syncs_the_rest() {
    let Some(c) = Ctr::start() else { return };
    c.sh("/bin/busybox --install -s /bin");
    let long238 = "l".repeat(238);
    let long245 = "m".repeat(245);
    c.sh(&format!(
        "echo b > 'back\\slash' && printf t > \"$(printf 'tab\\there')\" && printf n > \"$(printf 'new\\nline')\" \
         && echo 238 > {long238} && mkdir {long245} && echo 255 > {long245}/{long245} && echo fine > fine"
    ));
    let docker = gohot::docker::connect().await.expect("docker");
    let target = gohot::hosting::docker::ExistingContainer::new(docker, &c.id);
    let d = dirs();
    let mut sb = Syncback::new(&target, "/data", &d.local, d.state.clone(), opts()).expect("syncback");
    let replica = sb.replica().await.expect("replica");
    let r = sb.round(&replica).await.expect("round");
    assert_eq!(r.refused.len(), 3, "{r}");
    assert_eq!(r.fetched.len(), 3, "{r}");
    let got = tree(&d.local);
    assert_eq!(got.get("fine").map(String::as_str), Some("fine\n"));
    assert_eq!(got.get(&long238).map(String::as_str), Some("238\n"));
    assert_eq!(got.get(&format!("{long245}/{long245}")).map(String::as_str), Some("255\n"));
    // The next round has nothing to do but report the same refusals.
    let r = sb.round(&replica).await.expect("round 2");
    assert_eq!((r.fetched.len(), r.refused.len()), (0, 3), "{r}");
}

/// gohot's memory does not grow with the tree: a container holding a
/// gigabyte of sparse file and 256 MB of random data (which a collected
/// exec output would hold whole) is synced back by `gohot syncback` with a
/// peak resident memory under 100 MB, measured by `/usr/bin/time`.
#[test]
fn syncback_memory_stays_bounded_whatever_the_trees_size() {
    let Some(c) = Ctr::start() else { return };
    c.sh("/bin/busybox --install -s /bin");
    c.sh("mkdir big && truncate -s 1G big/sparse && head -c 256000000 /dev/urandom > big/random && echo s > small");
    let sandbox = Sandbox::new();
    let local = sandbox.path().join("out");
    let mut cmd = Command::new("/usr/bin/time");
    let gohot = sandbox.gohot(sandbox.path());
    cmd.current_dir(sandbox.path()).arg("-f").arg("maxrss_kib=%M").arg(gohot.get_program());
    for (k, v) in gohot.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.arg("syncback").arg(format!("{}:/data", c.id)).arg(&local);
    let out = crate::util::run(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 fetched"), "{err}");
    assert_eq!(std::fs::metadata(local.join("big/sparse")).expect("sparse").len(), 1 << 30);
    assert_eq!(std::fs::metadata(local.join("big/random")).expect("random").len(), 256_000_000);
    let kib: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no max RSS in {err}"));
    assert!(kib < 100 * 1024, "gohot syncback peaked at {} MiB", kib / 1024);
}
