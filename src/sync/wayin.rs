//! The way in: how gohot puts a new binary into a running container and reads
//! files back out of it.
//!
//! # Why a helper program, and why built by the user's Go toolchain
//!
//! A hot reload has to replace `/ko-app/<name>` inside a container whose base
//! may have no shell and no `tar` (ko's default base has neither), so
//! `kubectl cp`/`docker cp`-over-tar and `sh -c 'cat > …'` are out. gohot
//! therefore ships a tiny helper, [`HELPER_GO_FILES`] (Go standard library
//! only), and compiles it with the developer's own Go toolchain for the
//! container's platform ([`build_helper`]): the toolchain is already there
//! (gohot builds the app with it), it cross-compiles to every architecture the
//! app can run on, and `CGO_ENABLED=0 -trimpath -ldflags='-s -w'` gives a
//! static binary of about 3 MB that runs on an empty base. It sits in the dev
//! image at [`HELPER_IMAGE_PATH`] and gohot runs it through an exec stream
//! (`docker exec -i`, Kubernetes exec): payload on stdin, one JSON status line
//! on stdout, non-zero exit and a message on stderr on failure. The same
//! bytes work over both transports.
//!
//! The helper writes atomically: a temporary file in the destination's own
//! directory, `fsync`, `chmod`, `rename` over the destination, `fsync` of the
//! directory. watchexec has no "file complete" detection, so it can only
//! ever see the old binary or the whole new one, and renaming (rather than
//! writing into a running executable) can never hit "text file busy".
//!
//! # Why a delta
//!
//! gohot keeps the last binary it synced, and the helper can prove the
//! container still has it (its sha256 travels in the payload header). A Go
//! binary rebuilt after a small edit is mostly the old one with code and data
//! shifted a little, so sending a delta is far cheaper than sending the file:
//! [`encode_delta`] is a bsdiff-style encoder (exact seed matches found with a
//! hash table over the old binary at any offset, extended forwards and
//! backwards approximately, encoded as byte-wise differences that are mostly
//! zero, plus literal inserts), gzip-compressed because Go's standard library
//! has gzip but no zstd. If the container's file is not the expected base
//! (e.g. the pod restarted from the image), the helper answers
//! [`PutStatus::BaseMismatch`] and the sender retries with [`encode_full`].
//!
//! Measured here on a stdlib-only net/http server (`examples/delta_measure.rs`,
//! release build, 2 shared cores): a string edit that changes the string's
//! length gives a delta of 0.6–1.1% of the binary, adding a small handler
//! 4–4.5%, encoded in 25–90 ms; the helper applies it in 35–85 ms (fsync
//! included). One exception: Go zlib-compresses DWARF by default, and any
//! change rewrites those compressed bytes wholesale, so a handler edit costs
//! 33% of a default build. Dev builds should therefore link with
//! `-ldflags=-compressdwarf=false` (still debuggable; 4.5%) or `-s -w`.
//!
//! # Formats
//!
//! Put payload (stdin of `helper put DEST [-mode 0755]`): one JSON header line
//! of at most 4096 bytes, then `body` bytes holding exactly one gzip member:
//!
//! ```text
//! {"v":2,"kind":"full","size":N,"sha256":HEX,"body":B}\n              gzip(new content)
//! {"v":2,"kind":"delta","size":N,"sha256":HEX,"base_size":M,"base_sha256":HEX,"body":B}\n  gzip(records)
//! ```
//!
//! Every request frames itself (the put body's length, the get request's
//! closing empty line) and the helper never reads past it: the Kubernetes
//! exec protocol `v4.channel.k8s.io` (API servers before 1.30) has no way to
//! close stdin short of closing the whole stream, exit status included.
//!
//! A delta is a sequence of records until `size` bytes were produced:
//! `varint seek` (zig-zag, moves the base cursor), `uvarint add_len`, `uvarint
//! lit_len`, then `add_len` difference bytes (`out = base[cursor+i] + d[i]`,
//! wrapping; the cursor advances) and `lit_len` literal bytes. Each record
//! produces at least one byte; every length and position is bounds-checked by
//! both decoders (the helper's and [`decode_payload`]).
//!
//! The `get` stream (stdout of `helper get DIR`, paths on stdin, one per line,
//! then an empty line)
//! is one gzip stream containing, for each requested path in order, either
//! `{"path","size","mode","mtime"}\n` + `size` raw bytes + `{"sha256":H}\n`
//! (or `{"error":E}\n` when the file changed while it was read: the bytes are
//! then void), or `{"path":P,"error":E}\n` for a refused or unreadable path;
//! then `{"end":true,"files":F,"errors":E}\n`. [`GetReader`] reads it and
//! trusts nothing in it: this is the syncback direction, where the container
//! is untrusted.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Go source of the helper, embedded so that gohot can build it anywhere:
/// (file name, text) of every non-test `.go` file in `helper/`.
pub const HELPER_GO_FILES: &[(&str, &str)] = &[
    ("args.go", include_str!("helper/args.go")),
    ("atomic.go", include_str!("helper/atomic.go")),
    ("delta.go", include_str!("helper/delta.go")),
    ("doc.go", include_str!("helper/doc.go")),
    ("get.go", include_str!("helper/get.go")),
    ("hash.go", include_str!("helper/hash.go")),
    ("list.go", include_str!("helper/list.go")),
    ("main.go", include_str!("helper/main.go")),
    ("mode.go", include_str!("helper/mode.go")),
    ("put.go", include_str!("helper/put.go")),
    ("rm.go", include_str!("helper/rm.go")),
    ("seed.go", include_str!("helper/seed.go")),
];

/// Where the dev image carries the helper.
pub const HELPER_IMAGE_PATH: &str = "/var/run/gohot/helper";

/// Protocol version spoken by [`HELPER_GO_FILES`] and by this module.
pub const HELPER_PROTOCOL: u32 = 2;

/// Exit code of `helper put` when a delta's base is not the destination's
/// current content (the status line then says `base-mismatch`).
pub const EXIT_BASE_MISMATCH: i32 = 3;

/// Default upper bound on the size a payload may announce in [`decode_payload`].
pub const DEFAULT_MAX_PAYLOAD_SIZE: u64 = 4 << 30;

const MAX_HEADER_LINE: usize = 4096;
const MAX_REL_PATH: usize = 4096;
/// Most entries [`parse_listing`] accepts.
const MAX_LIST_ENTRIES: usize = 4_000_000;

