//! Delve for `--debug` dev images: built by gohot with the developer's own
//! Go toolchain for the container's platform (static, `CGO_ENABLED=0`,
//! `-trimpath`), at a pinned version, and cached in gohot's cache by
//! version and platform — as ko's `getDelve` does with `go install`.
//!
//! Where its source comes from ([`DelveSource`]):
//!
//! - the pinned release, [`DELVE_VERSION`], fetched as a module by `go mod
//!   download` (the Go module proxy the developer's Go is set up for) and
//!   built from the module cache: `$CACHE/delve/v<version>/<os>/<arch>/dlv`;
//! - `GOHOT_DELVE_SRC=DIR|FILE.tar.gz`: a local copy of delve's source with
//!   its `vendor/` directory, built offline (`-mod=vendor`, `GOPROXY=off`):
//!   `$CACHE/delve/v<version>-src-<hash of the source>/<os>/<arch>/dlv`;
//! - `--delve PATH`: a binary the developer built, used as it is.
//!
//! A delve that does not support the toolchain's Go version is refused
//! before anything is built, naming both: delve would refuse to debug the
//! binary anyway, but only inside the container, after the first build.
//! Archives are untrusted: only plain files and directories with relative,
//! `..`-free names, within a size and a count bound, are unpacked.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use sha2::Digest as _;
use tokio::process::Command;

use crate::builder::go::GoToolchain;
use crate::platform::Platform;

/// The delve release `--debug` builds: the newest that supports Go 1.27.
pub const DELVE_VERSION: &str = "1.27.1";
/// Delve's module.
pub const DELVE_MODULE: &str = "github.com/go-delve/delve";
/// The Go minor versions (1.x) [`DELVE_VERSION`] supports, from its
/// `pkg/goversion/compat.go`.
pub const DELVE_GO_MINORS: (u32, u32) = (25, 27);

pub mod patches;

/// In the cache path of a delve built with [`patches::PATCHES`] (so that
/// one built with other changes is not reused).
const PATCH_TAG: &str = "gohot2";

/// An unpacked source archive is at most this big...
const MAX_SOURCE_BYTES: u64 = 1 << 30;
/// ...and holds at most this many entries (delve 1.27 with vendor/: about 1,400).
const MAX_SOURCE_ENTRIES: usize = 100_000;

/// Where `--debug` gets delve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelveSource {
    /// The pinned release, through the Go module proxy.
    Release,
    /// A source tree or `.tar.gz` with `vendor/` (`GOHOT_DELVE_SRC`).
    Source(PathBuf),
    /// A ready binary (`--delve`).
    Binary(PathBuf),
}

impl DelveSource {
    /// From `--delve` and `GOHOT_DELVE_SRC` (the binary wins).
    pub fn from_settings(binary: Option<PathBuf>, source: Option<PathBuf>) -> Self {
        match (binary, source) {
            (Some(b), _) => DelveSource::Binary(b),
            (None, Some(s)) => DelveSource::Source(s),
            (None, None) => DelveSource::Release,
        }
    }
}

/// Getting delve failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DelveError {
    /// This delve cannot debug what this Go builds.
    #[error(
        "delve {delve} supports Go 1.{}–1.{}, but the Go toolchain is {go}: use a Go in that range (GOHOT_GO), \
         or a delve that supports {go} (--delve PATH, or its source with GOHOT_DELVE_SRC)",
        .minors.0, .minors.1
    )]
    Unsupported {
        /// Delve's version.
        delve: String,
        /// The toolchain's (`go1.28.0`).
        go: String,
        /// The Go 1.x minors delve supports.
        minors: (u32, u32),
    },
    /// The toolchain's version could not be read.
    #[error("cannot tell the Go version of {go}: {detail}")]
    GoVersion {
        /// The toolchain.
        go: PathBuf,
        /// Why.
        detail: String,
    },
    /// The source is not delve's, or is unusable.
    #[error("GOHOT_DELVE_SRC={}: {detail}", .path.display())]
    Source {
        /// What was given.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The module could not be fetched.
    #[error(
        "fetching delve {version} ({DELVE_MODULE}) failed: {detail}\nOffline, build it from its source with vendor/: \
         GOHOT_DELVE_SRC=DIR|FILE.tar.gz, or give a built one with --delve PATH"
    )]
    Fetch {
        /// The version.
        version: String,
        /// go's message.
        detail: String,
    },
    /// `go build` failed.
    #[error("building delve for {platform} failed:\n{stderr}")]
    Build {
        /// The platform.
        platform: String,
        /// go's output.
        stderr: String,
    },
    /// `--delve` is not a usable binary.
    #[error("--delve {}: {detail}", .path.display())]
    Binary {
        /// What was given.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DelveError + '_ {
    move |source| DelveError::Io { path: path.to_path_buf(), source }
}

