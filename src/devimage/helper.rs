//! Building the way-in helper ([`crate::wayin`]'s container side): the Go
//! sources embedded in gohot, compiled by the developer's own toolchain for
//! the container's platform (`CGO_ENABLED=0 -trimpath -ldflags='-s -w'`: a
//! static binary of about 3 MB that runs on an empty base), into a
//! temporary directory, and moved into place atomically.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::wayin::{io_err, sha256_hex, WayInError};

/// Go source of the helper, embedded so that gohot can build it anywhere:
/// (file name, text) of every non-test `.go` file in `helper/`.
pub const HELPER_GO_FILES: &[(&str, &str)] = &[
    ("args.go", include_str!("../wayin/helper/args.go")),
    ("atomic.go", include_str!("../wayin/helper/atomic.go")),
    ("delta.go", include_str!("../wayin/helper/delta.go")),
    ("doc.go", include_str!("../wayin/helper/doc.go")),
    ("get.go", include_str!("../wayin/helper/get.go")),
    ("hash.go", include_str!("../wayin/helper/hash.go")),
    ("list.go", include_str!("../wayin/helper/list.go")),
    ("main.go", include_str!("../wayin/helper/main.go")),
    ("mode.go", include_str!("../wayin/helper/mode.go")),
    ("personality.go", include_str!("../wayin/helper/personality.go")),
    ("put.go", include_str!("../wayin/helper/put.go")),
    ("rm.go", include_str!("../wayin/helper/rm.go")),
    ("seed.go", include_str!("../wayin/helper/seed.go")),
    ("serve.go", include_str!("../wayin/helper/serve.go")),
    ("serving.go", include_str!("../wayin/helper/serving.go")),
    ("tar.go", include_str!("../wayin/helper/tar.go")),
    ("written.go", include_str!("../wayin/helper/written.go")),
];

/// A Go target for the helper: `GOARCH` and, for arm/amd64, the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTarget {
    /// GOARCH.
    pub goarch: String,
    /// Extra variable for a variant: `GOARM` (arm/v6, arm/v7) or `GOAMD64` (amd64/v3).
    pub variant: Option<(&'static str, String)>,
}

/// Maps an OCI architecture (`amd64`, `arm64`, `arm/v7`, `linux/arm64/v8`,
/// `386`, `ppc64le`, `s390x`, `riscv64`, …) to the Go target.
pub fn go_target(arch: &str) -> Result<GoTarget, WayInError> {
    let unsupported = || WayInError::UnsupportedArch(arch.to_string());
    let a = arch.strip_prefix("linux/").unwrap_or(arch);
    let (goarch, variant) = match a.split_once('/') {
        Some((g, v)) => (g, Some(v)),
        None => (a, None),
    };
    const KNOWN: &[&str] = &[
        "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le",
        "riscv64", "s390x",
    ];
    if !KNOWN.contains(&goarch) {
        return Err(unsupported());
    }
    let variant = match (goarch, variant) {
        (_, None) => None,
        ("arm", Some(v @ ("v5" | "v6" | "v7"))) => Some(("GOARM", v[1..].to_string())),
        ("amd64", Some(v @ ("v1" | "v2" | "v3" | "v4"))) => Some(("GOAMD64", v.to_string())),
        ("arm64", Some("v8")) => None,
        _ => return Err(unsupported()),
    };
    Ok(GoTarget { goarch: goarch.to_string(), variant })
}

/// Environment for building the helper: static (`CGO_ENABLED=0`), linux,
/// the target's GOARCH (and variant), the local toolchain only
/// (`GOTOOLCHAIN=local`), no network (`GOPROXY=off`: the helper is stdlib
/// only), and no user `GOFLAGS`/`go.work` that could change the build.
pub fn helper_build_env(arch: &str) -> Result<Vec<(&'static str, String)>, WayInError> {
    let t = go_target(arch)?;
    let mut env = vec![
        ("CGO_ENABLED", "0".to_string()),
        ("GOOS", "linux".to_string()),
        ("GOARCH", t.goarch),
        ("GOTOOLCHAIN", "local".to_string()),
        ("GOPROXY", "off".to_string()),
        ("GOFLAGS", String::new()),
        ("GOWORK", "off".to_string()),
        ("GO111MODULE", "on".to_string()),
    ];
    if let Some((k, v)) = t.variant {
        env.push((k, v));
    }
    Ok(env)
}

/// Arguments of `go build` for the helper, run in a directory holding
/// the `.go` files ([`HELPER_GO_FILES`]) and a `go.mod` (`module gohothelper`):
/// reproducible (`-trimpath`, `-buildvcs=false`) and small (`-s -w`).
pub fn helper_build_args(out: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> =
        ["build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o"].iter().map(OsString::from).collect();
    v.push(out.as_os_str().to_owned());
    v.push(".".into());
    v
}

/// The `go.mod` written next to the helper source (Go 1.19 is the oldest
/// toolchain the source is written for).
pub const HELPER_GO_MOD: &str = include_str!("../wayin/helper/go.mod");

/// A helper binary produced by [`build_helper`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltHelper {
    /// Where it was written.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its sha256, lowercase hex.
    pub sha256: String,
}

/// Builds the helper with the Go toolchain `go` for linux/`arch` in a
/// temporary directory and moves it atomically to `out` (mode 0755).
/// A failing build returns [`WayInError::HelperBuild`] with go's stderr.
pub fn build_helper(go: &Path, arch: &str, out: &Path) -> Result<BuiltHelper, WayInError> {
    let env = helper_build_env(arch)?;
    let dir = tempfile::Builder::new()
        .prefix("gohot-helper-")
        .tempdir()
        .map_err(io_err("creating a temporary directory for the helper build"))?;
    for (name, text) in HELPER_GO_FILES {
        std::fs::write(dir.path().join(name), text).map_err(io_err("writing the helper source"))?;
    }
    std::fs::write(dir.path().join("go.mod"), HELPER_GO_MOD).map_err(io_err("writing the helper go.mod"))?;
    let built = dir.path().join("helper");
    let mut cmd = Command::new(go);
    cmd.args(helper_build_args(&built)).current_dir(dir.path());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let output = cmd.output().map_err(|source| WayInError::GoNotRunnable { go: go.to_path_buf(), source })?;
    if !output.status.success() {
        return Err(WayInError::HelperBuild {
            arch: arch.to_string(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let bytes = std::fs::read(&built).map_err(io_err("reading the built helper"))?;
    crate::atomic::write(out, &bytes, Some(0o755)).map_err(io_err(format!("writing {}", out.display())))?;
    Ok(BuiltHelper { path: out.to_path_buf(), size: bytes.len() as u64, sha256: sha256_hex(&bytes) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_targets() {
        assert_eq!(go_target("amd64").expect("amd64").goarch, "amd64");
        assert_eq!(go_target("linux/arm/v7").expect("arm").variant, Some(("GOARM", "7".to_string())));
        assert!(go_target("arm64/v8").is_ok());
        for bad in ["", "x86_64", "arm/v9", "amd64;rm -rf", "windows/amd64"] {
            assert!(go_target(bad).is_err(), "{bad}");
        }
        let args = helper_build_args(Path::new("/tmp/out"));
        // The helper's tar drops what Skaffold sends to the discard directory.
        let personality = HELPER_GO_FILES.iter().find(|(n, _)| *n == "personality.go").expect("personality.go").1;
        assert!(personality.contains(&format!("var discardDir = {:?}\n", crate::layout::DISCARD_DIR)));
        assert!(args.iter().any(|a| a == "-trimpath"));
        assert!(args.iter().any(|a| a == "-ldflags=-s -w"));
    }
}
