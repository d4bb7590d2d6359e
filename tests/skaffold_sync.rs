//! Skaffold's and Tilt's own file sync against gohot dev images on the real
//! Docker engine (issue 15): no Skaffold or Tilt binary runs here, so their
//! command lines, environment and tar streams are reproduced from their
//! source —
//!
//! * Skaffold `pkg/skaffold/sync/docker.go`: `docker exec -i NAME tar xmf -
//!   -C / --no-same-owner` fed by `util.CreateMappedTar` (one header per
//!   file from `tar.FileInfoHeader(Lstat(src))` — the local mode, uid, gid,
//!   mtime — named by the absolute container path), and `docker exec -i NAME
//!   rm -rf -- PATHS`;
//! * Tilt `internal/containerupdate`: `tar -C / -x -f -` with stdin (the
//!   `ArchiveBuilder` stream: relative names, the synced directory first,
//!   uid/gid cleared) and `rm -rf PATHS`.
//!
//! The dev image's `tar` and `rm` are the way-in helper: each file lands
//! atomically, hostile streams write nothing. The cluster side (the same
//! command lines through `kubectl exec` and the exec API, and `gohot
//! skaffold sync` as Skaffold's sync hook) is in `tests/kube.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::dev::watchexec;
use crate::util::*;

/// Skaffold's `util.CreateMappedTar(ctx, w, "/", files)`: for each local
/// file and container path, a header from the local file's metadata (Go's
/// `tar.FileInfoHeader`: mode, uid, gid, mtime, size; USTAR), named by the
/// absolute container path, then the content; two zero blocks at the end
/// (Go's `tar.Writer.Close`).
pub fn skaffold_mapped_tar(files: &[(&Path, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (src, dst) in files {
        let meta = std::fs::symlink_metadata(src).expect("lstat");
        let mut h = tar::Header::new_ustar();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        // tar-rs refuses absolute names; Go's writer takes them, and
        // Skaffold's are absolute ("/ko-app/hello").
        let name = &mut h.as_ustar_mut().expect("ustar").name;
        assert!(dst.len() < name.len(), "{dst}: Go would switch to PAX");
        name.fill(0);
        name[..dst.len()].copy_from_slice(dst.as_bytes());
        h.set_cksum();
        b.append(&h, std::fs::File::open(src).expect("open")).expect("append");
    }
    b.into_inner().expect("finish")
}

/// Tilt's `ArchiveBuilder` for one path mapping (`entriesForPath`): a walk
/// of `local` in lexical order, the directory itself first; names are the
/// container path without its leading `/` joined with the relative path;
/// uid and gid cleared; mode and mtime from the local file.
pub fn tilt_tar(local: &Path, container: &str) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        out.push(dir.to_path_buf());
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                walk(&e, out);
            } else {
                out.push(e);
            }
        }
    }
    let mut paths = Vec::new();
    walk(local, &mut paths);
    let base = container.trim_start_matches('/');
    let mut b = tar::Builder::new(Vec::new());
    for p in paths {
        let meta = std::fs::symlink_metadata(&p).expect("lstat");
        let mut h = tar::Header::new_ustar();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(0);
        h.set_gid(0);
        let rel = p.strip_prefix(local).expect("under local");
        let name = if rel.as_os_str().is_empty() { PathBuf::from(base) } else { Path::new(base).join(rel) };
        h.set_path(&name).expect("path");
        h.set_cksum();
        if meta.is_dir() {
            b.append(&h, std::io::empty()).expect("append");
        } else {
            b.append(&h, std::fs::File::open(&p).expect("open")).expect("append");
        }
    }
    b.into_inner().expect("finish")
}

/// `cmd` with `stdin` fed to it.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The far side may refuse early (a hostile stream) and close.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// A Go file that makes the app log the sha256 of the binary it runs.
pub const SELFHASH_GO: &str = "package main\n\nimport (\n\t\"crypto/sha256\"\n\t\"log\"\n\t\"os\"\n)\n\nfunc init() {\n\tb, err := os.ReadFile(\"/proc/self/exe\")\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tlog.Printf(\"START %x\", sha256.Sum256(b))\n}\n";