/// A delve binary for `platform`, built (once) from `source` with `go`, or
/// the one given.
pub async fn ensure_delve(
    go: &GoToolchain,
    platform: &Platform,
    source: &DelveSource,
    cache_root: &Path,
) -> Result<PathBuf, DelveError> {
    let go_version = go_version(go).await?;
    match source {
        DelveSource::Binary(path) => check_binary(go, path, platform, &go_version).await,
        DelveSource::Release => {
            check_go(DELVE_VERSION, DELVE_GO_MINORS, &go_version)?;
            let out = cached_dlv(cache_root, &format!("v{DELVE_VERSION}-{PATCH_TAG}"), platform);
            if out.is_file() {
                return Ok(out);
            }
            let spinner = crate::progress::spinner(format!("building delve {DELVE_VERSION} for {platform} (once)"));
            let dir = download(go).await?;
            let built = build(go, &dir, platform, &out, false).await;
            spinner.finish_and_clear();
            built.map(|()| out)
        }
        DelveSource::Source(path) => {
            let bad = |detail: String| DelveError::Source { path: path.clone(), detail };
            let (key, unpacked) = if path.is_dir() {
                (tree_key(path)?, None)
            } else if path.is_file() {
                let data = std::fs::read(path).map_err(io_err(path))?;
                (hex::encode(&sha2::Sha256::digest(&data)[..6]), Some(data))
            } else {
                return Err(bad("no such directory or file".into()));
            };
            // The version and Go range are read before anything is built.
            let tmp;
            let root = match unpacked {
                Some(data) => {
                    tmp = tempfile::Builder::new()
                        .prefix("gohot-delve-src-")
                        .tempdir()
                        .map_err(io_err(&std::env::temp_dir()))?;
                    let p = path.clone();
                    let dest = tmp.path().to_path_buf();
                    tokio::task::spawn_blocking(move || unpack_tar_gz(&data, &dest))
                        .await
                        .map_err(|e| bad(e.to_string()))?
                        .map_err(|detail| DelveError::Source { path: p, detail })?;
                    source_root(tmp.path()).ok_or_else(|| bad(format!("no {DELVE_MODULE} go.mod in the archive")))?
                }
                None => source_root(path).ok_or_else(|| bad(format!("no {DELVE_MODULE} go.mod there")))?,
            };
            if !root.join("vendor/modules.txt").is_file() {
                return Err(bad("it has no vendor/ directory (run `go mod vendor` in it): it is built offline".into()));
            }
            let version = read_version(&root).ok_or_else(|| bad("no pkg/version/version.go".into()))?;
            let minors = read_go_range(&root).ok_or_else(|| bad("no pkg/goversion/compat.go".into()))?;
            check_go(&version, minors, &go_version)?;
            let out = cached_dlv(cache_root, &format!("v{version}-src-{key}-{PATCH_TAG}"), platform);
            if out.is_file() {
                return Ok(out);
            }
            let spinner =
                crate::progress::spinner(format!("building delve {version} for {platform} from source (once)"));
            let built = build(go, &root, platform, &out, true).await;
            spinner.finish_and_clear();
            built.map(|()| out)
        }
    }
}

/// Where the delve built as `build` (version, source, changes) for
/// `platform` is cached.
fn cached_dlv(cache_root: &Path, build: &str, platform: &Platform) -> PathBuf {
    cache_root.join("delve").join(build).join(platform.cache_path()).join("dlv")
}