/// Everything that can go wrong on the way in or out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WayInError {
    /// The Go toolchain could not be started at all.
    #[error("could not run the Go toolchain `{go}`: {source} (install Go, put it on PATH or set GOHOT_GO)")]
    GoNotRunnable {
        /// The `go` command that was tried.
        go: PathBuf,
        /// Why it could not be started.
        source: io::Error,
    },
    /// `go build` of the helper failed; `stderr` is the compiler's output.
    #[error("building the gohot helper for linux/{arch} failed ({status}):\n{stderr}")]
    HelperBuild {
        /// The target architecture.
        arch: String,
        /// The exit status of `go build`.
        status: String,
        /// What `go build` wrote on stderr.
        stderr: String,
    },
    /// The architecture cannot be mapped to GOARCH (and variant).
    #[error("unsupported target architecture `{0}` for the gohot helper (want e.g. amd64, arm64, arm/v7)")]
    UnsupportedArch(String),
    /// A local I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The helper's stdout is not a status line this module understands.
    #[error("unexpected answer from the gohot helper: {reason} (output: {output:?})")]
    BadStatus {
        /// What is wrong with it.
        reason: String,
        /// The start of what it printed.
        output: String,
    },
    /// The helper ran and reported a failure.
    #[error("the gohot helper in the container failed ({code}): {message}")]
    HelperFailed {
        /// Machine-readable code (`bad-payload`, `hash-mismatch`, `io`, `usage`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// The helper speaks another protocol version.
    #[error("the gohot helper in the container speaks protocol {found}, this gohot speaks {HELPER_PROTOCOL}: rebuild the dev image")]
    ProtocolMismatch {
        /// The version the helper reported.
        found: u32,
    },
    /// A path sent by the container is not a safe relative path.
    #[error("refused path {path:?} from the container: {reason}")]
    UnsafePath {
        /// The offending path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The container's listing is malformed or hostile.
    #[error("invalid listing from the container: {0}")]
    BadListing(String),
    /// The container's file stream is malformed, hostile or cut short.
    #[error("invalid file stream from the container: {0}")]
    BadStream(String),
    /// Something is larger than allowed.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its (announced) size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Content does not have the hash it was announced with.
    #[error("{what}: content has sha256 {actual}, expected {expected}")]
    HashMismatch {
        /// Which content.
        what: String,
        /// The announced hash.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// A put payload is malformed (reference decoder).
    #[error("invalid payload: {0}")]
    BadPayload(String),
    /// A delta payload's base is not the content it is applied to.
    #[error("the delta's base is not the current content: {0}")]
    BaseMismatch(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> WayInError {
    let context = context.into();
    move |source| WayInError::Io { context, source }
}

fn snippet(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let mut t: String = s.chars().take(300).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

// ======================================================================= put

/// The two kinds of put payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The whole new content, gzip-compressed.
    Full,
    /// Records against the destination's current content.
    Delta,
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadKind::Full => "full",
            PayloadKind::Delta => "delta",
        })
    }
}

#[derive(serde::Serialize, Deserialize)]
struct PutHeader {
    v: u32,
    kind: String,
    size: u64,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_sha256: Option<String>,
    /// Length of the gzip member after the header line: the payload frames
    /// itself, as the Kubernetes exec protocol v4 cannot signal end of stdin.
    body: u64,
}

/// The header line followed by the gzip member.
fn framed(mut h: PutHeader, body: Vec<u8>) -> Vec<u8> {
    h.body = body.len() as u64;
    // Serializing a struct of strings and integers cannot fail.
    let mut out = serde_json::to_vec(&h).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(&body);
    out
}

/// gzip level of delta records. Measured on 6–13 MB Go binaries (see
/// `examples/delta_measure.rs`): level 1 doubles the size of a small delta,
/// 3 is within 10% of 6 at two thirds of its time.
const DELTA_LEVEL: u32 = 3;
/// gzip level of FULL payloads (first sync, after a base mismatch): 2 gives
/// 45–59% of the binary, level 1 10 points more; higher levels are slower for
/// one or two points.
const FULL_LEVEL: u32 = 2;

fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 64), Compression::new(level));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Encodes `new` as a FULL payload for `helper put`.
pub fn encode_full(new: &[u8]) -> Vec<u8> {
    let head = PutHeader {
        v: HELPER_PROTOCOL,
        kind: "full".into(),
        size: new.len() as u64,
        sha256: sha256_hex(new),
        base_size: None,
        base_sha256: None,
        body: 0,
    };
    framed(head, gzip(new, FULL_LEVEL))
}

/// Encodes `new` as a DELTA payload against `old`, which must be exactly what
/// the destination holds (the helper checks its sha256 and answers
/// [`PutStatus::BaseMismatch`] otherwise).
pub fn encode_delta(old: &[u8], new: &[u8]) -> Vec<u8> {
    let head = PutHeader {
        v: HELPER_PROTOCOL,
        kind: "delta".into(),
        size: new.len() as u64,
        sha256: sha256_hex(new),
        base_size: Some(old.len() as u64),
        base_sha256: Some(sha256_hex(old)),
        body: 0,
    };
    let (records, literal) = delta::encode(old, new);
    // Mostly literals (e.g. Go's zlib-compressed DWARF changed): they do not
    // compress, and the fastest level saves tens of milliseconds on them.
    let level = if literal > new.len() / 4 { 1 } else { DELTA_LEVEL };
    framed(head, gzip(&records, level))
}

/// Applies a put payload the way the helper does, in memory: `current` is the
/// destination's content (needed for a delta), `max_size` caps the size the
/// header may announce. Every bound is checked; the result's sha256 is
/// verified. Useful to check a payload before sending it, and in tests.
pub fn decode_payload(current: Option<&[u8]>, payload: &[u8], max_size: u64) -> Result<Vec<u8>, WayInError> {
    let bad = |m: &str| WayInError::BadPayload(m.to_string());
    let nl = payload
        .iter()
        .take(MAX_HEADER_LINE + 1)
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header line within 4096 bytes"))?;
    let h: PutHeader =
        serde_json::from_slice(&payload[..nl]).map_err(|e| WayInError::BadPayload(format!("bad header: {e}")))?;
    if h.v != HELPER_PROTOCOL {
        return Err(bad("unknown payload version"));
    }
    if !is_hex64(&h.sha256) {
        return Err(bad("header sha256 is not lowercase hex"));
    }
    if h.size > max_size {
        return Err(WayInError::TooLarge { what: "payload".into(), size: h.size, limit: max_size });
    }
    let body = &payload[nl + 1..];
    if body.len() as u64 != h.body {
        return Err(bad("body length differs from the header"));
    }
    // bufread's decoder consumes exactly the gzip member, so what is left
    // of `body` afterwards is trailing data.
    let mut z = flate2::bufread::GzDecoder::new(body);
    let limit = usize::try_from(h.size).map_err(|_| bad("size does not fit in memory"))?;
    let out = match h.kind.as_str() {
        "full" => {
            let mut out = Vec::with_capacity(limit.min(64 << 20));
            (&mut z)
                .take(h.size + 1)
                .read_to_end(&mut out)
                .map_err(|e| WayInError::BadPayload(format!("corrupt gzip: {e}")))?;
            if out.len() != limit {
                return Err(bad("content size differs from the header"));
            }
            out
        }
        "delta" => {
            let (Some(bs), Some(bh)) = (h.base_size, h.base_sha256.as_deref()) else {
                return Err(bad("delta header needs base_size and base_sha256"));
            };
            let base = current.ok_or_else(|| WayInError::BaseMismatch("no current content".into()))?;
            if base.len() as u64 != bs || sha256_hex(base) != bh {
                return Err(WayInError::BaseMismatch(format!(
                    "current content has sha256 {}, the delta's base is {bh}",
                    sha256_hex(base)
                )));
            }
            let mut r = BufReader::new(&mut z);
            let out = delta::apply(&mut r, base, limit)?;
            let mut rest = [0u8; 1];
            match r.read(&mut rest) {
                Ok(0) => {}
                Ok(_) => return Err(bad("data after the last delta record")),
                Err(e) => return Err(WayInError::BadPayload(format!("corrupt gzip: {e}"))),
            }
            out
        }
        _ => return Err(bad("unknown payload kind")),
    };
    // Reading to the end checked gzip's CRC; nothing may follow the member.
    let mut extra = [0u8; 1];
    if matches!(z.read(&mut extra), Ok(n) if n > 0) || !z.into_inner().is_empty() {
        return Err(bad("data after the gzip stream"));
    }
    let got = sha256_hex(&out);
    if got != h.sha256 {
        return Err(WayInError::HashMismatch { what: "payload".into(), expected: h.sha256, actual: got });
    }
    Ok(out)
}

/// What `helper put` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutStatus {
    /// The destination now holds the new content.
    Written {
        /// Which payload kind was applied.
        kind: PayloadKind,
        /// Size of the new content.
        bytes: u64,
        /// Its sha256 (lowercase hex).
        sha256: String,
        /// With `-wait-exec`: the pid of the process started from the new
        /// file (`None` if none appeared before the timeout).
        pid: Option<u32>,
        /// With `-wait-exec`: milliseconds from the rename to that process.
        restart_ms: Option<u64>,
    },
    /// A delta's base is not what the destination holds (or it is missing):
    /// the destination is untouched; resend with [`encode_full`].
    BaseMismatch {
        /// The helper's explanation.
        message: String,
    },
}

#[derive(Deserialize)]
struct RawStatus {
    ok: Option<bool>,
    kind: Option<String>,
    bytes: Option<u64>,
    sha256: Option<String>,
    error: Option<String>,
    message: Option<String>,
    pid: Option<u32>,
    restart_ms: Option<u64>,
}

fn status_line(stdout: &[u8]) -> Result<&[u8], WayInError> {
    stdout
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .rfind(|l| !l.iter().all(u8::is_ascii_whitespace))
        .ok_or_else(|| WayInError::BadStatus {
            reason: "no status line (did the helper run at all?)".into(),
            output: String::new(),
        })
}

