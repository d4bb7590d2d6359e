//! The way in, for real: the helper built from the embedded source by the
//! real Go toolchain, run as a process and inside a real container on the
//! Docker engine, fed payloads made by the Rust encoder. The container test
//! needs the engine and a static busybox (`scripts/setup`) and fails without
//! them.

use crate::wayin_support as support;

use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flate2::read::GzDecoder;
use gohot::devimage::helper::build_helper;
use gohot::wayin::*;
use support::{Hello, Link};

/// Runs the helper with `args`, `stdin` fed from a thread (no pipe deadlock).
fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_cmd(Command::new(support::helper()).args(args), stdin)
}

fn run_cmd(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut pipe = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The helper may answer (and exit) before reading everything.
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread");
    out
}

fn put(dest: &Path, payload: &[u8]) -> (Output, Result<PutStatus, WayInError>) {
    let out = run(&["put", dest.to_str().expect("utf8"), "-mode", "0755"], payload);
    let status = parse_put_status(&out.stdout);
    (out, status)
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names in `dir` that look like the helper's temporary files.
fn temp_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".gohot-"))
        .collect()
}

#[test]
fn helper_builds_and_reports_its_version() {
    let out = run(&["version"], b"");
    assert!(out.status.success());
    let v = parse_version(&out.stdout).expect("version");
    assert_eq!(v.protocol, HELPER_PROTOCOL);
    assert_eq!(v.arch, "amd64");
    // A static binary: no program interpreter (it must run on an empty base).
    let bin = std::fs::read(support::helper()).expect("read helper");
    assert!(!bin.windows(12).any(|w| w == b"ld-linux-x86"), "helper is not static");
}

#[test]
fn helper_build_failure_carries_go_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = build_helper(&support::go(), "mips64/v9", &dir.path().join("h")).expect_err("bad arch");
    assert!(matches!(err, WayInError::UnsupportedArch(_)));
    let err = build_helper(Path::new("/nonexistent/go"), "amd64", &dir.path().join("h")).expect_err("no go");
    assert!(matches!(err, WayInError::GoNotRunnable { .. }), "{err}");
    // A failing `go build` (a stand-in that fails the way go does, since the
    // embedded source compiles): its stderr reaches the error.
    let fake = dir.path().join("go");
    std::fs::write(&fake, "#!/bin/sh\necho 'main.go:1:1: expected package' >&2\nexit 1\n").expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = build_helper(&fake, "arm64", &dir.path().join("h")).expect_err("failing go");
    match err {
        WayInError::HelperBuild { stderr, arch, .. } => {
            assert!(stderr.contains("expected package"));
            assert_eq!(arch, "arm64");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!dir.path().join("h").exists());
}

#[test]
fn helper_cross_builds_for_arm64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = build_helper(&support::go(), "arm64", &dir.path().join("helper")).expect("arm64 build");
    let bin = std::fs::read(&built.path).expect("read");
    // ELF, machine EM_AARCH64 (183)
    assert_eq!(&bin[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([bin[18], bin[19]]), 183);
    assert_eq!(std::fs::metadata(&built.path).expect("meta").permissions().mode() & 0o777, 0o755);
}

