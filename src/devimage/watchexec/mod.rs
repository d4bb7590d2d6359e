//! watchexec in kodata: fetch, verify, unpack (or copy a local build), record.
//!
//! This module owns one thing: making `<kodata>/watchexec` a verified, static
//! Linux watchexec for the target architecture, so that the dev image (which
//! ships kodata at `/var/run/ko`) can supervise the app at
//! `/var/run/ko/watchexec`. It is the only code in gohot that downloads a
//! third-party binary, so it is deliberately strict:
//!
//! * The asset is the official static musl build,
//!   `watchexec-<version>-<triple>-unknown-linux-musl.tar.xz`: it runs on any base,
//!   including ko's default static base (no libc, no shell).
//! * The archive is checked against the release's own `SHA256SUMS` (lines written by
//!   `sha256sum watchexec-*`, i.e. `<hex>  <file name>`) before it is opened.
//! * Only the `watchexec-<version>-<triple>/watchexec` entry is taken. An archive with
//!   any `..` or absolute entry, a link where the binary should be, two binaries, or a
//!   binary over the size limit is refused as a whole; the binary must be an ELF
//!   executable for the target machine without a dynamic loader.
//! * Everything is downloaded, verified and unpacked in memory first; kodata is touched
//!   only once all checks passed, and then only by atomic renames (temp file in kodata,
//!   fsync, `chmod 0755`, rename). A failed check therefore leaves kodata exactly as it
//!   was: no temp file, no `.gitignore` change.
//! * After a successful install, `<kodata>/.watchexec.sha256` records the binary's
//!   sha256 and where it came from. A later call that finds the binary matching that
//!   record (same version and target, or the same local file) downloads nothing.
//! * `<kodata>/.gitignore` gets `watchexec` and `.watchexec.sha256` lines (created or
//!   appended, idempotent, existing lines never rewritten).
//! * With a store ([`EnsureOptions::store`]: `<gohot cache>/watchexec/`), the
//!   verified binary is kept there once, named by its sha256, and
//!   `<kodata>/watchexec` is a hard link to it where the filesystem allows
//!   (else a copy): the 18 MB are on disk once however many packages are
//!   developed. gohot only ever replaces the link (atomic rename), never
//!   writes through it.
//!
//! The xz decoder is `lzma-rust2`: pure Rust (no C toolchain when cross-compiling gohot,
//! no bundled liblzma), actively maintained (unlike `lzma-rs`, whose last release is
//! from 2023), and it has a decoder memory limit, which a download must have.
//!
//! No printing: progress goes through the [`Progress`] trait so that the CLI can drive
//! an indicatif bar.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The watchexec release gohot pins by default (overridable per call).
pub const DEFAULT_VERSION: &str = "2.8.0";

/// Release download base URL; `{version}` is replaced by the version.
pub const DEFAULT_BASE_URL: &str = "https://github.com/watchexec/watchexec/releases/download/v{version}/";

use crate::builder::kodata::{Record, GITIGNORE_LINES};
use crate::builder::kodata::{BINARY_NAME, RECORD_NAME};

mod verify;
use verify::{check_elf, checksum_for, extract_binary};

/// Name of the checksum file in a release.
pub const SUMS_NAME: &str = "SHA256SUMS";

/// Default cap on the unpacked binary (the static 2.x build is about 18 MB).
pub const DEFAULT_MAX_BINARY_SIZE: u64 = 64 << 20;

/// Default cap on the downloaded archive.
pub const DEFAULT_MAX_ARCHIVE_SIZE: u64 = 64 << 20;

/// Cap on the size of `SHA256SUMS` (the real one is a few KiB).
const MAX_SUMS_SIZE: u64 = 1 << 20;

/// Memory the xz decoder may use, in KiB (xz -9 needs 65 MiB).
const XZ_MEM_LIMIT_KB: u32 = 128 << 10;