fn parse_status<T: for<'de> Deserialize<'de>>(stdout: &[u8]) -> Result<T, WayInError> {
    let line = status_line(stdout)?;
    serde_json::from_slice(line).map_err(|e| WayInError::BadStatus { reason: e.to_string(), output: snippet(line) })
}

fn helper_failure(raw: &RawStatus) -> WayInError {
    WayInError::HelperFailed {
        code: raw.error.clone().unwrap_or_else(|| "unknown".into()),
        message: raw.message.clone().unwrap_or_default(),
    }
}

/// Parses the stdout of `helper put`. A helper-reported failure other than a
/// base mismatch is an `Err` ([`WayInError::HelperFailed`]).
pub fn parse_put_status(stdout: &[u8]) -> Result<PutStatus, WayInError> {
    let raw: RawStatus = parse_status(stdout)?;
    let bad = |reason: &str| WayInError::BadStatus { reason: reason.into(), output: snippet(stdout) };
    match raw.ok {
        Some(true) => {
            let kind = match raw.kind.as_deref() {
                Some("full") => PayloadKind::Full,
                Some("delta") => PayloadKind::Delta,
                _ => return Err(bad("missing or unknown kind")),
            };
            let bytes = raw.bytes.ok_or_else(|| bad("missing bytes"))?;
            let sha256 = raw.sha256.filter(|s| is_hex64(s)).ok_or_else(|| bad("missing sha256"))?;
            Ok(PutStatus::Written { kind, bytes, sha256, pid: raw.pid, restart_ms: raw.restart_ms })
        }
        Some(false) if raw.error.as_deref() == Some("base-mismatch") => {
            Ok(PutStatus::BaseMismatch { message: raw.message.unwrap_or_default() })
        }
        Some(false) => Err(helper_failure(&raw)),
        None => Err(bad("no \"ok\" field")),
    }
}

/// What `helper hash PATH` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteFile {
    /// The file does not exist.
    Missing,
    /// The file exists with this content hash and size.
    Present {
        /// sha256, lowercase hex.
        sha256: String,
        /// Size in bytes.
        size: u64,
    },
}

/// Parses the stdout of `helper hash PATH`.
pub fn parse_hash_status(stdout: &[u8]) -> Result<RemoteFile, WayInError> {
    #[derive(Deserialize)]
    struct Raw {
        missing: Option<bool>,
        sha256: Option<String>,
        size: Option<u64>,
        #[serde(flatten)]
        status: RawStatusOpt,
    }
    #[derive(Deserialize)]
    struct RawStatusOpt {
        ok: Option<bool>,
        error: Option<String>,
        message: Option<String>,
    }
    let raw: Raw = parse_status(stdout)?;
    if raw.status.ok == Some(false) {
        return Err(WayInError::HelperFailed {
            code: raw.status.error.unwrap_or_else(|| "unknown".into()),
            message: raw.status.message.unwrap_or_default(),
        });
    }
    match (raw.missing, raw.sha256, raw.size) {
        (Some(true), _, _) => Ok(RemoteFile::Missing),
        (_, Some(sha256), Some(size)) if is_hex64(&sha256) => Ok(RemoteFile::Present { sha256, size }),
        _ => Err(WayInError::BadStatus { reason: "want sha256 and size, or missing".into(), output: snippet(stdout) }),
    }
}

/// What `helper version` reported.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HelperVersion {
    /// Protocol version (checked to be [`HELPER_PROTOCOL`] by [`parse_version`]).
    pub protocol: u32,
    /// Go version it was built with.
    pub go: String,
    /// GOARCH it was built for.
    pub arch: String,
}

/// Parses the stdout of `helper version` and checks the protocol version.
pub fn parse_version(stdout: &[u8]) -> Result<HelperVersion, WayInError> {
    let v: HelperVersion = parse_status(stdout)?;
    if v.protocol != HELPER_PROTOCOL {
        return Err(WayInError::ProtocolMismatch { found: v.protocol });
    }
    Ok(v)
}

// ================================================================ argv

/// argv for `put`: write stdin's payload to `dest` with permission `mode`.
pub fn put_argv(dest: &str, mode: u32) -> Vec<String> {
    vec![
        HELPER_IMAGE_PATH.into(),
        "put".into(),
        "-mode".into(),
        format!("{:04o}", mode & 0o7777),
        "--".into(),
        dest.into(),
    ]
}

/// argv for `put` that, after the rename, waits up to `wait` for a process
/// started from the new file (the supervisor's restart) and reports it.
pub fn put_wait_argv(dest: &str, mode: u32, wait: std::time::Duration) -> Vec<String> {
    let mut v = put_argv(dest, mode);
    let at = v.len() - 2;
    v.insert(at, format!("-wait-exec={}ms", wait.as_millis()));
    v
}

/// argv for `rm PATH`: remove one file (a missing file is not an error).
pub fn rm_argv(path: &str) -> Vec<String> {
    vec![HELPER_IMAGE_PATH.into(), "rm".into(), "--".into(), path.into()]
}

/// Whether `helper rm` succeeded, from its status line.
pub fn parse_rm_status(stdout: &[u8]) -> Result<bool, WayInError> {
    #[derive(Deserialize)]
    struct Rm {
        ok: Option<bool>,
        removed: Option<bool>,
        error: Option<String>,
        message: Option<String>,
    }
    let raw: Rm = parse_status(stdout)?;
    match raw.ok {
        Some(true) => Ok(raw.removed.unwrap_or(false)),
        _ => Err(WayInError::HelperFailed {
            code: raw.error.unwrap_or_else(|| "unknown".into()),
            message: raw.message.unwrap_or_default(),
        }),
    }
}

/// argv for `hash PATH`.
pub fn hash_argv(path: &str) -> Vec<String> {
    vec![HELPER_IMAGE_PATH.into(), "hash".into(), "--".into(), path.into()]
}

/// argv for `list DIR` with `-exclude` patterns (path.Match syntax; without a
/// `/` a pattern matches base names, with one the whole relative path).
pub fn list_argv(dir: &str, excludes: &[&str]) -> Vec<String> {
    let mut v = vec![HELPER_IMAGE_PATH.to_string(), "list".into()];
    for e in excludes {
        v.push("-exclude".into());
        v.push((*e).into());
    }
    v.push("--".into());
    v.push(dir.into());
    v
}

/// argv for `get DIR` (feed it [`get_request`] on stdin, read with [`GetReader`]).
pub fn get_argv(dir: &str) -> Vec<String> {
    vec![HELPER_IMAGE_PATH.into(), "get".into(), "--".into(), dir.into()]
}

/// argv for `seed SRC DST` (atomic copy, e.g. from an init container).
pub fn seed_argv(src: &str, dst: &str) -> Vec<String> {
    vec![HELPER_IMAGE_PATH.into(), "seed".into(), "--".into(), src.into(), dst.into()]
}

/// argv for `version`.
pub fn version_argv() -> Vec<String> {
    vec![HELPER_IMAGE_PATH.into(), "version".into()]
}

// ============================================================ safe paths

/// A relative path received from (or sent to) the container, validated so
/// that joining it under a local root can never leave that root: not empty,
/// at most 4096 bytes, `/`-separated, no leading `/`, no empty, `.` or `..`
/// component, no NUL, backslash or other control character (a newline would
/// also break the line-based `get` request), and on Windows no `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, WayInError> {
        let refuse = |reason| Err(WayInError::UnsafePath { path: s.chars().take(200).collect(), reason });
        if s.is_empty() {
            return refuse("empty path");
        }
        if s.len() > MAX_REL_PATH {
            return refuse("path longer than 4096 bytes");
        }
        if s.starts_with('/') {
            return refuse("absolute path");
        }
        if s.contains('\\') {
            return refuse("backslash in path");
        }
        if s.chars().any(|c| c.is_control()) {
            return refuse("NUL or control character in path");
        }
        if cfg!(windows) && s.contains(':') {
            return refuse("colon in path (drive or stream on Windows)");
        }
        for c in s.split('/') {
            match c {
                "" => return refuse("empty path component"),
                "." => return refuse("`.` component"),
                ".." => return refuse("`..` component"),
                _ => {}
            }
        }
        Ok(RelPath(s.to_string()))
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Its parent, or `None` for a single component.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_string()))
    }

    /// `root` joined with each component (never escapes `root` lexically;
    /// the caller must still not follow symlinks below `root`).
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        for c in self.components() {
            p.push(c);
        }
        p
    }

    /// Whether a symlink at this path with this `target` stays inside the
    /// root, resolved lexically: the target must be relative and its `..`
    /// components must never climb above the root.
    pub fn symlink_target_stays_inside(&self, target: &str) -> bool {
        if target.is_empty()
            || target.starts_with('/')
            || target.contains('\\')
            || target.chars().any(|c| c.is_control())
            || (cfg!(windows) && target.contains(':'))
        {
            return false;
        }
        let mut depth = self.components().count() - 1;
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return false,
                },
                _ => depth += 1,
            }
        }
        true
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// =============================================================== listing

