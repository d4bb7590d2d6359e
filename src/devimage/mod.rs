//! The dev variant of an image: what `gohot dev` needs inside the container
//! before the first hot reload. [`DevBuilder`] wraps the production
//! [`GoBuilder`] (as ko's caching builder wraps another builder) and hands
//! it a [`Variant`] with:
//!
//! - watchexec, the supervisor that restarts the app when its binary changes,
//!   goes into the package's kodata (as the Skaffold ko proposal has it, with
//!   a `.gitignore` entry) so it lands at `/var/run/ko/watchexec`;
//! - the way-in helper ([`crate::wayin`]), built by the user's Go
//!   toolchain for the image's platform, goes into its own layer at
//!   `/var/run/gohot/helper`;
//! - `/ko-app` and kodata's directories are made writable for any uid (see
//!   [`crate::builder::image`]) so a non-root app (gohot's and ko's default
//!   base runs as 65532) can receive a new binary and kodata files.
//!
//! Dev builds also link without DWARF and symbol table (`-s -w`) unless
//! `--dwarf` or `--debug`: smaller binaries build, delta and restart faster,
//! and Go panics keep their stack traces (they use pclntab, not DWARF).
//!
//! `--debug` ([`DevTools::delve`]) adds delve at [`crate::layout::DELVE_PATH`]
//! ([`delve`]: built for the image's platform) and builds the app as a
//! debugger needs it: `-gcflags=all=-N -l` (no optimisation, no inlining)
//! and DWARF kept, uncompressed so that deltas stay small.

pub mod delve;
pub mod helper;
pub mod watchexec;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::Digest as _;

use async_trait::async_trait;

use crate::builder::go::{GoToolchain, Package};
use crate::builder::layer::{self, Entry};
use crate::builder::{Build, BuildError, Built, GoBuilder, Variant};
use crate::platform::Platform;
use crate::wayin::WayInError;
use watchexec::{EnsureOptions, WatchexecError};