/// `go env GOVERSION` (`go1.27.3`).
async fn go_version(go: &GoToolchain) -> Result<String, DelveError> {
    let fail = |detail: String| DelveError::GoVersion { go: go.path().to_path_buf(), detail };
    let out = Command::new(go.path())
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The 1.x minor of a Go version (`go1.27.3` → 27, `go1.28rc1` → 28).
pub fn go_minor(version: &str) -> Option<u32> {
    let rest = version.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Refuses a delve whose supported Go range leaves out `go_version`.
pub fn check_go(delve: &str, minors: (u32, u32), go_version: &str) -> Result<(), DelveError> {
    match go_minor(go_version) {
        Some(m) if (minors.0..=minors.1).contains(&m) => Ok(()),
        _ => Err(DelveError::Unsupported { delve: delve.into(), go: go_version.into(), minors }),
    }
}

/// The Go range of delve versions gohot knows (for `--delve` binaries).
fn known_go_range(delve: &str) -> Option<(u32, u32)> {
    (delve.trim_start_matches('v') == DELVE_VERSION).then_some(DELVE_GO_MINORS)
}

/// Checks a `--delve` binary with `go version -m` (works for any platform):
/// it is a Go program for the container's OS and architecture, and a delve
/// gohot knows the Go range of supports the toolchain.
async fn check_binary(
    go: &GoToolchain,
    path: &Path,
    platform: &Platform,
    go_version: &str,
) -> Result<PathBuf, DelveError> {
    let bad = |detail: String| DelveError::Binary { path: path.to_path_buf(), detail };
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
    let info = go.version_m(path).await.map_err(|e| bad(format!("not a Go program ({e})")))?;
    let setting = |key: &str| {
        info.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("build")).then_some(())?;
            f.next()?.strip_prefix(&format!("{key}=")).map(str::to_string)
        })
    };
    if let (Some(os), Some(arch)) = (setting("GOOS"), setting("GOARCH")) {
        if os != platform.os || arch != platform.arch {
            return Err(bad(format!("it is built for {os}/{arch}, the container runs {platform}")));
        }
    }
    let version = info.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == "mod" && f[1] == DELVE_MODULE).then(|| f[2].to_string())
    });
    if let Some(v) = version {
        if let Some(minors) = known_go_range(&v) {
            check_go(&v, minors, go_version)?;
        }
    }
    Ok(path.to_path_buf())
}

/// `go mod download` of the pinned release: its directory in the module cache.
async fn download(go: &GoToolchain) -> Result<PathBuf, DelveError> {
    let fail = |detail: String| DelveError::Fetch { version: DELVE_VERSION.into(), detail };
    let dir = tempfile::tempdir().map_err(io_err(&std::env::temp_dir()))?;
    let out = Command::new(go.path())
        .args(["mod", "download", "-json", &format!("{DELVE_MODULE}@v{DELVE_VERSION}")])
        .current_dir(dir.path())
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("GOFLAGS", "")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    match parsed["Dir"].as_str() {
        Some(d) if out.status.success() => Ok(PathBuf::from(d)),
        _ => {
            let msg = parsed["Error"].as_str().map(str::to_string);
            Err(fail(msg.unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string())))
        }
    }
}