/// Type of a listed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (never followed by the helper).
    Symlink,
    /// Device, socket or FIFO: never transferred.
    Other,
}

/// One entry of a container directory listing, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Path relative to the listed directory.
    pub path: RelPath,
    /// Its type.
    pub kind: EntryType,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Permission bits, including setuid/setgid/sticky (at most `0o7777`).
    pub mode: u32,
    /// Modification time, unix nanoseconds.
    pub mtime_ns: i64,
    /// Content hash (files that could be read).
    pub sha256: Option<String>,
    /// Link target (symlinks); check with [`RelPath::symlink_target_stays_inside`].
    pub target: Option<String>,
    /// Why the entry could not be fully described (unreadable, changed while hashed).
    pub error: Option<String>,
}

/// An entry the helper could not put in the listing (e.g. a non-UTF-8 name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SkippedEntry {
    /// The name, Go-quoted.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A validated listing of a container directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The directory as the helper was asked for it.
    pub root: String,
    /// Entries, sorted by path, each path unique.
    pub entries: Vec<ListEntry>,
    /// Entries that could not be listed.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    mode: u32,
    #[serde(default)]
    mtime: i64,
    sha256: Option<String>,
    target: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawListing {
    root: Option<String>,
    entries: Option<Vec<RawEntry>>,
    #[serde(default)]
    skipped: Vec<SkippedEntry>,
    ok: Option<bool>,
    error: Option<String>,
    message: Option<String>,
}

/// Parses and validates the stdout of `helper list DIR`. Every path must be a
/// [`RelPath`], unique, and below directories only (an entry under a listed
/// symlink or file is refused: following it could lead outside); hashes must
/// be hex; a file without an error must have a hash. The caller bounds the
/// size of `stdout`.
pub fn parse_listing(stdout: &[u8]) -> Result<Listing, WayInError> {
    let bad = |m: String| WayInError::BadListing(m);
    let raw: RawListing = serde_json::from_slice(stdout).map_err(|e| {
        if stdout.iter().all(u8::is_ascii_whitespace) {
            WayInError::BadStatus { reason: "no output (did the helper run at all?)".into(), output: String::new() }
        } else {
            bad(format!("not a listing: {e}"))
        }
    })?;
    if raw.ok == Some(false) {
        return Err(WayInError::HelperFailed {
            code: raw.error.unwrap_or_else(|| "unknown".into()),
            message: raw.message.unwrap_or_default(),
        });
    }
    let (Some(root), Some(raw_entries)) = (raw.root, raw.entries) else {
        return Err(bad("no root or entries".into()));
    };
    if raw_entries.len() > MAX_LIST_ENTRIES {
        return Err(bad(format!("more than {MAX_LIST_ENTRIES} entries")));
    }
    let mut kinds: HashMap<String, EntryType> = HashMap::with_capacity(raw_entries.len());
    let mut entries = Vec::with_capacity(raw_entries.len());
    for e in raw_entries {
        let path = RelPath::new(&e.path)?;
        let kind = match e.kind.as_str() {
            "file" => EntryType::File,
            "dir" => EntryType::Dir,
            "symlink" => EntryType::Symlink,
            "other" => EntryType::Other,
            k => return Err(bad(format!("{path}: unknown type {k:?}"))),
        };
        if e.mode > 0o7777 {
            return Err(bad(format!("{path}: mode {:o} out of range", e.mode)));
        }
        if let Some(h) = &e.sha256 {
            if kind != EntryType::File || !is_hex64(h) {
                return Err(bad(format!("{path}: bad sha256")));
            }
        }
        if kind == EntryType::File && e.sha256.is_none() && e.error.is_none() {
            return Err(bad(format!("{path}: file without sha256")));
        }
        if e.target.is_some() && kind != EntryType::Symlink {
            return Err(bad(format!("{path}: link target on a non-symlink")));
        }
        if let Some(t) = &e.target {
            if t.is_empty() || t.contains('\0') {
                return Err(bad(format!("{path}: bad link target")));
            }
        }
        if kinds.insert(e.path.clone(), kind).is_some() {
            return Err(bad(format!("{path}: listed twice")));
        }
        entries.push(ListEntry {
            path,
            kind,
            size: e.size,
            mode: e.mode,
            mtime_ns: e.mtime,
            sha256: e.sha256,
            target: e.target,
            error: e.error,
        });
    }
    for e in &entries {
        let mut p = e.path.parent();
        while let Some(dir) = p {
            match kinds.get(dir.as_str()) {
                None | Some(EntryType::Dir) => {}
                Some(_) => return Err(bad(format!("{}: listed below {dir}, which is not a directory", e.path))),
            }
            p = dir.parent();
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Listing { root, entries, skipped: raw.skipped })
}

// =================================================================== get

/// The stdin for `helper get DIR`: one path per line, then an empty line
/// (the request frames itself: stdin may stay open after it).
pub fn get_request(paths: &[RelPath]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in paths {
        v.extend_from_slice(p.as_str().as_bytes());
        v.push(b'\n');
    }
    v.push(b'\n');
    v
}

/// Limits applied by [`GetReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetLimits {
    /// Largest file accepted.
    pub max_file_size: u64,
    /// Most file bytes accepted over the whole stream.
    pub max_total_bytes: u64,
}

impl Default for GetLimits {
    fn default() -> Self {
        GetLimits { max_file_size: 1 << 30, max_total_bytes: 8 << 30 }
    }
}

/// Header of a file in a `get` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetFileHeader {
    /// The path (one that was requested).
    pub path: RelPath,
    /// Size of the body that follows.
    pub size: u64,
    /// Permission bits (at most `0o7777`).
    pub mode: u32,
    /// Modification time, unix nanoseconds.
    pub mtime_ns: i64,
}

/// One answer in a `get` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetItem {
    /// A file follows: call [`GetReader::read_body`] next.
    File(GetFileHeader),
    /// The helper refused or could not read this path.
    Refused {
        /// The path.
        path: RelPath,
        /// Why.
        error: String,
    },
}

/// How a file body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// All bytes arrived and match this sha256: safe to commit.
    Complete {
        /// sha256 of the body, lowercase hex.
        sha256: String,
    },
    /// The file changed while the helper read it: discard what was written.
    Changed {
        /// The helper's explanation.
        error: String,
    },
}

enum GetState {
    Header,
    Body(GetFileHeader),
    Done,
}

/// Reads a `get` stream, trusting nothing in it: each answer must be for the
/// next requested path (so a path is always one gohot asked for, and a
/// [`RelPath`]), sizes are capped by [`GetLimits`] and enforced byte by byte,
/// every body's sha256 is checked, and the stream must end with the helper's
/// end line and nothing after it. A body is copied into a caller-supplied
/// sink; the caller writes it to a temporary file and renames it only on
/// [`BodyOutcome::Complete`]. After any `Err` the stream is unusable: stop
/// reading and end the exec.
pub struct GetReader<R: Read> {
    inner: BufReader<GzDecoder<R>>,
    pending: VecDeque<RelPath>,
    limits: GetLimits,
    total: u64,
    files: u64,
    errors: u64,
    state: GetState,
}

#[derive(Deserialize)]
struct RawGetLine {
    path: Option<String>,
    size: Option<u64>,
    mode: Option<u32>,
    mtime: Option<i64>,
    sha256: Option<String>,
    error: Option<String>,
    end: Option<bool>,
    files: Option<u64>,
    errors: Option<u64>,
}