/// Something went wrong while providing watchexec; kodata is unchanged unless
/// the variant says otherwise (only [`WatchexecError::Io`] can happen after writing began).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchexecError {
    /// No static watchexec release exists for this GOARCH.
    #[error(
        "watchexec publishes no static (musl) Linux build for GOARCH {goarch:?} \
         (there are builds for amd64, arm64 and 386); pass --watchexec PATH with a \
         static linux/{goarch} watchexec"
    )]
    UnsupportedArch {
        /// The GOARCH asked for.
        goarch: String,
    },
    /// The version string cannot be part of a release file name.
    #[error("invalid watchexec version {version:?}: expected something like {DEFAULT_VERSION}")]
    InvalidVersion {
        /// The version asked for.
        version: String,
    },
    /// The HTTP client could not be built (usually: no rustls crypto provider installed).
    #[error("cannot set up the HTTP client to download watchexec: {source}")]
    Client {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The request failed before a response arrived.
    #[error(
        "cannot download {url}: {source}; check the network, or point \
         --watchexec-url (GOHOT_WATCHEXEC_URL) at a reachable mirror of watchexec's \
         release files, or use a static watchexec you have: --watchexec PATH \
         (GOHOT_WATCHEXEC=PATH)"
    )]
    Request {
        /// What was requested.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error(
        "downloading {url} failed with HTTP {status}; check the watchexec version \
         ({version}) and --watchexec-url (GOHOT_WATCHEXEC_URL), or use a static \
         watchexec you have: --watchexec PATH (GOHOT_WATCHEXEC=PATH)"
    )]
    HttpStatus {
        /// What was requested.
        url: String,
        /// The status received.
        status: u16,
        /// The version asked for.
        version: String,
    },
    /// The body is larger than allowed.
    #[error("{url} is larger than the {limit}-byte limit; refusing to download it")]
    TooLarge {
        /// What was requested.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The body ended before its announced length.
    #[error(
        "download of {url} was cut short: got {received} of {expected} bytes; \
         nothing was written, run the command again"
    )]
    Truncated {
        /// What was requested.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced by Content-Length.
        expected: u64,
    },
    /// Reading the body failed part way.
    #[error(
        "download of {url} failed after {received} bytes: {source}; nothing was \
         written, run the command again"
    )]
    Interrupted {
        /// What was requested.
        url: String,
        /// Bytes received before the failure.
        received: u64,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// `SHA256SUMS` has no line for the asset.
    #[error(
        "{sums_url} lists no checksum for {asset}; the release may not have this \
         build, or the mirror (--watchexec-url, GOHOT_WATCHEXEC_URL) is incomplete; \
         or use a static watchexec you have: --watchexec PATH (GOHOT_WATCHEXEC=PATH). \
         Nothing was written"
    )]
    MissingChecksum {
        /// Where the sums came from.
        sums_url: String,
        /// The asset looked for.
        asset: String,
    },
    /// `SHA256SUMS` has two different checksums for the asset.
    #[error("{sums_url} lists conflicting checksums for {asset}; refusing to trust it")]
    ConflictingChecksums {
        /// Where the sums came from.
        sums_url: String,
        /// The asset looked for.
        asset: String,
    },
    /// The archive's sha256 differs from `SHA256SUMS`.
    #[error(
        "checksum mismatch for {url}: SHA256SUMS says {expected}, the download is \
         {actual}; the download is corrupt or was tampered with. Nothing was written; \
         retry, or check the mirror (--watchexec-url, GOHOT_WATCHEXEC_URL)"
    )]
    ChecksumMismatch {
        /// The archive's URL.
        url: String,
        /// The sha256 from SHA256SUMS.
        expected: String,
        /// The sha256 of what was downloaded.
        actual: String,
    },
    /// The archive is not a valid tar.xz.
    #[error("cannot unpack {asset}: {source}; nothing was written")]
    Unpack {
        /// The archive's file name.
        asset: String,
        /// The decoder's or tar reader's error.
        #[source]
        source: io::Error,
    },
    /// The archive contains an entry gohot refuses to handle.
    #[error("refusing {asset}: entry {entry:?} {reason}; nothing was written")]
    HostileArchive {
        /// The archive's file name.
        asset: String,
        /// The offending entry's path as stored.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive has no watchexec binary where the release layout puts it.
    #[error("{asset} has no {expected} entry; nothing was written")]
    MissingBinary {
        /// The archive's file name.
        asset: String,
        /// The entry looked for.
        expected: String,
    },
    /// The binary is over the size limit.
    #[error("{what} is {size} bytes, over the {limit}-byte limit; nothing was written")]
    BinaryTooLarge {
        /// Which binary.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The binary is not an ELF executable gohot can use.
    #[error("{what} is not a Linux ELF executable ({reason}); nothing was written")]
    NotElf {
        /// Which binary.
        what: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The binary is for another CPU.
    #[error(
        "{what} is built for {found}, but the image is linux/{goarch}; use a \
         watchexec built for linux/{goarch}. Nothing was written"
    )]
    WrongMachine {
        /// Which binary.
        what: String,
        /// The machine found in its ELF header.
        found: String,
        /// The GOARCH wanted.
        goarch: String,
    },
    /// The binary needs a dynamic loader (a libc) that static bases lack.
    #[error(
        "{what} is dynamically linked and will not start on ko's static base; \
         use a static build (the official *-unknown-linux-musl release, or \
         RUSTFLAGS='-C target-feature=+crt-static' cargo install watchexec-cli). \
         Nothing was written"
    )]
    DynamicBinary {
        /// Which binary.
        what: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal error while {action}: {source}")]
    Task {
        /// What was being done.
        action: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

type Result<T, E = WatchexecError> = std::result::Result<T, E>;

/// Download progress sink (the CLI implements it with an indicatif bar).
///
/// Called only when something is actually downloaded; `set_len` may not be
/// called when the server sends no length.
pub trait Progress: Send + Sync {
    /// The total number of bytes about to be downloaded.
    fn set_len(&self, len: u64);
    /// `delta` more bytes arrived.
    fn inc(&self, delta: u64);
    /// The download is over (successfully or not).
    fn finish(&self);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_len(&self, _len: u64) {}
    fn inc(&self, _delta: u64) {}
    fn finish(&self) {}
}

/// What [`ensure_watchexec`] should provide, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EnsureOptions {
    /// The kodata directory (created if missing, only once everything checked out).
    pub kodata: PathBuf,
    /// Target GOARCH (`amd64`, `arm64`, `386`).
    pub goarch: String,
    /// watchexec release version, without a leading `v`.
    pub version: String,
    /// Base URL the asset and `SHA256SUMS` are fetched from; `None` for the
    /// official release (see [`default_base_url`]). `{version}` is substituted.
    pub base_url: Option<String>,
    /// `--watchexec PATH`: copy this binary instead of downloading.
    pub local_binary: Option<PathBuf>,
    /// Largest binary accepted.
    pub max_binary_size: u64,
    /// Largest archive downloaded.
    pub max_archive_size: u64,
    /// HTTP client to use (proxy settings, timeouts); `None` builds one, which
    /// needs a process-wide rustls crypto provider to be installed.
    pub client: Option<reqwest::Client>,
    /// A directory where the verified binary is kept once, by sha256, and
    /// hard-linked into kodata where the filesystem allows; `None` copies.
    pub store: Option<PathBuf>,
}

impl EnsureOptions {
    /// Defaults: the pinned [`DEFAULT_VERSION`], the official base URL, no local binary.
    pub fn new(kodata: impl Into<PathBuf>, goarch: impl Into<String>) -> Self {
        EnsureOptions {
            kodata: kodata.into(),
            goarch: goarch.into(),
            version: DEFAULT_VERSION.to_owned(),
            base_url: None,
            local_binary: None,
            max_binary_size: DEFAULT_MAX_BINARY_SIZE,
            max_archive_size: DEFAULT_MAX_ARCHIVE_SIZE,
            client: None,
            store: None,
        }
    }
}

/// The Rust target triple of watchexec's static release build for a GOARCH.
pub fn musl_triple(goarch: &str) -> Result<&'static str> {
    match goarch {
        "amd64" => Ok("x86_64-unknown-linux-musl"),
        "arm64" => Ok("aarch64-unknown-linux-musl"),
        "386" => Ok("i686-unknown-linux-musl"),
        other => Err(WatchexecError::UnsupportedArch { goarch: other.to_owned() }),
    }
}