/// A dev image of the hello example (with [`SELFHASH_GO`]) running under
/// watchexec as the default base's non-root user, as `gohot resolve --dev`
/// writes the command. Removed on drop.
struct DevContainer {
    name: String,
    app: PathBuf,
    _container: Container,
    _image: DockerImage,
}

impl DevContainer {
    fn start(sb: &Sandbox, tag: &str) -> Self {
        let app = sb.copy_example("hello", "hello");
        std::fs::write(app.join("selfhash.go"), SELFHASH_GO).expect("selfhash.go");
        let image = ok(sb
            .gohot(&app)
            .args(["build", "--dev", "-B", "--repo", &format!("ko.local/gohot-test-{tag}"), "--watchexec"])
            .arg(watchexec())
            .arg("."))
        .trim()
        .to_string();
        let image = DockerImage(image);
        let name = format!("gohot-test-{tag}-{}", std::process::id());
        let command = gohot::resolve::devrewrite::dev_command("hello", &["/ko-app/hello".to_string()]);
        ok(Command::new("docker")
            .args(["run", "-d", "--user", "65532", "--network", "none", "--name", &name, "--entrypoint", &command[0]])
            .arg(&image.0)
            .args(&command[1..]));
        let c = DevContainer { name: name.clone(), app, _container: Container(name), _image: image };
        c.wait_start_of(None);
        c
    }