impl<R: Read> GetReader<R> {
    /// Wraps the helper's stdout; `requested` are the paths sent with
    /// [`get_request`], in the same order.
    pub fn new(stdout: R, requested: &[RelPath], limits: GetLimits) -> Self {
        GetReader {
            inner: BufReader::with_capacity(64 << 10, GzDecoder::new(stdout)),
            pending: requested.iter().cloned().collect(),
            limits,
            total: 0,
            files: 0,
            errors: 0,
            state: GetState::Header,
        }
    }

    fn bad(m: impl Into<String>) -> WayInError {
        WayInError::BadStream(m.into())
    }

    fn read_line(&mut self) -> Result<RawGetLine, WayInError> {
        let mut line = Vec::new();
        let cap = (MAX_REL_PATH + 1024) as u64;
        let n = (&mut self.inner)
            .take(cap)
            .read_until(b'\n', &mut line)
            .map_err(|e| Self::bad(format!("corrupt stream: {e}")))?;
        if n == 0 {
            return Err(Self::bad("stream ended before the end line (helper failed or was cut off)"));
        }
        if line.last() != Some(&b'\n') {
            return Err(Self::bad(if n as u64 == cap {
                "record line too long"
            } else {
                "stream ended inside a record line"
            }));
        }
        serde_json::from_slice(&line).map_err(|e| Self::bad(format!("bad record line: {e}")))
    }

    /// The next answer, or `None` after the end line. A body that was not
    /// read with [`read_body`](Self::read_body) is skipped (and verified).
    pub fn next_item(&mut self) -> Result<Option<GetItem>, WayInError> {
        match self.state {
            GetState::Done => return Ok(None),
            GetState::Body(_) => {
                self.read_body(&mut io::sink())?;
            }
            GetState::Header => {}
        }
        let line = self.read_line()?;
        if line.end == Some(true) {
            if let Some(p) = self.pending.front() {
                return Err(Self::bad(format!("stream ended without an answer for {p}")));
            }
            if line.files != Some(self.files) || line.errors != Some(self.errors) {
                return Err(Self::bad("end line counts do not match the stream"));
            }
            let mut rest = [0u8; 1];
            match self.inner.read(&mut rest) {
                Ok(0) => {}
                Ok(_) => return Err(Self::bad("data after the end line")),
                Err(e) => return Err(Self::bad(format!("corrupt stream: {e}"))),
            }
            self.state = GetState::Done;
            return Ok(None);
        }
        let raw_path = line.path.ok_or_else(|| Self::bad("record without path"))?;
        let path = RelPath::new(&raw_path)?;
        match self.pending.pop_front() {
            Some(want) if want == path => {}
            Some(want) => return Err(Self::bad(format!("got an answer for {path}, expected {want}"))),
            None => return Err(Self::bad(format!("got {path}, which was not requested"))),
        }
        if let Some(error) = line.error {
            self.errors += 1;
            return Ok(Some(GetItem::Refused { path, error }));
        }
        let (Some(size), Some(mode), Some(mtime_ns)) = (line.size, line.mode, line.mtime) else {
            return Err(Self::bad(format!("{path}: header lacks size, mode or mtime")));
        };
        if mode > 0o7777 {
            return Err(Self::bad(format!("{path}: mode out of range")));
        }
        if size > self.limits.max_file_size {
            return Err(WayInError::TooLarge {
                what: format!("container file {path}"),
                size,
                limit: self.limits.max_file_size,
            });
        }
        if size > self.limits.max_total_bytes.saturating_sub(self.total) {
            return Err(WayInError::TooLarge {
                what: "the files of this syncback together".into(),
                size: self.total.saturating_add(size),
                limit: self.limits.max_total_bytes,
            });
        }
        self.total += size;
        let header = GetFileHeader { path, size, mode, mtime_ns };
        self.state = GetState::Body(header.clone());
        Ok(Some(GetItem::File(header)))
    }

    /// Copies the current file's body into `sink`, checks its sha256 and
    /// tells whether it is complete. On `Err` or [`BodyOutcome::Changed`] the
    /// bytes in `sink` must be discarded.
    pub fn read_body<W: Write + ?Sized>(&mut self, sink: &mut W) -> Result<BodyOutcome, WayInError> {
        let header = match std::mem::replace(&mut self.state, GetState::Header) {
            GetState::Body(h) => h,
            other => {
                self.state = other;
                return Err(Self::bad("read_body called without a file header"));
            }
        };
        let mut hasher = Sha256::new();
        let mut left = header.size;
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = self.inner.read(&mut buf[..want]).map_err(|e| Self::bad(format!("corrupt stream: {e}")))?;
            if n == 0 {
                return Err(Self::bad(format!("stream ended inside {}", header.path)));
            }
            hasher.update(&buf[..n]);
            sink.write_all(&buf[..n]).map_err(io_err(format!("writing {}", header.path)))?;
            left -= n as u64;
        }
        let trailer = self.read_line()?;
        if let Some(error) = trailer.error {
            self.errors += 1;
            return Ok(BodyOutcome::Changed { error });
        }
        let expected = trailer
            .sha256
            .filter(|s| is_hex64(s))
            .ok_or_else(|| Self::bad(format!("{}: trailer without sha256", header.path)))?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            return Err(WayInError::HashMismatch { what: format!("container file {}", header.path), expected, actual });
        }
        self.files += 1;
        Ok(BodyOutcome::Complete { sha256: actual })
    }
}