/// The official release asset name, e.g. `watchexec-2.8.0-x86_64-unknown-linux-musl.tar.xz`.
pub fn asset_name(version: &str, goarch: &str) -> Result<String> {
    check_version(version)?;
    Ok(format!("{}.tar.xz", top_dir(version, musl_triple(goarch)?)))
}

/// The official download base URL for a version (ends with `/`).
pub fn default_base_url(version: &str) -> String {
    DEFAULT_BASE_URL.replace("{version}", version)
}

/// Make `<kodata>/watchexec` a verified watchexec for `opts.goarch` and return its path.
///
/// Downloads nothing when the binary already matches its record for the same
/// version and target (or the same local binary). See the module docs for the checks.
pub async fn ensure_watchexec(opts: &EnsureOptions, progress: &dyn Progress) -> Result<PathBuf> {
    let dest = opts.kodata.join(BINARY_NAME);
    match &opts.local_binary {
        Some(src) => ensure_local(opts, src.clone()).await?,
        None => ensure_download(opts, progress).await?,
    }
    Ok(dest)
}

fn release_origin(version: &str, triple: &str) -> String {
    format!("release {version} {triple}")
}

async fn ensure_download(opts: &EnsureOptions, progress: &dyn Progress) -> Result<()> {
    let asset = asset_name(&opts.version, &opts.goarch)?;
    let triple = musl_triple(&opts.goarch)?;
    let origin = release_origin(&opts.version, triple);
    if blocking("checking the installed watchexec", {
        let kodata = opts.kodata.clone();
        let origin = origin.clone();
        move || installed_matches(&kodata, &origin, None)
    })
    .await??
    {
        return Ok(());
    }

    let client = match &opts.client {
        Some(c) => c.clone(),
        None => default_client()?,
    };
    let mut base = match &opts.base_url {
        Some(b) => b.replace("{version}", &opts.version),
        None => default_base_url(&opts.version),
    };
    if !base.ends_with('/') {
        base.push('/');
    }
    let sums_url = format!("{base}{SUMS_NAME}");
    let asset_url = format!("{base}{asset}");

    let sums = fetch(&client, &sums_url, MAX_SUMS_SIZE, &opts.version, &NoProgress).await?;
    let expected = checksum_for(&String::from_utf8_lossy(&sums), &asset).map_err(|conflict| {
        if conflict {
            WatchexecError::ConflictingChecksums { sums_url: sums_url.clone(), asset: asset.clone() }
        } else {
            WatchexecError::MissingChecksum { sums_url: sums_url.clone(), asset: asset.clone() }
        }
    })?;

    let archive = fetch(&client, &asset_url, opts.max_archive_size, &opts.version, progress).await?;
    let actual = hex::encode(Sha256::digest(&archive));
    if actual != expected {
        return Err(WatchexecError::ChecksumMismatch { url: asset_url, expected, actual });
    }

    let version = opts.version.clone();
    let goarch = opts.goarch.clone();
    let kodata = opts.kodata.clone();
    let store = opts.store.clone();
    let max = opts.max_binary_size;
    blocking("unpacking watchexec", move || {
        let binary = extract_binary(&archive, &asset, &top_dir(&version, triple), max)?;
        check_elf(&binary, &goarch, &format!("watchexec from {asset}"))?;
        install(&kodata, &binary, &origin, store.as_deref())
    })
    .await?
}

async fn ensure_local(opts: &EnsureOptions, src: PathBuf) -> Result<()> {
    let kodata = opts.kodata.clone();
    let store = opts.store.clone();
    let goarch = opts.goarch.clone();
    let max = opts.max_binary_size;
    blocking("copying the local watchexec", move || {
        let what = format!("watchexec at {}", src.display());
        let io_err = |source| WatchexecError::Io { action: "read", path: src.clone(), source };
        let meta = fs::metadata(&src).map_err(io_err)?;
        if !meta.is_file() {
            return Err(WatchexecError::NotElf { what, reason: "not a regular file" });
        }
        if meta.len() > max {
            return Err(WatchexecError::BinaryTooLarge { what, size: meta.len(), limit: max });
        }
        let mut binary = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        fs::File::open(&src).and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut binary)).map_err(io_err)?;
        if binary.len() as u64 > max {
            return Err(WatchexecError::BinaryTooLarge { what, size: binary.len() as u64, limit: max });
        }
        check_elf(&binary, &goarch, &what)?;
        let sha = hex::encode(Sha256::digest(&binary));
        if installed_matches(&kodata, "local", Some(&sha))? {
            return Ok(());
        }
        install(&kodata, &binary, "local", store.as_deref())
    })
    .await?
}

async fn blocking<T: Send + 'static>(action: &'static str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|source| WatchexecError::Task { action, source })
}

fn default_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| WatchexecError::Client { source })
}