#[test]
fn put_full_then_delta_then_base_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("app");
    let v1 = noise(300_000, 1);
    let (out, st) = put(&dest, &encode_full(&v1));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(matches!(st, Ok(PutStatus::Written { kind: PayloadKind::Full, bytes: 300_000, .. })));
    assert_eq!(std::fs::read(&dest).expect("read"), v1);
    assert_eq!(std::fs::metadata(&dest).expect("meta").permissions().mode() & 0o7777, 0o755);

    let mut v2 = v1.clone();
    v2.splice(1000..1000, b"inserted".iter().copied());
    v2[200_000] ^= 1;
    let delta = encode_delta(&v1, &v2);
    assert!(delta.len() < 2000, "delta {} bytes", delta.len());
    let (out, st) = put(&dest, &delta);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let Ok(PutStatus::Written { kind, sha256, .. }) = st else { panic!("{st:?}") };
    assert_eq!(kind, PayloadKind::Delta);
    assert_eq!(std::fs::read(&dest).expect("read"), v2);

    // The same delta again: DEST is v2 now, not the delta's base.
    let (out, st) = put(&dest, &delta);
    assert_eq!(out.status.code(), Some(EXIT_BASE_MISMATCH));
    assert!(matches!(st, Ok(PutStatus::BaseMismatch { .. })), "{st:?}");
    assert_eq!(std::fs::read(&dest).expect("read"), v2);
    // A delta into a missing file is a base mismatch too.
    let (out, st) = put(&dir.path().join("missing"), &delta);
    assert_eq!(out.status.code(), Some(EXIT_BASE_MISMATCH));
    assert!(matches!(st, Ok(PutStatus::BaseMismatch { .. })));
    assert!(temp_leftovers(dir.path()).is_empty());

    // hash agrees with what put reported
    let out = run(&["hash", dest.to_str().expect("utf8")], b"");
    assert_eq!(parse_hash_status(&out.stdout).expect("hash"), RemoteFile::Present { sha256, size: v2.len() as u64 });
    let out = run(&["hash", dir.path().join("nope").to_str().expect("utf8")], b"");
    assert_eq!(parse_hash_status(&out.stdout).expect("hash"), RemoteFile::Missing);
}