/// Errors preparing the dev image's tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevImageError {
    /// watchexec could not be had.
    #[error(transparent)]
    Watchexec(#[from] WatchexecError),
    /// The helper could not be built.
    #[error("building the gohot helper: {0}")]
    Helper(#[from] WayInError),
    /// Delve could not be had (`--debug`).
    #[error(transparent)]
    Delve(#[from] delve::DelveError),
    /// A dev image holds one watchexec, so one platform.
    #[error("a dev image is for one platform, got {0}: pass --platform with one value")]
    MultiPlatform(String),
    /// Reading a built file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where dev tools come from.
#[derive(Clone, Debug, Default)]
pub struct DevTools {
    /// A local watchexec binary to use instead of downloading (`--watchexec`).
    pub watchexec: Option<PathBuf>,
    /// watchexec version to download (default: the pinned one).
    pub watchexec_version: Option<String>,
    /// Download base URL (mirrors, restricted networks).
    pub watchexec_base_url: Option<String>,
    /// Keep DWARF (for debuggers) instead of `-s -w`.
    pub debug: bool,
    /// `--debug`: delve in the image, from here, and a build for debugging.
    pub delve: Option<delve::DelveSource>,
}

impl DevTools {
    /// Linker flags dev builds add.
    pub fn ldflags(&self) -> &'static str {
        // Uncompressed DWARF keeps binaries debuggable and deltas small.
        if self.debug || self.delve.is_some() {
            "-compressdwarf=false"
        } else {
            "-s -w"
        }
    }

    /// `go build` flags dev builds add: under `--debug`, no optimisation
    /// and no inlining anywhere, so that every line and variable is there.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec!["-buildvcs=false".to_string()];
        if self.delve.is_some() {
            flags.push("-gcflags=all=-N -l".into());
        }
        flags
    }
}

/// Builds dev images: the production build plus watchexec, the way-in
/// helper and dev linker flags. One platform (a dev image holds one watchexec).
pub struct DevBuilder {
    inner: GoBuilder,
    tools: DevTools,
}

impl DevBuilder {
    /// Wraps `inner`.
    pub fn new(inner: GoBuilder, tools: DevTools) -> Self {
        DevBuilder { inner, tools }
    }

    /// The same, building for a debugger with delve in the image (`--debug`).
    pub fn with_delve(mut self, source: delve::DelveSource) -> Self {
        self.tools.delve = Some(source);
        self
    }

    /// The production builder underneath (package lookup, platforms, cache).
    pub fn inner(&self) -> &GoBuilder {
        &self.inner
    }

    /// The linker flags dev builds add.
    pub fn ldflags(&self) -> Vec<String> {
        vec![self.tools.ldflags().to_string()]
    }

    /// The one platform of the dev image.
    pub fn platform(&self) -> Result<Platform, BuildError> {
        let platforms = self.inner.platforms()?;
        match platforms.as_slice() {
            [p] => Ok(p.clone()),
            _ => {
                let list: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
                Err(BuildError::Variant(Box::new(DevImageError::MultiPlatform(list.join(",")))))
            }
        }
    }

    /// What a dev build adds to the production one: no VCS stamping (a
    /// dev binary is never shipped, and stamping runs git on every build)
    /// and the dev compiler and linker flags.
    fn variant(&self) -> Variant {
        Variant { flags: self.tools.flags(), ldflags: self.ldflags(), layers: Vec::new(), dev: true }
    }

    /// Whether the image runs the app under delve (`--debug`).
    pub fn debug(&self) -> bool {
        self.tools.delve.is_some()
    }

    /// Compiles the dev binary of `pkg` for `platform`; its path.
    pub async fn compile(&self, pkg: &Package, requested: &str, platform: &Platform) -> Result<PathBuf, BuildError> {
        self.inner.compile(pkg, requested, platform, &self.variant()).await
    }
}

#[async_trait]
impl Build for DevBuilder {
    async fn build(&self, package: &str) -> Result<Built, BuildError> {
        let pkg = self.inner.package(package).await?;
        let platform = self.platform()?;
        let helper =
            prepare(self.inner.go(), &pkg.dir.join("kodata"), &platform, &self.tools, &self.inner.cache_root())
                .await
                .map_err(|e| BuildError::Variant(Box::new(e)))?;
        let variant = Variant { layers: vec![helper], ..self.variant() };
        self.inner.build_variant(pkg, package, &variant).await
    }
}

/// Ensures watchexec is in `kodata_dir` and the helper is built for
/// `platform`; returns the extra layer holding the helper.
pub async fn prepare(
    go: &GoToolchain,
    kodata_dir: &Path,
    platform: &Platform,
    tools: &DevTools,
    cache_root: &Path,
) -> Result<Vec<Entry>, DevImageError> {
    let mut opts = EnsureOptions::new(kodata_dir, platform.arch.clone());
    opts.local_binary = tools.watchexec.clone();
    if let Some(v) = &tools.watchexec_version {
        opts.version = v.clone();
    }
    opts.base_url = tools.watchexec_base_url.clone();
    opts.store = Some(cache_root.join("watchexec"));
    let bar = BarProgress(crate::progress::bytes(0, "downloading watchexec"));
    watchexec::ensure_watchexec(&opts, &bar).await?;

    let helper = helper_binary(go, platform, cache_root).await?;
    let data = std::fs::read(&helper).map_err(|source| DevImageError::Io { path: helper.clone(), source })?;
    let mut entries = layer::with_parents("var/run/gohot", 0o755);
    entries.push(Entry::file(crate::layout::HELPER_PATH.trim_start_matches('/'), 0o755, Bytes::from(data)));
    entries.extend(personality_links());
    if let Some(source) = &tools.delve {
        let dlv = delve::ensure_delve(go, platform, source, cache_root).await?;
        let data = std::fs::read(&dlv).map_err(|source| DevImageError::Io { path: dlv.clone(), source })?;
        entries.push(Entry::file(crate::layout::DELVE_PATH.trim_start_matches('/'), 0o755, Bytes::from(data)));
    }
    Ok(entries)
}

/// `tar` and `rm` in [`crate::layout::DEV_BIN_DIR`], relative symlinks to
/// the helper, which answers under those names: Skaffold's and Tilt's file
/// syncs (`tar xmf - -C / --no-same-owner`, `tar -C / -x -f -`, `rm -rf`)
/// then work on a base with no shell and no tar, for any uid, and write
/// each file atomically.
pub fn personality_links() -> Vec<Entry> {
    let dir = crate::layout::DEV_BIN_DIR.trim_start_matches('/');
    let helper = crate::layout::HELPER_PATH.rsplit('/').next().unwrap_or("helper");
    let mut entries = vec![Entry::dir(dir, 0o755)];
    for name in crate::layout::DEV_BIN_NAMES {
        entries.push(Entry {
            path: format!("{dir}/{name}"),
            mode: 0o777,
            uid: 0,
            gid: 0,
            kind: layer::EntryKind::Symlink(format!("../{helper}")),
        });
    }
    entries
}

/// The helper for a platform, built once per helper source and cached.
pub async fn helper_binary(go: &GoToolchain, platform: &Platform, cache_root: &Path) -> Result<PathBuf, DevImageError> {
    // Every embedded source file (named, length-prefixed) and the go.mod.
    let mut sources = sha2::Sha256::new();
    for (name, text) in helper::HELPER_GO_FILES.iter().copied().chain([("go.mod", helper::HELPER_GO_MOD)]) {
        sources.update(format!("{name}\0{}\0{text}", text.len()));
    }
    let source_id = hex::encode(&sources.finalize()[..8]);
    let out = cache_root.join("helper").join(source_id).join(platform.cache_path()).join("helper");
    if out.is_file() {
        return Ok(out);
    }
    let arch = match &platform.variant {
        Some(v) => format!("{}/{v}", platform.arch),
        None => platform.arch.clone(),
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DevImageError::Io { path: dir.to_path_buf(), source })?;
    }
    let (go, target) = (go.path().to_path_buf(), out.clone());
    tokio::task::spawn_blocking(move || helper::build_helper(&go, &arch, &target))
        .await
        .map_err(|e| DevImageError::Io { path: out.clone(), source: std::io::Error::other(e) })??;
    Ok(out)
}

/// Drives an indicatif bar from watchexec's download progress.
struct BarProgress(indicatif::ProgressBar);

impl watchexec::Progress for BarProgress {
    fn set_len(&self, len: u64) {
        self.0.set_length(len);
    }
    fn inc(&self, delta: u64) {
        self.0.inc(delta);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