/// GET `url` into memory, refusing more than `limit` bytes or a short body.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    limit: u64,
    version: &str,
    progress: &dyn Progress,
) -> Result<Vec<u8>> {
    let resp =
        client.get(url).send().await.map_err(|source| WatchexecError::Request { url: url.to_owned(), source })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(WatchexecError::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
            version: version.to_owned(),
        });
    }
    let expected = resp.content_length();
    if let Some(len) = expected {
        if len > limit {
            return Err(WatchexecError::TooLarge { url: url.to_owned(), limit });
        }
        progress.set_len(len);
    }
    let mut body = Vec::with_capacity(expected.and_then(|l| usize::try_from(l).ok()).unwrap_or(0));
    let mut stream = resp.bytes_stream();
    let outcome = loop {
        match stream.next().await {
            None => break Ok(()),
            Some(Err(source)) => {
                let received = body.len() as u64;
                break Err(match expected {
                    // The connection closed before Content-Length bytes arrived.
                    Some(expected) if received < expected => {
                        WatchexecError::Truncated { url: url.to_owned(), received, expected }
                    }
                    _ => WatchexecError::Interrupted { url: url.to_owned(), received, source },
                });
            }
            Some(Ok(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    break Err(WatchexecError::TooLarge { url: url.to_owned(), limit });
                }
                body.extend_from_slice(&chunk);
                progress.inc(chunk.len() as u64);
            }
        }
    };
    progress.finish();
    outcome?;
    if let Some(len) = expected {
        if body.len() as u64 != len {
            return Err(WatchexecError::Truncated { url: url.to_owned(), received: body.len() as u64, expected: len });
        }
    }
    Ok(body)
}

fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+')
        && version.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(WatchexecError::InvalidVersion { version: version.to_owned() })
    }
}

fn top_dir(version: &str, triple: &str) -> String {
    format!("watchexec-{version}-{triple}")
}

/// Whether `<kodata>/watchexec` is a regular file whose sha256 matches the record,
/// and the record has `origin` (and `sha`, when given).
fn installed_matches(kodata: &Path, origin: &str, sha: Option<&str>) -> Result<bool> {
    let record_path = kodata.join(RECORD_NAME);
    let record = match fs::read_to_string(&record_path) {
        Ok(text) => Record::parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
        Err(source) => return Err(WatchexecError::Io { action: "read", path: record_path, source }),
    };
    let Some(record) = record else {
        return Ok(false);
    };
    if record.origin != origin || sha.is_some_and(|s| s != record.sha256) {
        return Ok(false);
    }
    let bin = kodata.join(BINARY_NAME);
    match fs::symlink_metadata(&bin) {
        Ok(m) if m.is_file() && is_executable(&m) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(WatchexecError::Io { action: "inspect", path: bin, source }),
    }
    let data = fs::read(&bin).map_err(|source| WatchexecError::Io { action: "read", path: bin, source })?;
    Ok(hex::encode(Sha256::digest(&data)) == record.sha256)
}

#[cfg(unix)]
fn is_executable(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 == 0o111
}

#[cfg(not(unix))]
fn is_executable(_m: &fs::Metadata) -> bool {
    true
}

/// Write the verified binary, its record and the `.gitignore` lines into
/// kodata; the binary as a hard link to its copy in `store` where the
/// filesystem allows, else written.
pub(crate) fn install(kodata: &Path, binary: &[u8], origin: &str, store: Option<&Path>) -> Result<()> {
    fs::create_dir_all(kodata).map_err(|source| WatchexecError::Io {
        action: "create",
        path: kodata.to_owned(),
        source,
    })?;
    let record = Record { sha256: hex::encode(Sha256::digest(binary)), origin: origin.to_owned() };
    let linked = match store {
        Some(store) => link_from_store(store, &record.sha256, binary, kodata)?,
        None => false,
    };
    if !linked {
        write_atomic(kodata, BINARY_NAME, binary, 0o755)?;
    }
    write_atomic(kodata, RECORD_NAME, record.render().as_bytes(), 0o644)?;
    ensure_gitignore(kodata)?;
    Ok(())
}

/// Makes `<kodata>/watchexec` a hard link to `<store>/sha256-<hex>`
/// (written there first unless it holds exactly `binary`), through a
/// temporary link renamed over it. Returns false, leaving kodata as it was,
/// where the filesystem cannot link (another filesystem, no hard links):
/// the caller copies instead.
fn link_from_store(store: &Path, sha256: &str, binary: &[u8], kodata: &Path) -> Result<bool> {
    let kept = store.join(format!("sha256-{sha256}"));
    let holds_it = fs::read(&kept).is_ok_and(|data| hex::encode(Sha256::digest(&data)) == sha256);
    if !holds_it {
        write_atomic(store, &format!("sha256-{sha256}"), binary, 0o755)?;
    }
    let tmp = kodata.join(format!("{}.{BINARY_NAME}.link.{}", crate::atomic::TEMP_PREFIX, std::process::id()));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(&kept, &tmp).is_err() {
        return Ok(false);
    }
    let dest = kodata.join(BINARY_NAME);
    fs::rename(&tmp, &dest).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        WatchexecError::Io { action: "rename a link into", path: dest, source }
    })?;
    // Renaming a link over another link to the same file does nothing (POSIX): the temporary stays.
    let _ = fs::remove_file(&tmp);
    Ok(true)
}

/// `dir/name` written atomically with `mode` (see [`crate::atomic`]).
fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let dest = dir.join(name);
    crate::atomic::write(&dest, data, Some(mode)).map_err(|source| WatchexecError::Io {
        action: "write atomically",
        path: dest.clone(),
        source,
    })
}