#[test]
fn corrupt_payloads_leave_dest_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("app");
    let old = noise(200_000, 2);
    std::fs::write(&dest, &old).expect("write");
    let mut new = old.clone();
    new.truncate(150_000);
    new.extend_from_slice(&noise(20_000, 3));
    let delta = encode_delta(&old, &new);
    let full = encode_full(&new);
    let body = |p: &[u8]| p.iter().position(|&b| b == b'\n').expect("header") + 1;

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for (name, p) in [("delta", &delta), ("full", &full)] {
        let b = body(p);
        let mut flipped = p.clone();
        let mid = b + (p.len() - b) / 2;
        flipped[mid] ^= 0x55;
        cases.push((name, flipped));
        cases.push((name, p[..p.len() - 9].to_vec())); // truncated
        cases.push((name, p[..b].to_vec())); // header only
                                             // trailing data inside the announced body (what follows the body is
                                             // never read: stdin may stay open after a request)
        let header = String::from_utf8(p[..b].to_vec()).expect("header utf8");
        let n = p.len() - b;
        let longer = header.replace(&format!("\"body\":{n}"), &format!("\"body\":{}", n + 8));
        assert_ne!(longer, header, "the header announces its body");
        cases.push((name, [longer.as_bytes(), &p[b..], b"trailing"].concat()));
    }
    // header lies about the size or the content's check
    let b = body(&full);
    let header = String::from_utf8(full[..b].to_vec()).expect("header utf8");
    let wrong_size = header.replace(&format!("\"size\":{}", new.len()), &format!("\"size\":{}", new.len() - 1));
    cases.push(("size", [wrong_size.as_bytes(), &full[b..]].concat()));
    // (the crc32 is what the written file is checked against; the sha256 names it)
    let crc = header.split("\"crc32\":").nth(1).expect("crc32").split([',', '}']).next().expect("crc32 value");
    let wrong_crc =
        header.replace(&format!("\"crc32\":{crc}"), &format!("\"crc32\":{}", crc.parse::<u32>().expect("u32") ^ 1));
    cases.push(("crc32", [wrong_crc.as_bytes(), &full[b..]].concat()));
    cases.push(("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec()));
    cases.push(("empty", Vec::new()));
    cases.push(("long header", vec![b'{'; 10_000]));

    for (i, (name, payload)) in cases.iter().enumerate() {
        let (out, st) = put(&dest, payload);
        assert_eq!(out.status.code(), Some(1), "case {i} ({name}) exit {:?}", out.status);
        match st {
            Err(WayInError::HelperFailed { code, .. }) => {
                assert!(["bad-payload", "hash-mismatch"].contains(&code.as_str()), "case {i}: {code}")
            }
            other => panic!("case {i} ({name}): {other:?}"),
        }
        assert!(!out.stderr.is_empty());
        assert_eq!(std::fs::read(&dest).expect("read"), old, "case {i} ({name}) touched DEST");
        assert!(temp_leftovers(dir.path()).is_empty(), "case {i} left a temp file");
    }

    // The size cap refuses before writing anything.
    let out = run(&["put", dest.to_str().expect("utf8"), "-max-size", "1000"], &full);
    assert!(matches!(parse_put_status(&out.stdout), Err(WayInError::HelperFailed { code, .. }) if code == "too-large"));
    assert_eq!(std::fs::read(&dest).expect("read"), old);
    // Usage errors exit 2.
    assert_eq!(run(&["put"], b"").status.code(), Some(2));
    assert_eq!(run(&["frobnicate"], b"").status.code(), Some(2));
}

#[test]
fn put_replaces_a_running_executable() {
    // The destination is a running program: rename never hits "text file busy".
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("sleeper");
    std::fs::copy("/bin/sleep", &dest).expect("copy sleep");
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut child = Command::new(&dest).arg("30").spawn().expect("run sleeper");
    let old = std::fs::read(&dest).expect("read");
    let mut new = old.clone();
    new.extend_from_slice(b"\0appended");
    let (out, st) = put(&dest, &encode_delta(&old, &new));
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(matches!(st, Ok(PutStatus::Written { .. })));
    assert_eq!(std::fs::read(&dest).expect("read"), new);
}

#[test]
fn real_go_binaries_delta_small_and_applied_by_the_helper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("app");
    for link in [Link::Default, Link::Stripped] {
        let base = support::build_hello(Hello::Base, link);
        std::fs::write(&dest, &base).expect("write base");
        let mut current = base.clone();
        for (v, limit) in [(Hello::StringEdit, 0.10), (Hello::NewHandler, 0.40)] {
            let new = support::build_hello(v, link);
            let payload = encode_delta(&current, &new);
            let ratio = payload.len() as f64 / new.len() as f64;
            println!("{link:?} {v:?}: {} of {} bytes ({:.2}%)", payload.len(), new.len(), ratio * 100.0);
            assert!(ratio < limit, "{link:?} {v:?}: delta is {:.1}% of the binary", ratio * 100.0);
            let (out, st) = put(&dest, &payload);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(matches!(st, Ok(PutStatus::Written { kind: PayloadKind::Delta, .. })));
            assert_eq!(std::fs::read(&dest).expect("read"), new);
            current = new;
        }
    }
}

/// A tree with files, nested dirs, and symlinks inside and outside.
fn make_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().expect("tempdir");
    let root = top.path().join("root");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(root.join("node_modules/pkg")).expect("mkdir");
    std::fs::write(root.join("a.txt"), b"alpha\n").expect("write");
    std::fs::write(root.join("sub/b.bin"), noise(100_000, 9)).expect("write");
    std::fs::write(root.join("sub/deeper/c.log"), b"").expect("write");
    std::fs::write(root.join("node_modules/pkg/x.js"), b"x").expect("write");
    std::fs::set_permissions(root.join("a.txt"), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    std::fs::write(top.path().join("secret"), b"outside!").expect("write");
    symlink("sub/b.bin", root.join("inside-link")).expect("symlink");
    symlink("../secret", root.join("escape-link")).expect("symlink");
    symlink("..", root.join("sub/up")).expect("symlink");
    symlink(top.path(), root.join("abs-dir-link")).expect("symlink");
    (top, root)
}