/// `go build ./cmd/dlv` in `dir` for `platform`, static and trimmed, with
/// gohot's [`patches`], into a temporary file moved to `out` atomically.
/// `vendored`: offline, from `vendor/`. A build that fails with the changes
/// is done again without them (a delve they do not fit), so only delve's
/// own failure is an error.
async fn build(
    go: &GoToolchain,
    dir: &Path,
    platform: &Platform,
    out: &Path,
    vendored: bool,
) -> Result<(), DelveError> {
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = parent.join(format!(".dlv.tmp-{}", std::process::id()));
    // The changes, through an overlay in a directory of its own.
    let overlay = tempfile::tempdir().map_err(io_err(&std::env::temp_dir()))?;
    // As go sees it from its working directory (symlinks resolved).
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let changed = if platform.os == "linux" { patches::patched_files(&root) } else { Vec::new() };
    let mut replace = serde_json::Map::new();
    for (i, (file, text)) in changed.iter().enumerate() {
        let copy = overlay.path().join(format!("{i}.go"));
        std::fs::write(&copy, text).map_err(io_err(&copy))?;
        replace.insert(root.join(file).to_string_lossy().into_owned(), copy.to_string_lossy().into_owned().into());
    }
    let json = overlay.path().join("overlay.json");
    std::fs::write(&json, serde_json::json!({ "Replace": replace }).to_string()).map_err(io_err(&json))?;
    let mut built = go_build_dlv(go, dir, platform, &tmp, vendored, (!changed.is_empty()).then_some(&*json)).await;
    if built.is_err() && !changed.is_empty() {
        tracing::warn!("delve did not build with gohot's changes to its start: building it as it is");
        built = go_build_dlv(go, dir, platform, &tmp, vendored, None).await;
    }
    if let Err(e) = built {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(io_err(out))
}

/// One `go build ./cmd/dlv` into `tmp`, with `overlay` when given.
async fn go_build_dlv(
    go: &GoToolchain,
    dir: &Path,
    platform: &Platform,
    tmp: &Path,
    vendored: bool,
    overlay: Option<&Path>,
) -> Result<(), DelveError> {
    let target = super::helper::go_target(&platform.arch)
        .map_err(|e| DelveError::Build { platform: platform.to_string(), stderr: e.to_string() })?;
    let mut cmd = Command::new(go.path());
    cmd.current_dir(dir).args(["build", "-trimpath", "-ldflags=-s -w"]);
    if let Some(json) = overlay {
        cmd.arg(format!("-overlay={}", json.display()));
    }
    cmd.arg("-o")
        .arg(tmp)
        .arg("./cmd/dlv")
        .env("CGO_ENABLED", "0")
        .env("GOOS", &platform.os)
        .env("GOARCH", &target.goarch)
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("GOFLAGS", if vendored { "-mod=vendor" } else { "-mod=readonly" })
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some((k, v)) = &target.variant {
        cmd.env(k, v);
    }
    if vendored {
        cmd.env("GOPROXY", "off");
    }
    let result = cmd.output().await.map_err(|source| DelveError::Io { path: go.path().to_path_buf(), source })?;
    if !result.status.success() {
        return Err(DelveError::Build {
            platform: platform.to_string(),
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
        });
    }
    Ok(())
}

/// The directory holding delve's `go.mod`: `dir` itself or its one subdirectory.
fn source_root(dir: &Path) -> Option<PathBuf> {
    let is_delve = |d: &Path| {
        std::fs::read_to_string(d.join("go.mod"))
            .is_ok_and(|m| m.lines().next().is_some_and(|l| l.trim() == format!("module {DELVE_MODULE}")))
    };
    if is_delve(dir) {
        return Some(dir.to_path_buf());
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    match subdirs.as_slice() {
        [one] if is_delve(one) => Some(one.clone()),
        _ => None,
    }
}

/// `1.27.1` from `pkg/version/version.go`'s `DelveVersion`.
fn read_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("pkg/version/version.go")).ok()?;
    let start = text.find("DelveVersion = Version{")?;
    let body = &text[start..];
    let field = |name: &str| {
        let at = body.find(&format!("{name}: \""))? + name.len() + 3;
        Some(body[at..].split('"').next()?.to_string())
    };
    Some(format!("{}.{}.{}", field("Major")?, field("Minor")?, field("Patch")?))
}

/// The Go 1.x minors delve supports, from `pkg/goversion/compat.go`.
fn read_go_range(root: &Path) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(root.join("pkg/goversion/compat.go")).ok()?;
    let value = |name: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(name))?;
        line.split('=').nth(1)?.trim().parse::<u32>().ok()
    };
    Some((value("MinSupportedVersionOfGoMinor")?, value("MaxSupportedVersionOfGoMinor")?))
}