    fn logs(&self) -> String {
        let logs = run(Command::new("docker").args(["logs", &self.name]));
        format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr))
    }

    /// Waits for a start line (of the binary with this sha256, if given).
    fn wait_start_of(&self, sha: Option<&str>) {
        wait_for(&format!("a start of {sha:?}"), Duration::from_secs(60), || {
            let logs = self.logs();
            match sha {
                Some(s) => logs.contains(&format!("START {s}")).then_some(()),
                None => logs.contains("START ").then_some(()),
            }
        })
    }

    /// `docker exec [-i] NAME ARGV…` with `stdin`.
    fn exec(&self, interactive: bool, argv: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.arg("exec");
        if interactive {
            cmd.arg("-i");
        }
        cmd.arg(&self.name).args(argv);
        run_with_stdin(&mut cmd, stdin)
    }

    /// The helper's listing of `dir` in the container: path → (type, mode, sha256).
    fn listing(&self, dir: &str) -> Vec<(String, String, u64, String)> {
        let out = self.exec(false, &["/var/run/gohot/helper", "list", dir], b"");
        assert!(out.status.success(), "list {dir}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("listing json");
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().unwrap_or_default().to_string(),
                    e["type"].as_str().unwrap_or_default().to_string(),
                    e["mode"].as_u64().unwrap_or_default(),
                    e["sha256"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn sha_of(&self, path: &str) -> Option<String> {
        let out = self.exec(false, &["/var/run/gohot/helper", "hash", path], b"");
        match gohot::wayin::parse_hash_status(&out.stdout).expect("hash status") {
            gohot::wayin::RemoteFile::Present { sha256, .. } => Some(sha256),
            gohot::wayin::RemoteFile::Missing => None,
        }
    }
}

const SKAFFOLD_TAR: &[&str] = &["tar", "xmf", "-", "-C", "/", "--no-same-owner"];
const TILT_TAR: &[&str] = &["tar", "-C", "/", "-x", "-f", "-"];

/// Skaffold's and Tilt's copy and delete, exactly as they run them, on a
/// dev image of gohot's default (shell-less, tar-less) base as uid 65532:
/// the binary is replaced and watchexec restarts the app on it, kodata files
/// arrive with their modes, Go sources sent to the discard directory vanish,
/// deletions apply, hostile streams change nothing, and unsupported uses say
/// what is supported. The production image has none of it.
#[test]
fn skaffold_and_tilt_sync_into_a_shell_less_dev_image() {
    let sb = Sandbox::new();
    let c = DevContainer::start(&sb, "tarsync");
    let bin = sb.build_greeting(&c.app, "synced-by-skaffold");
    let bin_sha = sha256(&std::fs::read(&bin).expect("bin"));
    let page = sb.path().join("page.html");
    std::fs::write(&page, "<p>from skaffold</p>").expect("page");
    std::fs::set_permissions(&page, std::os::unix::fs::PermissionsExt::from_mode(0o640)).expect("chmod");
    let main_go = c.app.join("main.go");

    // Skaffold: copy (its docker.go command line and CreateMappedTar stream).
    let stream = skaffold_mapped_tar(&[
        (&bin, "/ko-app/hello"),
        (&page, "/var/run/ko/static/page.html"),
        (&main_go, "/var/run/gohot/discard/main.go"),
    ]);
    let out = c.exec(true, SKAFFOLD_TAR, &stream);
    assert!(out.status.success(), "skaffold's tar: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.sha_of("/ko-app/hello").as_deref(), Some(bin_sha.as_str()));
    c.wait_start_of(Some(&bin_sha));
    let ko = c.listing("/var/run/ko");
    let page_entry = ko.iter().find(|e| e.0 == "static/page.html").expect("page synced");
    assert_eq!((page_entry.2, page_entry.3.as_str()), (0o640, sha256(b"<p>from skaffold</p>").as_str()));
    assert!(c.listing("/ko-app").iter().all(|e| !e.0.contains(".gohot-")), "no temporary file left");
    assert!(c.listing("/var/run/gohot").iter().all(|e| !e.0.starts_with("discard")), "Go sources are dropped");

    // Tilt: a directory synced with its archive and command line.
    let local = sb.path().join("tiltdir");
    std::fs::create_dir_all(local.join("sub")).expect("mkdir");
    std::fs::write(local.join("a.txt"), "A").expect("a");
    std::fs::write(local.join("sub/b.txt"), "B").expect("b");
    let out = c.exec(true, TILT_TAR, &tilt_tar(&local, "/var/run/ko/tilt"));
    assert!(out.status.success(), "tilt's tar: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.sha_of("/var/run/ko/tilt/sub/b.txt"), Some(sha256(b"B")));

    // Deletions: Skaffold's `rm -rf -- PATHS`, Tilt's `rm -rf PATHS`.
    let out = c.exec(true, &["rm", "-rf", "--", "/var/run/ko/static/page.html", "/var/run/gohot/discard/main.go"], b"");
    assert!(out.status.success(), "skaffold's rm: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.sha_of("/var/run/ko/static/page.html"), None);
    let out = c.exec(false, &["rm", "-rf", "/var/run/ko/tilt"], b"");
    assert!(out.status.success(), "tilt's rm: {}", String::from_utf8_lossy(&out.stderr));
    assert!(c.listing("/var/run/ko").iter().all(|e| !e.0.starts_with("tilt")), "tilt's directory removed");

    // Hostile streams: refused whole, exit 2 (GNU tar's), nothing written.
    let before = (c.listing("/var/run/ko"), c.listing("/ko-app"));
    let ok_file = sb.path().join("ok.txt");
    std::fs::write(&ok_file, "fine").expect("ok");
    let evil = sb.path().join("evil");
    std::fs::write(&evil, "evil").expect("evil");
    let mut through_link = tar::Builder::new(Vec::new());
    for (name, typ, target, body) in [
        ("var/run/ko/ok.txt", tar::EntryType::Regular, "", "fine"),
        ("var/run/ko/l", tar::EntryType::Symlink, "/ko-app", ""),
        ("var/run/ko/l/hello", tar::EntryType::Regular, "", "evil"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(typ);
        h.set_mode(0o755);
        h.set_size(body.len() as u64);
        h.set_path(name).expect("path");
        if !target.is_empty() {
            h.set_link_name(target).expect("link");
        }
        h.set_cksum();
        through_link.append(&h, body.as_bytes()).expect("append");
    }
    for (what, stream) in [
        (
            "dot-dot",
            skaffold_mapped_tar(&[(&ok_file, "/var/run/ko/ok.txt"), (&evil, "/var/run/ko/../../../ko-app/hello")]),
        ),
        ("through its own symlink", through_link.into_inner().expect("finish")),
        (
            "truncated",
            skaffold_mapped_tar(&[(&ok_file, "/var/run/ko/ok.txt"), (&bin, "/ko-app/hello")])[..4096].to_vec(),
        ),
    ] {
        let out = c.exec(true, SKAFFOLD_TAR, &stream);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.starts_with("tar: "), "{what}: {stderr}");
        assert_eq!((c.listing("/var/run/ko"), c.listing("/ko-app")), before, "{what} changed the container");
    }

    // What is not supported says what is.
    let out = c.exec(false, &["tar", "czf", "-", "/ko-app"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tar xmf - -C / --no-same-owner"), "{out:?}");
    let out = c.exec(false, &["rm", "-i", "/ko-app/hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(c.sha_of("/ko-app/hello").as_deref(), Some(bin_sha.as_str()));
    assert!(!c.logs().to_lowercase().contains("text file busy"));

    // The production image of the same package carries none of it.
    let prod = ok(sb.gohot(&c.app).args(["build", "-B", "--repo", "ko.local/gohot-test-tarsync-prod", "."]))
        .trim()
        .to_string();
    let _prod = DockerImage(prod.clone());
    let id = ok(Command::new("docker").args(["create", &prod])).trim().to_string();
    let _created = Container(id.clone());
    let export = run(Command::new("docker").args(["export", &id]));
    let mut names = Vec::new();
    for e in tar::Archive::new(export.stdout.as_slice()).entries().expect("entries") {
        names.push(e.expect("entry").path().expect("path").display().to_string());
    }
    assert!(names.iter().any(|n| n.starts_with("ko-app/hello")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("var/run/gohot") || n.ends_with("bin/tar")), "{names:?}");
}

/// The way in under load, through `tar`: 100 binaries written with
/// Skaffold's command line and stream into a running dev container, as fast
/// as they go, while watchexec restarts the app on each it sees; every
/// process that starts must run a complete binary (one of the versions).
#[test]
fn hundred_tar_writes_under_watchexec_never_start_a_partial_binary() {
    let sb = Sandbox::new();
    let c = DevContainer::start(&sb, "tar100");
    let versions: Vec<PathBuf> = ["a", "b", "last"].iter().map(|g| sb.build_greeting(&c.app, g)).collect();
    let hashes: Vec<String> = versions.iter().map(|v| sha256(&std::fs::read(v).expect("bin"))).collect();
    for i in 0..101 {
        let v = if i == 100 { &versions[2] } else { &versions[i % 2] };
        let out = c.exec(true, SKAFFOLD_TAR, &skaffold_mapped_tar(&[(v, "/ko-app/hello")]));
        assert!(out.status.success(), "write {i}: {}", String::from_utf8_lossy(&out.stderr));
    }
    c.wait_start_of(Some(&hashes[2]));
    let text = c.logs();
    let starts: Vec<&str> = text.lines().filter_map(|l| l.split("START ").nth(1)).collect();
    assert!(starts.len() > 2, "watchexec restarted the app: {text}");
    for s in &starts[1..] {
        assert!(hashes.iter().any(|h| h == s.trim()), "a start ran a binary that is none of the versions: {s}");
    }
    for bad in ["exec format error", "text file busy", "no such file"] {
        assert!(!text.to_lowercase().contains(bad), "{bad} in the logs:\n{text}");
    }
    assert!(c.listing("/ko-app").iter().all(|e| !e.0.contains(".gohot-")), "no temporary file left");
}