#[test]
fn list_describes_the_tree_without_following_symlinks() {
    let (_top, root) = make_tree();
    let out = run(&["list", root.to_str().expect("utf8"), "-exclude", "node_modules"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = parse_listing(&out.stdout).expect("listing");
    let paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "a.txt",
            "abs-dir-link",
            "escape-link",
            "inside-link",
            "sub",
            "sub/b.bin",
            "sub/deeper",
            "sub/deeper/c.log",
            "sub/up"
        ]
    );
    let get = |p: &str| listing.entries.iter().find(|e| e.path.as_str() == p).expect(p);
    let a = get("a.txt");
    assert_eq!((a.kind, a.size, a.mode), (EntryType::File, 6, 0o640));
    assert_eq!(a.sha256.as_deref(), Some(hex::encode(sha2_digest(b"alpha\n")).as_str()));
    assert!(a.mtime_ns > 1_600_000_000_000_000_000);
    assert_eq!(get("sub").kind, EntryType::Dir);
    let up = get("sub/up");
    assert_eq!((up.kind, up.target.as_deref()), (EntryType::Symlink, Some("..")));
    assert!(up.path.symlink_target_stays_inside(".."));
    assert!(!get("escape-link").path.symlink_target_stays_inside("../secret"));
    assert!(get("inside-link").path.symlink_target_stays_inside("sub/b.bin"));
    assert_eq!(get("sub/b.bin").size, 100_000);

    // A pattern with a slash matches the relative path.
    let out = run(&["list", root.to_str().expect("utf8"), "-exclude", "sub/*.bin", "-exclude", "*link"], b"");
    let l = parse_listing(&out.stdout).expect("listing");
    assert!(l.entries.iter().all(|e| e.path.as_str() != "sub/b.bin" && !e.path.as_str().ends_with("link")));
    assert!(l.entries.iter().any(|e| e.path.as_str() == "node_modules/pkg/x.js"));
    // A missing directory is a reported failure.
    let out = run(&["list", "/nonexistent/dir"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(matches!(parse_listing(&out.stdout), Err(WayInError::HelperFailed { .. })));
}

fn sha2_digest(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

#[test]
fn get_streams_requested_files_and_refuses_escapes() {
    let (_top, root) = make_tree();
    let dir = root.to_str().expect("utf8");
    let req: Vec<RelPath> = ["a.txt", "sub/b.bin", "inside-link", "escape-link", "sub/up/secret", "sub", "nope"]
        .iter()
        .map(|p| RelPath::new(p).expect("path"))
        .collect();
    let out = run(&["get", dir], &get_request(&req));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut r = GetReader::new(out.stdout.as_slice(), &req, GetLimits::default());
    let mut got = Vec::new();
    while let Some(item) = r.next_item().expect("item") {
        match item {
            GetItem::File(h) => {
                let mut body = Vec::new();
                let outcome = r.read_body(&mut body).expect("body");
                assert!(matches!(outcome, BodyOutcome::Complete { .. }));
                got.push((h.path.to_string(), Some(body), h.mode));
            }
            GetItem::Refused { path, error } => got.push((path.to_string(), None, error.len() as u32)),
        }
    }
    assert_eq!(got.len(), 7);
    assert_eq!(got[0], ("a.txt".into(), Some(b"alpha\n".to_vec()), 0o640));
    assert_eq!(got[1].1.as_deref(), Some(noise(100_000, 9).as_slice()));
    assert_eq!(got[2].1.as_deref(), Some(noise(100_000, 9).as_slice()), "a symlink inside DIR is followed");
    for refused in &got[3..] {
        assert!(refused.1.is_none(), "{} was sent", refused.0);
    }

    // Hostile requests straight to the helper (the Rust side cannot even
    // express them): each gets an error record, nothing outside DIR is sent.
    let hostile =
        "../secret\n/etc/passwd\nsub/../../secret\n./a.txt\nsub//b.bin\nescape-link\nabs-dir-link/secret\nsub\\b.bin\n";
    let out = run(&["get", dir], hostile.as_bytes());
    assert!(out.status.success());
    let mut text = String::new();
    GzDecoder::new(out.stdout.as_slice()).read_to_string(&mut text).expect("gzip");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    for l in &lines[..8] {
        assert!(l.contains("\"error\""), "not refused: {l}");
    }
    assert!(!text.contains("outside!"));
    assert!(!text.contains("root:"));
    assert!(lines[8].contains("\"end\":true"));
}

#[test]
fn seed_copies_files_and_trees_atomically() {
    let (_top, root) = make_tree();
    let dst = tempfile::tempdir().expect("tempdir");
    let target = dst.path().join("copy");
    let out = run(&["seed", root.to_str().expect("utf8"), target.to_str().expect("utf8")], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(target.join("sub/b.bin")).expect("read"), noise(100_000, 9));
    assert_eq!(std::fs::read_link(target.join("escape-link")).expect("link"), Path::new("../secret"));
    assert_eq!(std::fs::metadata(target.join("a.txt")).expect("meta").permissions().mode() & 0o777, 0o640);
    let one = dst.path().join("one");
    let out =
        run(&["seed", root.join("a.txt").to_str().expect("utf8"), one.to_str().expect("utf8"), "-mode", "0755"], b"");
    assert!(out.status.success());
    assert_eq!(std::fs::read(&one).expect("read"), b"alpha\n");
    assert_eq!(std::fs::metadata(&one).expect("meta").permissions().mode() & 0o777, 0o755);
    assert!(temp_leftovers(dst.path()).is_empty());
}

/// The whole way in through a real container: an image holding only the
/// static helper and a static busybox, `docker exec -i … put` with the payload
/// on stdin. Fails, saying what is missing, without a Docker engine or busybox.
#[test]
fn docker_exec_put_into_a_real_container() {
    let busybox = support::require_docker_and_busybox();
    // Build the root filesystem as a tar and import it.
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = work.path().join("rootfs");
    for d in ["bin", "app", "var/run/gohot"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    std::fs::copy(support::helper(), rootfs.join("var/run/gohot/helper")).expect("copy helper");
    let tag = format!("gohot-wayin-test:{}", std::process::id());
    let tar = Command::new("tar").args(["-C", rootfs.to_str().expect("utf8"), "-cf", "-", "."]).output().expect("tar");
    assert!(tar.status.success());
    let imp = run_cmd(Command::new("docker").args(["import", "-", &tag]), &tar.stdout);
    assert!(imp.status.success(), "docker import: {}", String::from_utf8_lossy(&imp.stderr));
    let run_out = Command::new("docker")
        .args(["run", "-d", "--rm", "--network", "none", &tag, "/bin/busybox", "sleep", "300"])
        .output()
        .expect("docker run");
    assert!(run_out.status.success(), "docker run: {}", String::from_utf8_lossy(&run_out.stderr));
    let id = String::from_utf8_lossy(&run_out.stdout).trim().to_string();
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
            let _ = Command::new("docker").args(["rmi", "-f", &self.1]).output();
        }
    }
    let _cleanup = Cleanup(id.clone(), tag.clone());

    let exec = |argv: Vec<String>, stdin: &[u8]| -> Output {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", "-i", &id]).args(&argv);
        run_cmd(&mut cmd, stdin)
    };
    let v1 = support::build_hello(Hello::Base, Link::Stripped);
    let v2 = support::build_hello(Hello::StringEdit, Link::Stripped);

    let out = exec(version_argv(), b"");
    assert!(parse_version(&out.stdout).is_ok(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = exec(put_argv("/app/hello", 0o755), &encode_full(&v1));
    assert!(
        matches!(parse_put_status(&out.stdout), Ok(PutStatus::Written { kind: PayloadKind::Full, .. })),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let delta = encode_delta(&v1, &v2);
    let out = exec(put_argv("/app/hello", 0o755), &delta);
    let st = parse_put_status(&out.stdout).expect("status");
    let PutStatus::Written { sha256, .. } = st else { panic!("{st:?}") };
    // The container has exactly v2 now...
    let out = exec(hash_argv("/app/hello"), b"");
    assert_eq!(parse_hash_status(&out.stdout).expect("hash"), RemoteFile::Present { sha256, size: v2.len() as u64 });
    // ...so the same delta again is a base mismatch, with its exit code.
    let out = exec(put_argv("/app/hello", 0o755), &delta);
    assert_eq!(out.status.code(), Some(EXIT_BASE_MISMATCH));
    assert!(matches!(parse_put_status(&out.stdout), Ok(PutStatus::BaseMismatch { .. })));
    // The new binary runs in the container (a static Go server: start it, ask it).
    let out = exec(
        vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "PORT=8099 /app/hello >/dev/null 2>&1 & for i in 1 2 3 4 5 6 7 8 9 10; do /bin/busybox wget -qO- http://127.0.0.1:8099/ && break; /bin/busybox sleep 0.3; done".into(),
        ],
        b"",
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("version two"), "answer: {answer} {}", String::from_utf8_lossy(&out.stderr));
    // list + get through the container too.
    let out = exec(list_argv("/app", &[]), b"");
    let listing = parse_listing(&out.stdout).expect("listing");
    assert_eq!(listing.entries.len(), 1);
    let req = vec![RelPath::new("hello").expect("path")];
    let out = exec(get_argv("/app"), &get_request(&req));
    let mut r = GetReader::new(out.stdout.as_slice(), &req, GetLimits::default());
    let Some(GetItem::File(h)) = r.next_item().expect("item") else { panic!("no file") };
    let mut body = Vec::new();
    assert!(matches!(r.read_body(&mut body).expect("body"), BodyOutcome::Complete { .. }));
    assert_eq!((h.size, body == v2), (v2.len() as u64, true));
    assert!(r.next_item().expect("end").is_none());
}

/// The real helper as a local process, `helper serve`, with a session over
/// its stdin and stdout (the transport the engine and the cluster give, minus
/// the exec).
async fn local_session() -> (session::Session, tokio::process::Child) {
    let mut child = tokio::process::Command::new(support::helper())
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn helper serve");
    let input = child.stdin.take().expect("stdin");
    let output = child.stdout.take().expect("stdout");
    let s = session::Session::open(Box::pin(input), Box::pin(output), Box::new(())).await.expect("open");
    (s, child)
}

#[tokio::test]
async fn many_puts_and_hashes_over_one_session() {
    let d = tempfile::tempdir().unwrap();
    let (mut s, mut child) = local_session().await;
    let dest = d.path().join("app");
    let dest_s = dest.display().to_string();
    let mut old: Option<Vec<u8>> = None;
    for i in 0..30u64 {
        let content = noise(50_000 + i as usize * 7, i);
        let payload = match &old {
            Some(o) if i % 2 == 0 => encode_delta(o, &content),
            _ => encode_full(&content),
        };
        let reply = s.request(&put_argv(&dest_s, 0o755), &payload).await.expect("put");
        match parse_put_status(&reply).expect("status") {
            PutStatus::Written { bytes, .. } => assert_eq!(bytes, content.len() as u64),
            other => panic!("put {i}: {other:?}"),
        }
        let reply = s.request(&hash_argv(&dest_s), &[]).await.expect("hash");
        assert!(
            matches!(parse_hash_status(&reply), Ok(RemoteFile::Present { size, .. }) if size == content.len() as u64)
        );
        assert_eq!(std::fs::read(&dest).unwrap(), content, "put {i}");
        old = Some(content);
    }
    // A delta whose base is gone is refused, and the session goes on.
    let reply = s.request(&put_argv(&dest_s, 0o755), &encode_delta(b"other", b"x")).await.expect("put");
    assert!(matches!(parse_put_status(&reply), Ok(PutStatus::BaseMismatch { .. })));
    let reply = s.request(&rm_argv(&dest_s), &[]).await.expect("rm");
    assert!(parse_rm_status(&reply).expect("rm status"), "the file was removed");
    assert!(temp_leftovers(d.path()).is_empty());
    drop(s);
    // Closing its stdin ends the session cleanly.
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_session_whose_helper_died_is_an_error_not_a_hang() {
    let (mut s, mut child) = local_session().await;
    child.kill().await.expect("kill");
    let e = s.request(&hash_argv("/nothing"), &[]).await.unwrap_err();
    assert!(e.to_string().contains("session"), "{e}");
}

/// The helper shares the app's memory limit: a session carrying 300 MB of
/// kodata into a container limited to 256 MiB (100 MiB of it already held,
/// as an app would, in a tmpfs file) completes, the helper's peak resident
/// memory stays small, and nothing in the container is OOM-killed.
#[tokio::test]
async fn a_session_carrying_300mb_of_kodata_stays_within_the_containers_memory_limit() {
    let busybox = support::require_docker_and_busybox();
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = work.path().join("rootfs");
    for d in ["bin", "kodata", "hold", "var/run/gohot"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    std::fs::copy(support::helper(), rootfs.join("var/run/gohot/helper")).expect("copy helper");
    let tag = format!("gohot-wayin-memory:{}", std::process::id());
    let tar = Command::new("tar").args(["-C", rootfs.to_str().expect("utf8"), "-cf", "-", "."]).output().expect("tar");
    let imp = run_cmd(Command::new("docker").args(["import", "-", &tag]), &tar.stdout);
    assert!(imp.status.success(), "docker import: {}", String::from_utf8_lossy(&imp.stderr));
    let name = format!("gohot-wayin-memory-{}", std::process::id());
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
            let _ = Command::new("docker").args(["rmi", "-f", &self.1]).output();
        }
    }
    let _cleanup = Cleanup(name.clone(), tag.clone());
    let app = "/bin/busybox head -c 100000000 /dev/zero > /hold/app-memory && exec /bin/busybox sleep 600";
    let run_out = Command::new("docker")
        .args(["run", "-d", "--network", "none", "--memory", "256m", "--memory-swap", "256m"])
        .args(["--tmpfs", "/hold:size=128m", "--name", &name, &tag, "/bin/busybox", "sh", "-c", app])
        .output()
        .expect("docker run");
    assert!(run_out.status.success(), "docker run: {}", String::from_utf8_lossy(&run_out.stderr));
    let sh = |script: &str| {
        let out = Command::new("docker")
            .args(["exec", &name, "/bin/busybox", "sh", "-c", script])
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The app holds its memory before the sync starts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sh("/bin/busybox stat -c %s /hold/app-memory") != "100000000" {
        assert!(std::time::Instant::now() < deadline, "the app never took its memory");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let docker = gohot::docker::connect().await.expect("docker");
    let attached = gohot::docker::exec_attached(&docker, &name, &session::serve_argv()).await.expect("serve");
    let mut s = session::Session::open(attached.stdin, attached.stdout, attached.keep).await.expect("session");
    const FILES: u64 = 300;
    for i in 0..FILES {
        let content = noise(1_000_000, i + 1);
        let dest = format!("/kodata/f{i:03}");
        let reply = s.request(&put_argv(&dest, 0o644), &encode_full(&content)).await.expect("put");
        match parse_put_status(&reply) {
            Ok(PutStatus::Written { bytes, .. }) => assert_eq!(bytes, 1_000_000),
            other => panic!("put {i}: {other:?}"),
        }
    }
    let hwm = sh("for p in $(/bin/busybox pidof helper); do /bin/busybox grep VmHWM /proc/$p/status; done");
    let kib: u64 = hwm.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{hwm:?}"));
    assert!(kib < 64 * 1024, "the helper peaked at {} MiB after {FILES} MB of kodata", kib / 1024);
    drop(s);
    let state = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}} {{.State.OOMKilled}}", &name])
        .output()
        .expect("inspect");
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "true false", "the app's container");
    assert_eq!(sh("/bin/busybox ls /kodata | /bin/busybox wc -l"), FILES.to_string());
}