/// What identifies a source directory for the cache: where it is and its
/// version and dependency files.
fn tree_key(dir: &Path) -> Result<String, DelveError> {
    let mut h = sha2::Sha256::new();
    h.update(dir.canonicalize().map_err(io_err(dir))?.as_os_str().as_encoded_bytes());
    for f in ["go.mod", "go.sum", "vendor/modules.txt", "pkg/version/version.go"] {
        h.update(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    Ok(hex::encode(&h.finalize()[..6]))
}

/// Unpacks a `.tar.gz` of source into `dest`: plain files and directories
/// only, relative names without `..`, bounded in size and count.
pub fn unpack_tar_gz(data: &[u8], dest: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let (mut total, mut count) = (0u64, 0usize);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("not a readable .tar.gz: {e}"))?;
        count += 1;
        if count > MAX_SOURCE_ENTRIES {
            return Err(format!("more than {MAX_SOURCE_ENTRIES} entries"));
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(format!("refusing the entry {}: not a plain relative path", path.display()));
        }
        let to = dest.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&to).map_err(|e| e.to_string())?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(|e| e.to_string())?;
                total = total.saturating_add(size);
                if total > MAX_SOURCE_BYTES {
                    return Err(format!("more than {MAX_SOURCE_BYTES} bytes unpacked"));
                }
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
                (&mut entry).take(size).read_to_end(&mut data).map_err(|e| e.to_string())?;
                std::fs::write(&to, &data).map_err(|e| format!("{}: {e}", to.display()))?;
            }
            // pax and GNU long-name headers are read by the tar crate itself.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => return Err(format!("refusing the entry {} of type {other:?}", path.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_in_and_out_of_range() {
        assert_eq!(go_minor("go1.27.3"), Some(27));
        assert_eq!(go_minor("go1.28rc1"), Some(28));
        assert_eq!(go_minor("devel go1.29-abc"), None);
        assert!(check_go("1.27.1", (25, 27), "go1.25.0").is_ok());
        assert!(check_go("1.27.1", (25, 27), "go1.27.3").is_ok());
        let e = check_go("1.27.1", (25, 27), "go1.28.0").unwrap_err().to_string();
        assert!(e.contains("delve 1.27.1 supports Go 1.25–1.27, but the Go toolchain is go1.28.0"), "{e}");
        assert!(check_go("1.27.1", (25, 27), "go1.24.9").is_err());
    }

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Names are set raw so that hostile ones get through the builder.
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn source_archives_unpack_only_plain_relative_files() {
        let d = tempfile::tempdir().unwrap();
        let ok = tar_gz(&[
            ("delve/", tar::EntryType::Directory, b""),
            ("delve/go.mod", tar::EntryType::Regular, b"module github.com/go-delve/delve\n"),
        ]);
        unpack_tar_gz(&ok, d.path()).unwrap();
        assert_eq!(source_root(d.path()), Some(d.path().join("delve")));
        for (name, kind) in [
            ("../escape", tar::EntryType::Regular),
            ("/abs", tar::EntryType::Regular),
            ("a/../../b", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("dev", tar::EntryType::Char),
        ] {
            let out = tempfile::tempdir().unwrap();
            let err = unpack_tar_gz(&tar_gz(&[(name, kind, b"x")]), &out.path().join("in")).unwrap_err();
            assert!(err.contains("refusing"), "{name}: {err}");
            assert!(!out.path().join("escape").exists() && !Path::new("/abs").exists());
        }
        assert!(unpack_tar_gz(b"not gzip", d.path()).is_err());
    }

    #[test]
    fn version_and_go_range_are_read_from_the_source() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("pkg/version")).unwrap();
        std::fs::create_dir_all(d.path().join("pkg/goversion")).unwrap();
        std::fs::write(
            d.path().join("pkg/version/version.go"),
            "var DelveVersion = Version{\n\tMajor: \"1\", Minor: \"27\", Patch: \"1\", Metadata: \"\",\n}\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("pkg/goversion/compat.go"),
            "var (\n\tMinSupportedVersionOfGoMajor = 1\n\tMinSupportedVersionOfGoMinor = 25\n\tMaxSupportedVersionOfGoMinor = 27\n)\n",
        )
        .unwrap();
        assert_eq!(read_version(d.path()).as_deref(), Some("1.27.1"));
        assert_eq!(read_go_range(d.path()), Some((25, 27)));
    }
}