// ======================================================== building the helper

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
pub const HELPER_GO_MOD: &str = include_str!("helper/go.mod");

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
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gohot-helper-")
        .tempfile_in(out_dir)
        .map_err(io_err(format!("creating a temporary file in {}", out_dir.display())))?;
    tmp.write_all(&bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(io_err(format!("writing {}", out.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(format!("chmod {}", out.display())))?;
    }
    tmp.persist(out)
        .map_err(|e| WayInError::Io { context: format!("moving the helper to {}", out.display()), source: e.error })?;
    Ok(BuiltHelper { path: out.to_path_buf(), size: bytes.len() as u64, sha256: sha256_hex(&bytes) })
}

// ================================================================== delta

/// The delta codec (bsdiff's control loop with hash-table seeds instead of a
/// suffix array, so that indexing a 13 MB binary takes milliseconds).
mod delta {
    use super::WayInError;
    use std::io::BufRead;

    /// Bytes hashed to find a seed match.
    const SEED: usize = 16;
    /// The old content is indexed every STEP bytes (a match of at least
    /// SEED + STEP - 1 bytes is always found; measured on Go binaries, 16
    /// compresses as well as 4 or 8 and keeps the table cache-friendly).
    const STEP: usize = 16;
    /// In a region without matches, the distance between lookups grows by
    /// one every ACCEL misses (like LZ4's acceleration). Uncapped on purpose:
    /// measured on Go binaries, capping it (at 32) made deltas 50% larger,
    /// because extra lookups in new code mostly find short coincidental
    /// matches that break a good approximate alignment.
    const ACCEL: usize = 16;
    /// An approximate extension stops once its score (matches minus
    /// mismatches) is this far below its best: walking on across a region
    /// that does not match under this alignment only costs time (bsdiff
    /// walks the whole gap).
    const GIVE_UP: isize = 512;
    /// Bytes compared before trusting the current alignment without a lookup.
    const QUICK: usize = 8;

    #[inline]
    fn word(b: &[u8], i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    }

    #[inline]
    fn seed_hash(b: &[u8], i: usize, shift: u32) -> usize {
        let x = word(b, i).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ word(b, i + 8);
        (x.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> shift) as usize
    }

    /// Length of the common prefix of `a` and `b`.
    #[inline]
    fn common_prefix(a: &[u8], b: &[u8]) -> usize {
        let n = a.len().min(b.len());
        let mut i = 0;
        while i + 8 <= n {
            let x = word(a, i) ^ word(b, i);
            if x != 0 {
                return i + (x.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < n && a[i] == b[i] {
            i += 1;
        }
        i
    }

    /// Number of positions where `a` and `b` hold the same byte.
    #[inline]
    fn count_equal(a: &[u8], b: &[u8]) -> usize {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let n = a.len().min(b.len());
        let (mut c, mut i) = (0usize, 0usize);
        while i + 8 <= n {
            let x = word(a, i) ^ word(b, i);
            // high bit of each byte set iff that byte of x is zero
            let z = !(((x & LOW7) + LOW7) | x | LOW7);
            c += z.count_ones() as usize;
            i += 8;
        }
        c + a[i..n].iter().zip(&b[i..n]).filter(|(x, y)| x == y).count()
    }

    struct Index<'a> {
        old: &'a [u8],
        table: Vec<u32>,
        shift: u32,
    }

    impl<'a> Index<'a> {
        fn new(old: &'a [u8]) -> Self {
            let slots = (old.len() / STEP).max(1).next_power_of_two().clamp(1 << 10, 1 << 24);
            let bits = slots.trailing_zeros();
            let mut table = vec![0u32; slots];
            let shift = 64 - bits;
            if old.len() >= SEED && old.len() < u32::MAX as usize {
                let mut i = 0;
                while i + SEED <= old.len() {
                    let h = seed_hash(old, i, shift);
                    if table[h] == 0 {
                        table[h] = i as u32 + 1;
                    }
                    i += STEP;
                }
            }
            Index { old, table, shift }
        }

        /// A match of at least SEED bytes for `new[scan..]`: (old pos, len).
        #[inline]
        fn search(&self, new: &[u8], scan: usize) -> Option<(usize, usize)> {
            if scan + SEED > new.len() {
                return None;
            }
            let c = self.table[seed_hash(new, scan, self.shift)];
            if c == 0 {
                return None;
            }
            let pos = c as usize - 1;
            let len = common_prefix(&self.old[pos..], &new[scan..]);
            (len >= SEED).then_some((pos, len))
        }
    }

    fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
    }

    struct Emitter<'a> {
        old: &'a [u8],
        new: &'a [u8],
        out: Vec<u8>,
        cursor: usize,
        literal: usize,
    }

    impl Emitter<'_> {
        /// add `add_len` bytes at new[nstart..] against old[ostart..], then literal new[nstart+add_len..lit_end].
        fn record(&mut self, nstart: usize, ostart: usize, add_len: usize, lit_end: usize) {
            let lit = &self.new[nstart + add_len..lit_end];
            if add_len == 0 && lit.is_empty() {
                return;
            }
            let seek = if add_len > 0 { ostart as i64 - self.cursor as i64 } else { 0 };
            put_varint(&mut self.out, seek);
            put_uvarint(&mut self.out, add_len as u64);
            put_uvarint(&mut self.out, lit.len() as u64);
            if add_len > 0 {
                let o = &self.old[ostart..ostart + add_len];
                let n = &self.new[nstart..nstart + add_len];
                self.out.extend(n.iter().zip(o).map(|(a, b)| a.wrapping_sub(*b)));
                self.cursor = ostart + add_len;
            }
            self.out.extend_from_slice(lit);
            self.literal += lit.len();
        }
    }

    /// Encodes the records turning `old` into `new` (uncompressed); also
    /// returns how many of `new`'s bytes are literals.
    pub(super) fn encode(old: &[u8], new: &[u8]) -> (Vec<u8>, usize) {
        let index = Index::new(old);
        let mut misses = 0usize;
        let (n_old, n_new) = (old.len(), new.len());
        let mut em = Emitter { old, new, out: Vec::with_capacity(n_new / 2 + 64), cursor: 0, literal: 0 };
        let aligned = |scan: usize, off: isize| -> Option<usize> {
            let p = scan as isize + off;
            (p >= 0 && (p as usize) < n_old).then_some(p as usize)
        };
        let (mut scan, mut len, mut pos) = (0usize, 0usize, 0usize);
        let (mut lastscan, mut lastpos, mut lastoffset) = (0usize, 0usize, 0isize);
        while scan < n_new {
            let mut oldscore: isize = 0;
            scan += len;
            let mut scsc = scan;
            while scan < n_new {
                // Continuing the current alignment needs no lookup.
                let quick = aligned(scan, lastoffset).filter(|&p| {
                    p + QUICK <= n_old && scan + QUICK <= n_new && old[p..p + QUICK] == new[scan..scan + QUICK]
                });
                (pos, len) = match quick {
                    Some(p) => (p, common_prefix(&old[p..], &new[scan..])),
                    None => index.search(new, scan).unwrap_or((0, 0)),
                };
                // oldscore: bytes of [scan, scsc) that match under the current alignment.
                if scsc < scan + len {
                    let end = scan + len;
                    if quick.is_some() {
                        oldscore += (end - scsc) as isize;
                    } else {
                        let lo = (scsc as isize).max(-lastoffset);
                        let hi = (end as isize).min(n_old as isize - lastoffset);
                        if lo < hi {
                            let (lo, hi) = (lo as usize, hi as usize);
                            let o = (lo as isize + lastoffset) as usize;
                            oldscore += count_equal(&old[o..o + (hi - lo)], &new[lo..hi]) as isize;
                        }
                    }
                    scsc = end;
                }
                let l = len as isize;
                if (l == oldscore && len != 0) || l > oldscore + 8 {
                    break;
                }
                // In a region without matches, look up less and less often
                // (matches found later are extended backwards anyway).
                let skip = if len == 0 {
                    misses += 1;
                    1 + misses / ACCEL
                } else {
                    misses = 0;
                    1
                };
                for _ in 0..skip {
                    if scan >= n_new {
                        break;
                    }
                    if scan >= scsc {
                        scsc = scan + 1;
                    } else if aligned(scan, lastoffset).is_some_and(|p| old[p] == new[scan]) {
                        oldscore -= 1;
                    }
                    scan += 1;
                }
            }
            if len as isize != oldscore || scan == n_new {
                // Extend the previous match forwards, approximately.
                // (8 equal bytes at a time: the score only rises inside such
                // a run, so its best point is the run's end.)
                let (mut s, mut sf, mut lenf) = (0isize, 0isize, 0usize);
                let limit = (scan - lastscan).min(n_old - lastpos);
                let mut i = 0usize;
                while i < limit {
                    if i + 8 <= limit && word(old, lastpos + i) == word(new, lastscan + i) {
                        s += 8;
                        i += 8;
                    } else {
                        if old[lastpos + i] == new[lastscan + i] {
                            s += 1;
                        }
                        i += 1;
                    }
                    let (score, best) = (s * 2 - i as isize, sf * 2 - lenf as isize);
                    if score > best {
                        sf = s;
                        lenf = i;
                    } else if best - score > GIVE_UP {
                        break;
                    }
                }
                // Extend the new match backwards, approximately.
                let mut lenb = 0usize;
                if scan < n_new {
                    let (mut s, mut sb) = (0isize, 0isize);
                    let limit = (scan - lastscan).min(pos);
                    let mut i = 0usize; // bytes examined so far
                    while i < limit {
                        if i + 8 <= limit && word(old, pos - i - 8) == word(new, scan - i - 8) {
                            s += 8;
                            i += 8;
                        } else {
                            i += 1;
                            if old[pos - i] == new[scan - i] {
                                s += 1;
                            }
                        }
                        let (score, best) = (s * 2 - i as isize, sb * 2 - lenb as isize);
                        if score > best {
                            sb = s;
                            lenb = i;
                        } else if best - score > GIVE_UP {
                            break;
                        }
                    }
                }
                // Split an overlap where it scores best.
                if lastscan + lenf > scan - lenb {
                    let overlap = (lastscan + lenf) - (scan - lenb);
                    let (mut s, mut ss, mut lens) = (0isize, 0isize, 0usize);
                    for i in 0..overlap {
                        if new[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i] {
                            s += 1;
                        }
                        if new[scan - lenb + i] == old[pos - lenb + i] {
                            s -= 1;
                        }
                        if s > ss {
                            ss = s;
                            lens = i + 1;
                        }
                    }
                    lenf = lenf + lens - overlap;
                    lenb -= lens;
                }
                em.record(lastscan, lastpos, lenf, scan - lenb);
                lastscan = scan - lenb;
                lastpos = pos - lenb;
                lastoffset = pos as isize - scan as isize;
            }
        }
        (em.out, em.literal)
    }

    fn uvarint<R: BufRead>(r: &mut R) -> Result<u64, WayInError> {
        let mut x = 0u64;
        for i in 0..10 {
            let mut b = [0u8; 1];
            r.read_exact(&mut b).map_err(corrupt)?;
            let b = b[0];
            if i == 9 && b > 1 {
                break;
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(WayInError::BadPayload("varint overflows 64 bits".into()))
    }

    fn corrupt(e: std::io::Error) -> WayInError {
        WayInError::BadPayload(format!("corrupt or truncated delta: {e}"))
    }

    /// Applies records from `r` to `base`, producing exactly `size` bytes.
    pub(super) fn apply<R: BufRead>(r: &mut R, base: &[u8], size: usize) -> Result<Vec<u8>, WayInError> {
        let bad = |m: &str| WayInError::BadPayload(m.to_string());
        let mut out = Vec::with_capacity(size.min(64 << 20));
        let mut cursor = 0usize;
        while out.len() < size {
            let z = uvarint(r)?;
            let seek = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let add = uvarint(r)?;
            let lit = uvarint(r)?;
            let room = (size - out.len()) as u64;
            if add > room || lit > room - add {
                return Err(bad("delta record writes past the announced size"));
            }
            if add == 0 && lit == 0 {
                return Err(bad("delta record produces nothing"));
            }
            let c = cursor as i64;
            if (seek < 0 && seek.unsigned_abs() > cursor as u64) || (seek > 0 && seek > base.len() as i64 - c) {
                return Err(bad("delta seeks outside the base"));
            }
            cursor = (c + seek) as usize;
            let (add, lit) = (add as usize, lit as usize);
            if add > base.len() - cursor {
                return Err(bad("delta reads past the end of the base"));
            }
            let start = out.len();
            out.resize(start + add, 0);
            r.read_exact(&mut out[start..]).map_err(corrupt)?;
            for (d, o) in out[start..].iter_mut().zip(&base[cursor..cursor + add]) {
                *d = d.wrapping_add(*o);
            }
            cursor += add;
            let start = out.len();
            out.resize(start + lit, 0);
            r.read_exact(&mut out[start..]).map_err(corrupt)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(old: &[u8], new: &[u8]) -> usize {
        let p = encode_delta(old, new);
        let got = decode_payload(Some(old), &p, DEFAULT_MAX_PAYLOAD_SIZE).expect("delta decodes");
        assert_eq!(got, new);
        let f = encode_full(new);
        assert_eq!(decode_payload(None, &f, DEFAULT_MAX_PAYLOAD_SIZE).expect("full decodes"), new);
        p.len()
    }

    /// Deterministic pseudo-random bytes (xorshift).
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

    #[test]
    fn delta_roundtrips_edge_cases() {
        roundtrip(b"", b"");
        roundtrip(b"", b"hello");
        roundtrip(b"hello", b"");
        roundtrip(b"hello world", b"hello world");
        roundtrip(b"abc", b"abcd");
        let a = noise(100_000, 1);
        roundtrip(&a, &a);
        roundtrip(&a, &noise(50_000, 2));
        roundtrip(&a[..1000], &a);
        roundtrip(&a, &a[..1000]);
        // repetitive content (padding-like) and reversed blocks
        let rep = vec![0xCCu8; 70_000];
        roundtrip(&rep, &[&rep[..30_000], b"x", &rep[..]].concat());
        let mut rev = a.clone();
        rev.reverse();
        roundtrip(&a, &rev);
    }

    #[test]
    fn delta_roundtrips_random_edits() {
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n.max(1) as u64) as usize
        };
        for round in 0..300 {
            let len = [0, 1, 7, 15, 16, 17, 31, 100, 5000, 70_000][round % 10];
            let mut old = noise(len, round as u64 + 1);
            if round % 3 == 0 {
                // repetitive content, like padding in binaries
                for (i, b) in old.iter_mut().enumerate() {
                    *b = (i % 7) as u8;
                }
            }
            let mut new = old.clone();
            for _ in 0..next(8) {
                let at = next(new.len() + 1);
                match next(4) {
                    0 => {
                        let ins = noise(next(40), round as u64 * 31 + 7);
                        new.splice(at..at, ins);
                    }
                    1 => {
                        let end = (at + next(200)).min(new.len());
                        new.drain(at..end);
                    }
                    2 if at < new.len() => new[at] = new[at].wrapping_add(1),
                    _ => {
                        // copy a block from elsewhere (moved code)
                        let from = next(old.len() + 1);
                        let end = (from + next(3000)).min(old.len());
                        new.splice(at..at, old[from..end].iter().copied());
                    }
                }
            }
            roundtrip(&old, &new);
        }
    }

    #[test]
    fn delta_of_moved_and_patched_blocks_is_small() {
        let a = noise(400_000, 7);
        // move blocks around, insert a little, patch scattered bytes (like shifted addresses)
        let mut b = Vec::new();
        b.extend_from_slice(&a[200_000..300_000]);
        b.extend_from_slice(b"a new string literal");
        b.extend_from_slice(&a[..200_000]);
        b.extend_from_slice(&a[300_000..]);
        for i in (0..b.len()).step_by(97) {
            b[i] = b[i].wrapping_add(3);
        }
        let size = roundtrip(&a, &b);
        assert!(size < b.len() / 10, "delta {size} bytes for {} bytes", b.len());
    }

    #[test]
    fn corrupt_payloads_are_refused() {
        let old = noise(50_000, 3);
        let mut new = old.clone();
        new[1234] ^= 0xff;
        new.extend_from_slice(b"tail");
        let p = encode_delta(&old, &new);
        let max = DEFAULT_MAX_PAYLOAD_SIZE;
        // wrong base
        assert!(matches!(decode_payload(Some(&new), &p, max), Err(WayInError::BaseMismatch(_))));
        assert!(matches!(decode_payload(None, &p, max), Err(WayInError::BaseMismatch(_))));
        // size cap
        assert!(matches!(decode_payload(Some(&old), &p, 10), Err(WayInError::TooLarge { .. })));
        // truncation and bit flips anywhere in the body
        let body_start = p.iter().position(|&b| b == b'\n').expect("header") + 1;
        for cut in [body_start, body_start + 5, p.len() - 1] {
            assert!(decode_payload(Some(&old), &p[..cut], max).is_err(), "cut at {cut}");
        }
        // (bytes 4..10 of the gzip header are informational: mtime, xfl, os)
        for i in (body_start..body_start + 4).chain((body_start + 10..p.len()).step_by(7)) {
            let mut q = p.clone();
            q[i] ^= 0x20;
            // A flip may change nothing (e.g. a match distance inside a run of
            // zeros); it must never yield different content.
            if let Ok(got) = decode_payload(Some(&old), &q, max) {
                assert_eq!(got, new, "flip at {i} changed the content");
            }
        }
        // trailing data
        let mut q = p.clone();
        q.push(0);
        assert!(decode_payload(Some(&old), &q, max).is_err());
        // hand-made hostile records: seek before 0, read past base, write past size
        for recs in [
            vec![1u8 /*seek -1*/, 1, 0, 0],
            vec![0, 0x80, 0x80, 0x04, 0, 0], // add 65536 > base
            vec![0, 0, 0x7f],                // literal longer than size
            vec![0, 0, 0],                   // record that produces nothing
        ] {
            let mut z = GzEncoder::new(Vec::new(), Compression::fast());
            z.write_all(&recs).expect("write");
            let h = PutHeader {
                v: HELPER_PROTOCOL,
                kind: "delta".into(),
                size: 4,
                sha256: sha256_hex(b"abcd"),
                base_size: Some(3),
                base_sha256: Some(sha256_hex(b"xyz")),
                body: 0,
            };
            let q = framed(h, z.finish().expect("gz"));
            match decode_payload(Some(b"xyz"), &q, max) {
                Err(WayInError::BadPayload(m)) => assert!(!m.contains("version"), "{recs:?}: {m}"),
                other => panic!("{recs:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn put_status_lines() {
        let ok = format!("{{\"ok\":true,\"kind\":\"delta\",\"bytes\":5,\"sha256\":\"{}\"}}\n", "a".repeat(64));
        assert_eq!(
            parse_put_status(ok.as_bytes()).expect("ok"),
            PutStatus::Written {
                kind: PayloadKind::Delta,
                bytes: 5,
                sha256: "a".repeat(64),
                pid: None,
                restart_ms: None,
            }
        );
        let mm = br#"{"ok":false,"error":"base-mismatch","message":"x differs"}"#;
        assert!(matches!(parse_put_status(mm), Ok(PutStatus::BaseMismatch { .. })));
        let other = br#"{"ok":false,"error":"hash-mismatch","message":"m"}"#;
        assert!(
            matches!(parse_put_status(other), Err(WayInError::HelperFailed { code, .. }) if code == "hash-mismatch")
        );
        assert!(matches!(parse_put_status(b""), Err(WayInError::BadStatus { .. })));
        assert!(matches!(parse_put_status(b"sh: not found"), Err(WayInError::BadStatus { .. })));
        assert_eq!(parse_hash_status(b"{\"missing\":true}\n").expect("missing"), RemoteFile::Missing);
        assert!(parse_version(br#"{"protocol":1,"go":"go1","arch":"amd64"}"#).is_err());
    }

    #[test]
    fn rel_paths() {
        for ok in ["a", "a/b", "a b/c.d", ".hidden", "a/..b", "...", "é/ü"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/../b", "..", "../a", "a/..", ".", "./a", "a/./b", "a//b", "a/", "a\\b", "..\\a", "a\0b",
            "a\nb", "a\rb",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::new(&"a".repeat(5000)).is_err());
        let p = RelPath::new("a/b/link").expect("path");
        assert!(p.symlink_target_stays_inside("../c"));
        assert!(p.symlink_target_stays_inside("../../c"));
        assert!(!p.symlink_target_stays_inside("../../../c"));
        assert!(!p.symlink_target_stays_inside("/etc/passwd"));
        assert!(!p.symlink_target_stays_inside("x/../../../../c"));
        assert_eq!(p.under(Path::new("/r")), PathBuf::from("/r/a/b/link"));
    }

    #[test]
    fn hostile_listings_are_refused() {
        let h = "0".repeat(64);
        let good = format!(
            r#"{{"root":"/d","entries":[{{"path":"a","type":"dir","mode":493}},{{"path":"a/f","type":"file","size":1,"mode":420,"mtime":5,"sha256":"{h}"}},{{"path":"l","type":"symlink","target":"a/f"}}],"skipped":[]}}"#
        );
        let l = parse_listing(good.as_bytes()).expect("listing");
        assert_eq!(l.entries.len(), 3);
        assert_eq!(l.entries[1].sha256.as_deref(), Some(h.as_str()));
        for bad in [
            r#"{"root":"/d","entries":[{"path":"../x","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"/etc","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"a","type":"dir"},{"path":"a","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"l","type":"symlink","target":"/"},{"path":"l/x","type":"dir"}]}"#
                .to_string(),
            r#"{"root":"/d","entries":[{"path":"f","type":"file"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"f","type":"block"}]}"#.to_string(),
            format!(r#"{{"root":"/d","entries":[{{"path":"f","type":"file","sha256":"{}"}}]}}"#, "Z".repeat(64)),
        ] {
            assert!(parse_listing(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_listing(br#"{"ok":false,"error":"io","message":"no such dir"}"#),
            Err(WayInError::HelperFailed { .. })
        ));
    }

    fn stream(lines: &[&[u8]]) -> Vec<u8> {
        let mut z = GzEncoder::new(Vec::new(), Compression::fast());
        for l in lines {
            z.write_all(l).expect("write");
        }
        z.finish().expect("gz")
    }

    type Answer = (GetItem, Option<BodyOutcome>, Vec<u8>);

    fn read_all(s: &[u8], req: &[&str]) -> Result<Vec<Answer>, WayInError> {
        let req: Vec<RelPath> = req.iter().map(|p| RelPath::new(p).expect("req")).collect();
        let mut r = GetReader::new(s, &req, GetLimits { max_file_size: 100, max_total_bytes: 150 });
        let mut out = Vec::new();
        while let Some(item) = r.next_item()? {
            let mut body = Vec::new();
            let outcome = match &item {
                GetItem::File(_) => Some(r.read_body(&mut body)?),
                GetItem::Refused { .. } => None,
            };
            out.push((item, outcome, body));
        }
        Ok(out)
    }

    #[test]
    fn get_stream_reader() {
        let h = sha256_hex(b"hello");
        let t1 = format!("{{\"sha256\":\"{h}\"}}\n");
        let good = stream(&[
            b"{\"path\":\"a/f\",\"size\":5,\"mode\":420,\"mtime\":1}\n",
            b"hello",
            t1.as_bytes(),
            b"{\"path\":\"b\",\"error\":\"no such file\"}\n",
            b"{\"path\":\"c\",\"size\":2,\"mode\":420,\"mtime\":1}\nxx{\"error\":\"changed while it was read\"}\n",
            b"{\"end\":true,\"files\":1,\"errors\":2}\n",
        ]);
        let items = read_all(&good, &["a/f", "b", "c"]).expect("good stream");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].2, b"hello");
        assert!(matches!(items[0].1, Some(BodyOutcome::Complete { .. })));
        assert!(matches!(items[1].0, GetItem::Refused { .. }));
        assert!(matches!(items[2].1, Some(BodyOutcome::Changed { .. })));

        let hostile: Vec<(Vec<u8>, &[&str])> = vec![
            // traversal, absolute, unrequested, out of order
            (stream(&[b"{\"path\":\"../x\",\"size\":0,\"mode\":420,\"mtime\":1}\n"]), &["a"][..]),
            (stream(&[b"{\"path\":\"/etc/x\",\"size\":0,\"mode\":420,\"mtime\":1}\n"]), &["a"]),
            (stream(&[b"{\"path\":\"z\",\"size\":0,\"mode\":420,\"mtime\":1}\n"]), &["a"]),
            (stream(&[b"{\"path\":\"b\",\"error\":\"x\"}\n{\"path\":\"a\",\"error\":\"x\"}\n"]), &["a", "b"]),
            // oversize, truncated body, wrong hash, no end line, trailing junk
            (stream(&[b"{\"path\":\"a\",\"size\":101,\"mode\":420,\"mtime\":1}\n"]), &["a"]),
            (stream(&[b"{\"path\":\"a\",\"size\":5,\"mode\":420,\"mtime\":1}\nhel"]), &["a"]),
            (stream(&[b"{\"path\":\"a\",\"size\":5,\"mode\":420,\"mtime\":1}\nHELLO", t1.as_bytes()]), &["a"]),
            (stream(&[b"{\"path\":\"a\",\"error\":\"x\"}\n"]), &["a"]),
            (stream(&[b"{\"path\":\"a\",\"error\":\"x\"}\n{\"end\":true,\"files\":0,\"errors\":1}\njunk"]), &["a"]),
            (stream(&[b"{\"end\":true,\"files\":0,\"errors\":0}\n"]), &["a"]),
            (b"not gzip at all".to_vec(), &["a"]),
        ];
        for (i, (s, req)) in hostile.iter().enumerate() {
            assert!(read_all(s, req).is_err(), "hostile stream {i} accepted");
        }
        // total cap across files
        let body = vec![b'x'; 80];
        let t = format!("{{\"sha256\":\"{}\"}}\n", sha256_hex(&body));
        let two = stream(&[
            b"{\"path\":\"a\",\"size\":80,\"mode\":420,\"mtime\":1}\n",
            &body,
            t.as_bytes(),
            b"{\"path\":\"b\",\"size\":80,\"mode\":420,\"mtime\":1}\n",
            &body,
            t.as_bytes(),
            b"{\"end\":true,\"files\":2,\"errors\":0}\n",
        ]);
        assert!(matches!(read_all(&two, &["a", "b"]), Err(WayInError::TooLarge { .. })));
    }

    #[test]
    fn go_targets() {
        assert_eq!(go_target("amd64").expect("amd64").goarch, "amd64");
        assert_eq!(go_target("linux/arm/v7").expect("arm").variant, Some(("GOARM", "7".to_string())));
        assert!(go_target("arm64/v8").is_ok());
        for bad in ["", "x86_64", "arm/v9", "amd64;rm -rf", "windows/amd64"] {
            assert!(go_target(bad).is_err(), "{bad}");
        }
        let args = helper_build_args(Path::new("/tmp/out"));
        assert!(args.iter().any(|a| a == "-trimpath"));
        assert!(args.iter().any(|a| a == "-ldflags=-s -w"));
    }
}
