//! Shared by the integration tests and the delta measurement: the real Go
//! toolchain, the real helper, and real Go binaries to diff.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The Go toolchain: `GOHOT_GO`, else `/opt/gohot-go/bin/go`, else `go` on PATH.
pub fn go() -> PathBuf {
    if let Some(p) = std::env::var_os("GOHOT_GO") {
        return PathBuf::from(p);
    }
    let opt = Path::new("/opt/gohot-go/bin/go");
    if opt.exists() {
        return opt.to_path_buf();
    }
    PathBuf::from("go")
}

/// Scratch space under the target directory (kept between runs so that the
/// Go build cache and the built helper are reused).
pub fn work_dir(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("wayin-tests").join(name);
    std::fs::create_dir_all(&base).expect("create work dir");
    base
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no Go arch for host {other}"),
    }
}

/// The helper, built once per process for the host with the real toolchain.
pub fn helper() -> &'static Path {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER.get_or_init(|| {
        let dir = work_dir("helper");
        let tmp = dir.join(format!("helper-{}", std::process::id()));
        let built = gohot::devimage::helper::build_helper(&go(), host_arch(), &tmp).expect("build the helper");
        assert!(built.size > 100_000, "helper suspiciously small");
        // Atomic, like the helper itself: a concurrent test run keeps working.
        let out = dir.join("helper");
        std::fs::rename(&built.path, &out).expect("rename helper");
        out
    })
}

/// The hello server's source with one of the edits applied.
#[derive(Clone, Copy, Debug)]
pub enum Hello {
    Base,
    StringEdit,
    NewHandler,
}

pub fn hello_source(v: Hello) -> String {
    let base = include_str!("fixtures/hello/main.go");
    match v {
        Hello::Base => base.to_string(),
        Hello::StringEdit => base.replace("(version one)", "(version two, a little longer)"),
        Hello::NewHandler => base
            .replace(
                "//HANDLER",
                "func clock(w http.ResponseWriter, r *http.Request) {\n\
                 \tzone := r.URL.Query().Get(\"tz\")\n\
                 \tloc, err := time.LoadLocation(zone)\n\
                 \tif err != nil {\n\
                 \t\thttp.Error(w, err.Error(), http.StatusBadRequest)\n\
                 \t\treturn\n\
                 \t}\n\
                 \tfmt.Fprintf(w, \"it is %s in %q\\n\", time.Now().In(loc).Format(time.RFC1123), zone)\n\
                 }\n",
            )
            .replace("//ROUTE", "http.HandleFunc(\"/time\", clock)"),
    }
}

/// Linker flags the measurements compare.
#[derive(Clone, Copy, Debug)]
pub enum Link {
    /// Go's defaults: DWARF included, zlib-compressed.
    Default,
    /// DWARF included uncompressed (`-ldflags=-compressdwarf=false`): still debuggable.
    UncompressedDwarf,
    /// No symbol table, no DWARF (`-ldflags=-s -w`).
    Stripped,
}

/// Builds the hello server variant for linux/amd64 (static, -trimpath) and
/// returns the binary.
pub fn build_hello(v: Hello, link: Link) -> Vec<u8> {
    static BUILDS: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = work_dir(&format!("hello-{v:?}"));
    std::fs::write(dir.join("main.go"), hello_source(v)).expect("write main.go");
    std::fs::write(dir.join("go.mod"), "module example.com/hello\n\ngo 1.21\n").expect("write go.mod");
    let out = dir.join(format!("app-{link:?}"));
    let mut cmd = Command::new(go());
    cmd.current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .env("GOOS", "linux")
        .env("GOARCH", "amd64")
        .args(["build", "-trimpath", "-buildvcs=false"]);
    match link {
        Link::Default => {}
        Link::UncompressedDwarf => {
            cmd.arg("-ldflags=-compressdwarf=false");
        }
        Link::Stripped => {
            cmd.arg("-ldflags=-s -w");
        }
    }
    let st = cmd.arg("-o").arg(&out).arg(".").status().expect("run go build");
    assert!(st.success(), "go build of the hello server failed");
    std::fs::read(out).expect("read binary")
}

/// The Docker engine and Debian's static busybox, which the container tests
/// build their image from; both are installed by scripts/setup.
pub fn require_docker_and_busybox() -> &'static Path {
    let busybox = Path::new("/bin/busybox");
    let docker_ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(docker_ok && busybox.exists(), "needs a Docker engine and a static /bin/busybox: run scripts/setup");
    busybox
}