/// Add gohot's lines to `<kodata>/.gitignore` if no equivalent line is there;
/// appends, never rewrites what is there.
fn ensure_gitignore(kodata: &Path) -> Result<()> {
    let path = kodata.join(".gitignore");
    let existing = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(WatchexecError::Io { action: "read", path, source }),
    };
    let text = String::from_utf8_lossy(&existing);
    let present = |want: &str| {
        text.lines().map(|l| l.trim_end_matches('\r').trim()).any(|l| l == want || l.strip_prefix('/') == Some(want))
    };
    let missing: Vec<&str> = GITIGNORE_LINES.iter().copied().filter(|l| !present(l)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut add = String::new();
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        add.push('\n');
    }
    for line in missing {
        add.push_str(line);
        add.push('\n');
    }
    let io_err = |source| WatchexecError::Io { action: "update", path: path.clone(), source };
    let mut f = fs::OpenOptions::new().append(true).create(true).open(&path).map_err(io_err)?;
    f.write_all(add.as_bytes()).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::net::{TcpListener, TcpStream};
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Instant;

    const VERSION: &str = DEFAULT_VERSION;
    const TRIPLE: &str = "x86_64-unknown-linux-musl";

    /// The static watchexec built for the tests (`cargo install` may still be running:
    /// wait for it with a deadline, checking that it runs).
    pub(crate) fn real_watchexec() -> &'static Path {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            let path = PathBuf::from(
                std::env::var("GOHOT_TEST_WATCHEXEC")
                    .unwrap_or_else(|_| "/opt/gohot-watchexec/bin/watchexec".to_owned()),
            );
            let wait = std::env::var("GOHOT_TEST_WATCHEXEC_WAIT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(900);
            let deadline = Instant::now() + Duration::from_secs(wait);
            loop {
                let ok =
                    path.is_file() && Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success());
                if ok {
                    break path;
                }
                assert!(
                    Instant::now() < deadline,
                    "no runnable watchexec at {} after {wait}s: build it with \
                     RUSTFLAGS='-C target-feature=+crt-static' cargo install watchexec-cli --locked \
                     --target x86_64-unknown-linux-gnu --root /opt/gohot-watchexec",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    }

    fn install_crypto() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    // ---------- a loopback HTTP server ----------

    #[derive(Clone)]
    enum Reply {
        Body(Vec<u8>),
        /// Announce the full length, send only the first half, close.
        Truncated(Vec<u8>),
    }

    struct Server {
        addr: std::net::SocketAddr,
        files: Arc<Mutex<HashMap<String, Reply>>>,
        requests: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Server {
        fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let files: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
            let requests = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = std::thread::spawn({
                let (files, requests, stop) = (files.clone(), requests.clone(), stop.clone());
                move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(conn) = conn {
                            let _ = serve_one(conn, &files, &requests);
                        }
                    }
                }
            });
            Server { addr, files, requests, stop, thread: Some(thread) }
        }

        fn base(&self) -> String {
            format!("http://{}/v{VERSION}/", self.addr)
        }

        fn put(&self, name: &str, reply: Reply) {
            self.files.lock().unwrap().insert(format!("/v{VERSION}/{name}"), reply);
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve_one(mut conn: TcpStream, files: &Mutex<HashMap<String, Reply>>, requests: &AtomicUsize) -> io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = files.lock().unwrap().get(&path).cloned();
        match reply {
            None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?,
            Some(Reply::Body(b)) => {
                write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())?;
                conn.write_all(&b)?;
            }
            Some(Reply::Truncated(b)) => {
                write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())?;
                conn.write_all(&b[..b.len() / 2])?;
            }
        }
        conn.flush()?;
        let _ = conn.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    // ---------- archives ----------

    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("gohot-wx-").tempdir().unwrap()
    }

    /// The official layout, packed by the system tar + xz like the release workflow does.
    fn official_archive(binary: &Path) -> Vec<u8> {
        static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
        ARCHIVE
            .get_or_init(|| {
                let work = tempdir();
                let top = work.path().join(top_dir(VERSION, TRIPLE));
                fs::create_dir_all(top.join("completions")).unwrap();
                fs::copy(binary, top.join("watchexec")).unwrap();
                fs::write(top.join("README.md"), "# watchexec\n").unwrap();
                fs::write(top.join("LICENSE"), "Apache-2.0\n").unwrap();
                fs::write(top.join("completions/bash"), "complete -F _watchexec watchexec\n").unwrap();
                fs::write(top.join("watchexec.1"), ".TH WATCHEXEC 1\n").unwrap();
                let name = format!("{}.tar.xz", top_dir(VERSION, TRIPLE));
                let status = Command::new("tar")
                    .current_dir(work.path())
                    .args(["-caf", &name, &top_dir(VERSION, TRIPLE)])
                    .status()
                    .unwrap();
                assert!(status.success(), "tar -caf failed");
                fs::read(work.path().join(name)).unwrap()
            })
            .clone()
    }

    enum Evil {
        Entry { raw_path: &'static [u8], data: Vec<u8> },
        Symlink { raw_path: &'static [u8], target: &'static str },
        Hardlink { raw_path: &'static [u8], target: &'static str },
    }

    /// A tar.xz built by hand (the tar crate's safe setters refuse these paths).
    fn evil_archive(entries: &[Evil]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            let (raw, kind, data, link): (&[u8], _, &[u8], Option<&str>) = match e {
                Evil::Entry { raw_path, data } => (raw_path, tar::EntryType::Regular, data, None),
                Evil::Symlink { raw_path, target } => (raw_path, tar::EntryType::Symlink, &[], Some(target)),
                Evil::Hardlink { raw_path, target } => (raw_path, tar::EntryType::Link, &[], Some(target)),
            };
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if let Some(t) = link {
                h.set_link_name(t).unwrap();
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
        w.write_all(&tar).unwrap();
        w.finish().unwrap()
    }

    fn sums_line(name: &str, data: &[u8]) -> String {
        format!("{}  {name}\n", hex::encode(Sha256::digest(data)))
    }

    /// A realistic SHA256SUMS with other assets around ours.
    fn sums_for(name: &str, data: &[u8]) -> Vec<u8> {
        let mut s = String::new();
        s += &sums_line(&format!("watchexec-{VERSION}-aarch64-unknown-linux-musl.tar.xz"), b"other");
        s += &sums_line(&format!("watchexec-{VERSION}-x86_64-unknown-linux-gnu.tar.xz"), b"gnu");
        s += &sums_line(name, data);
        s += &sums_line(&format!("watchexec-{VERSION}-{TRIPLE}.deb"), b"deb");
        s.into_bytes()
    }

    fn asset() -> String {
        asset_name(VERSION, "amd64").unwrap()
    }

    fn opts(server: &Server, kodata: &Path) -> EnsureOptions {
        let mut o = EnsureOptions::new(kodata, "amd64");
        o.base_url = Some(server.base());
        o
    }

    /// Everything under `dir`: relative path → (mode, contents).
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd {
                let p = e.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    stack.push(p.clone());
                }
                let data = if m.is_file() { fs::read(&p).unwrap() } else { Vec::new() };
                out.insert(p.strip_prefix(dir).unwrap().to_owned(), (m.permissions().mode(), data));
            }
        }
        out
    }

    /// A kodata with the user's own files in it.
    fn user_kodata() -> tempfile::TempDir {
        let dir = tempdir();
        fs::write(dir.path().join("index.html"), "<h1>hi</h1>\n").unwrap();
        fs::write(dir.path().join(".gitignore"), "*.tmp\n# mine").unwrap();
        dir
    }

    #[derive(Default)]
    struct Counting {
        len: AtomicUsize,
        got: AtomicUsize,
        finished: AtomicBool,
    }
    impl Progress for Counting {
        fn set_len(&self, len: u64) {
            self.len.store(len as usize, Ordering::SeqCst);
        }
        fn inc(&self, delta: u64) {
            self.got.fetch_add(delta as usize, Ordering::SeqCst);
        }
        fn finish(&self) {
            self.finished.store(true, Ordering::SeqCst);
        }
    }

    // ---------- tests ----------

    #[test]
    fn asset_names_follow_the_release() {
        assert_eq!(asset_name("2.8.0", "amd64").unwrap(), "watchexec-2.8.0-x86_64-unknown-linux-musl.tar.xz");
        assert_eq!(asset_name("2.8.0", "arm64").unwrap(), "watchexec-2.8.0-aarch64-unknown-linux-musl.tar.xz");
        assert_eq!(asset_name("2.8.0", "386").unwrap(), "watchexec-2.8.0-i686-unknown-linux-musl.tar.xz");
        let err = asset_name("2.8.0", "riscv64").unwrap_err();
        assert!(err.to_string().contains("--watchexec PATH"), "{err}");
        assert!(matches!(asset_name("../x", "amd64"), Err(WatchexecError::InvalidVersion { .. })));
        assert_eq!(default_base_url("2.8.0"), "https://github.com/watchexec/watchexec/releases/download/v2.8.0/");
    }

    #[test]
    fn sha256sums_parsing() {
        let h1 = "a".repeat(64);
        let h2 = "B".repeat(64);
        let sums = format!("{h1}  x.tar.xz\n{h2} *y.tar.xz\r\n{h1}  x.tar.xz.sig\nnot a line\n");
        assert_eq!(checksum_for(&sums, "x.tar.xz"), Ok(h1.clone()));
        assert_eq!(checksum_for(&sums, "y.tar.xz"), Ok("b".repeat(64)));
        assert_eq!(checksum_for(&sums, "z.tar.xz"), Err(false));
        let conflict = format!("{h1}  x.tar.xz\n{}  x.tar.xz\n", "c".repeat(64));
        assert_eq!(checksum_for(&conflict, "x.tar.xz"), Err(true));
    }

    #[test]
    fn kodata_links_to_the_store_and_a_relink_leaves_no_temporary() {
        use std::os::unix::fs::MetadataExt;
        let root = tempdir();
        let store = root.path().join("store");
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let binary = b"\x7fELF not really, install does not check".to_vec();
        install(&a, &binary, "local", Some(&store)).unwrap();
        install(&b, &binary, "local", Some(&store)).unwrap();
        let ino = |d: &Path| fs::metadata(d.join(BINARY_NAME)).unwrap().ino();
        assert_eq!(ino(&a), ino(&b));
        assert_eq!(fs::read(a.join(BINARY_NAME)).unwrap(), binary);
        // Installed again over the same link: nothing but gohot's files in kodata.
        install(&a, &binary, "local", Some(&store)).unwrap();
        let mut names: Vec<_> = fs::read_dir(&a).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [".gitignore", RECORD_NAME, BINARY_NAME]);
        assert_eq!(ino(&a), ino(&b));
    }

    #[test]
    fn gitignore_is_created_appended_and_idempotent() {
        let dir = tempdir();
        ensure_gitignore(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(".gitignore")).unwrap(), "watchexec\n.watchexec.sha256\n");
        ensure_gitignore(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(".gitignore")).unwrap(), "watchexec\n.watchexec.sha256\n");

        let dir = tempdir();
        fs::write(dir.path().join(".gitignore"), "/watchexec\r\nfoo").unwrap();
        ensure_gitignore(dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            "/watchexec\r\nfoo\n.watchexec.sha256\n"
        );
    }

    #[tokio::test]
    async fn downloads_verifies_unpacks_then_downloads_nothing() {
        install_crypto();
        let bin = real_watchexec();
        let archive = official_archive(bin);
        let server = Server::start();
        server.put(&asset(), Reply::Body(archive.clone()));
        server.put(SUMS_NAME, Reply::Body(sums_for(&asset(), &archive)));
        let kodata = user_kodata();

        let progress = Counting::default();
        let path = ensure_watchexec(&opts(&server, kodata.path()), &progress).await.unwrap();
        assert_eq!(path, kodata.path().join("watchexec"));
        assert_eq!(server.requests(), 2, "SHA256SUMS + archive");
        assert_eq!(progress.len.load(Ordering::SeqCst), archive.len());
        assert_eq!(progress.got.load(Ordering::SeqCst), archive.len());
        assert!(progress.finished.load(Ordering::SeqCst));

        assert_eq!(fs::read(&path).unwrap(), fs::read(bin).unwrap(), "the binary is the one packed");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_to_string(kodata.path().join(".gitignore")).unwrap(),
            "*.tmp\n# mine\nwatchexec\n.watchexec.sha256\n"
        );
        let record = fs::read_to_string(kodata.path().join(RECORD_NAME)).unwrap();
        assert!(record.contains(&format!("origin release {VERSION} {TRIPLE}")), "{record}");
        let names: Vec<_> = fs::read_dir(kodata.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 4, "index.html, .gitignore, watchexec, record; no temp files: {names:?}");

        let out = Command::new(&path).arg("--version").output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("watchexec {VERSION}")));

        // Second call: valid copy present, nothing requested, nothing changed.
        let before = snapshot(kodata.path());
        ensure_watchexec(&opts(&server, kodata.path()), &NoProgress).await.unwrap();
        assert_eq!(server.requests(), 2);
        assert_eq!(snapshot(kodata.path()), before);

        // A tampered binary is not a valid copy: downloaded again and repaired.
        fs::write(&path, b"not watchexec").unwrap();
        ensure_watchexec(&opts(&server, kodata.path()), &NoProgress).await.unwrap();
        assert_eq!(server.requests(), 4);
        assert_eq!(fs::read(&path).unwrap(), fs::read(bin).unwrap());
        assert_eq!(snapshot(kodata.path()), before, ".gitignore not appended twice");

        // Another version asked for: the record no longer matches, so it is fetched (404 here).
        let mut other = opts(&server, kodata.path());
        other.version = "2.7.0".into();
        other.base_url = Some(format!("http://{}/v{{version}}/", server.addr));
        let err = ensure_watchexec(&other, &NoProgress).await.unwrap_err();
        assert!(matches!(err, WatchexecError::HttpStatus { status: 404, .. }), "{err}");
        assert_eq!(snapshot(kodata.path()), before);
    }

    /// Run `ensure_watchexec` against a server holding `archive` and `sums`; return the error
    /// after checking that kodata did not change at all.
    async fn refused(archive: Reply, sums: Vec<u8>, tweak: impl FnOnce(&mut EnsureOptions)) -> WatchexecError {
        install_crypto();
        let server = Server::start();
        server.put(&asset(), archive);
        server.put(SUMS_NAME, Reply::Body(sums));
        let kodata = user_kodata();
        let before = snapshot(kodata.path());
        let mut o = opts(&server, kodata.path());
        tweak(&mut o);
        let err = ensure_watchexec(&o, &NoProgress).await.unwrap_err();
        eprintln!("refused: {err}");
        assert_eq!(snapshot(kodata.path()), before, "kodata changed after: {err}");
        // A kodata that does not exist yet is not created either.
        let missing = kodata.path().join("not-yet");
        o.kodata = missing.clone();
        let _ = ensure_watchexec(&o, &NoProgress).await.unwrap_err();
        assert!(!missing.exists());
        err
    }

    #[tokio::test]
    async fn checksum_mismatch_is_refused() {
        let archive = official_archive(real_watchexec());
        let err = refused(Reply::Body(archive), sums_for(&asset(), b"something else"), |_| {}).await;
        assert!(matches!(err, WatchexecError::ChecksumMismatch { .. }), "{err}");
        assert!(err.to_string().contains("Nothing was written"), "{err}");
    }

    #[tokio::test]
    async fn truncated_download_is_refused() {
        let archive = official_archive(real_watchexec());
        let sums = sums_for(&asset(), &archive);
        let err = refused(Reply::Truncated(archive), sums, |_| {}).await;
        assert!(matches!(err, WatchexecError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("run the command again"), "{err}");
    }

    #[tokio::test]
    async fn missing_sums_line_is_refused() {
        let archive = official_archive(real_watchexec());
        let sums = sums_for("watchexec-2.8.0-x86_64-unknown-linux-gnu.tar.xz", &archive);
        let err = refused(Reply::Body(archive), sums, |_| {}).await;
        assert!(matches!(err, WatchexecError::MissingChecksum { .. }), "{err}");
    }

    #[tokio::test]
    async fn oversized_binary_is_refused() {
        let archive = official_archive(real_watchexec());
        let sums = sums_for(&asset(), &archive);
        let err = refused(Reply::Body(archive), sums, |o| o.max_binary_size = 1 << 20).await;
        assert!(matches!(err, WatchexecError::BinaryTooLarge { .. }), "{err}");
    }

    /// The smallest thing `check_elf` accepts: a static x86_64 ELF header, no program headers.
    fn fake_elf() -> Vec<u8> {
        let mut h = vec![0u8; 256];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // 64-bit
        h[5] = 1; // little-endian
        h[6] = 1;
        h[16] = 2; // ET_EXEC
        h[18] = 62; // x86_64
        h[0x20] = 64; // e_phoff
        h[0x36] = 56; // e_phentsize, e_phnum = 0
        h
    }

    #[tokio::test]
    async fn hostile_archives_are_refused() {
        let elf = fake_elf();
        let good: &'static [u8] = b"watchexec-2.8.0-x86_64-unknown-linux-musl/watchexec";
        let cases: Vec<(&str, Vec<Evil>)> = vec![
            ("dotdot", vec![Evil::Entry { raw_path: b"../watchexec", data: elf.clone() }]),
            (
                "dotdot inside",
                vec![
                    Evil::Entry { raw_path: good, data: elf.clone() },
                    Evil::Entry { raw_path: b"watchexec-2.8.0-x86_64-unknown-linux-musl/../../x", data: vec![1] },
                ],
            ),
            ("absolute", vec![Evil::Entry { raw_path: b"/watchexec", data: elf.clone() }]),
            ("symlink binary", vec![Evil::Symlink { raw_path: good, target: "watchexec.real" }]),
            (
                "symlink escaping",
                vec![
                    Evil::Symlink { raw_path: b"watchexec-2.8.0-x86_64-unknown-linux-musl/x", target: "/etc/passwd" },
                    Evil::Entry { raw_path: good, data: elf.clone() },
                ],
            ),
            (
                "hardlink binary",
                vec![
                    Evil::Entry { raw_path: b"watchexec-2.8.0-x86_64-unknown-linux-musl/README.md", data: vec![1] },
                    Evil::Hardlink { raw_path: good, target: "watchexec-2.8.0-x86_64-unknown-linux-musl/README.md" },
                ],
            ),
            (
                "twice",
                vec![
                    Evil::Entry { raw_path: good, data: elf.clone() },
                    Evil::Entry { raw_path: good, data: elf.clone() },
                ],
            ),
            (
                "no binary",
                vec![Evil::Entry { raw_path: b"watchexec-2.8.0-x86_64-unknown-linux-musl/README.md", data: vec![1] }],
            ),
            ("not elf", vec![Evil::Entry { raw_path: good, data: b"#!/bin/sh\necho pwned\n".repeat(10) }]),
        ];
        for (what, entries) in cases {
            let archive = evil_archive(&entries);
            let sums = sums_for(&asset(), &archive);
            let err = refused(Reply::Body(archive), sums, |_| {}).await;
            let ok = match what {
                "no binary" => matches!(err, WatchexecError::MissingBinary { .. }),
                "not elf" => matches!(err, WatchexecError::NotElf { .. }),
                _ => matches!(err, WatchexecError::HostileArchive { .. }),
            };
            assert!(ok, "{what}: {err}");
        }
        // Sanity: the same builder with a clean layout is accepted.
        install_crypto();
        let archive = evil_archive(&[Evil::Entry { raw_path: good, data: elf.clone() }]);
        let server = Server::start();
        server.put(&asset(), Reply::Body(archive.clone()));
        server.put(SUMS_NAME, Reply::Body(sums_for(&asset(), &archive)));
        let kodata = tempdir();
        ensure_watchexec(&opts(&server, kodata.path()), &NoProgress).await.unwrap();
        assert_eq!(fs::read(kodata.path().join("watchexec")).unwrap(), elf);
    }

    #[tokio::test]
    async fn decompression_bomb_is_refused() {
        let good: &'static [u8] = b"watchexec-2.8.0-x86_64-unknown-linux-musl/watchexec";
        let archive = evil_archive(&[
            Evil::Entry { raw_path: b"watchexec-2.8.0-x86_64-unknown-linux-musl/README.md", data: vec![0; 5 << 20] },
            Evil::Entry { raw_path: good, data: fake_elf() },
        ]);
        assert!(archive.len() < 64 << 10, "compresses well: {}", archive.len());
        let sums = sums_for(&asset(), &archive);
        let err = refused(Reply::Body(archive), sums, |o| o.max_binary_size = 1 << 20).await;
        assert!(matches!(err, WatchexecError::HostileArchive { .. }), "{err}");
    }

    #[tokio::test]
    async fn local_override_copies_atomically_and_only_once() {
        let bin = real_watchexec();
        let kodata = user_kodata();
        let mut o = EnsureOptions::new(kodata.path(), "amd64");
        o.local_binary = Some(bin.to_owned());
        o.base_url = Some("http://127.0.0.1:9/unreachable/".into());
        let path = ensure_watchexec(&o, &NoProgress).await.unwrap();
        assert_eq!(fs::read(&path).unwrap(), fs::read(bin).unwrap());
        assert!(fs::read_to_string(kodata.path().join(".gitignore"))
            .unwrap()
            .ends_with("# mine\nwatchexec\n.watchexec.sha256\n"));
        let out = Command::new(&path).arg("--version").output().unwrap();
        assert!(out.status.success());
        let before = snapshot(kodata.path());
        ensure_watchexec(&o, &NoProgress).await.unwrap();
        assert_eq!(snapshot(kodata.path()), before);

        // Wrong machine, dynamic binary, not a file: refused, kodata untouched.
        let fresh = user_kodata();
        let before = snapshot(fresh.path());
        let mut arm = EnsureOptions::new(fresh.path(), "arm64");
        arm.local_binary = Some(bin.to_owned());
        let err = ensure_watchexec(&arm, &NoProgress).await.unwrap_err();
        assert!(matches!(err, WatchexecError::WrongMachine { .. }), "{err}");
        let mut dynamic = EnsureOptions::new(fresh.path(), "amd64");
        // This test binary is dynamic too, but may outgrow the size limit the check comes after.
        dynamic.local_binary = Some(std::env::current_exe().unwrap());
        dynamic.max_binary_size = u64::MAX;
        let err = ensure_watchexec(&dynamic, &NoProgress).await.unwrap_err();
        assert!(matches!(err, WatchexecError::DynamicBinary { .. }), "{err}");
        dynamic.local_binary = Some(fresh.path().to_owned());
        let err = ensure_watchexec(&dynamic, &NoProgress).await.unwrap_err();
        assert!(matches!(err, WatchexecError::NotElf { .. }), "{err}");
        assert_eq!(snapshot(fresh.path()), before);
    }
}
