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
use gohot::hosting::{ExecOutput, Replica, Target, TargetError};
use gohot::syncback::plan::ConflictKind;
use gohot::syncback::{Options, Report, Syncback, SyncbackError};

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
}

impl Scripted {
    fn new(listing: Vec<u8>, stream: Vec<u8>) -> Self {
        Scripted { listing, stream, gets: Mutex::new(Vec::new()) }
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
