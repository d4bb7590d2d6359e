//! The way in: how gohot puts a new binary into a running container and reads
//! files back out of it.
//!
//! # Why a helper program, and why built by the user's Go toolchain
//!
//! A hot reload has to replace `/ko-app/<name>` inside a container whose base
//! may have no shell and no `tar` (ko's default base has neither), so
//! `kubectl cp`/`docker cp`-over-tar and `sh -c 'cat > …'` are out. gohot
//! therefore ships a tiny helper, [`crate::devimage::helper::HELPER_GO_FILES`] (Go standard library
//! only), and compiles it with the developer's own Go toolchain for the
//! container's platform ([`crate::devimage::helper::build_helper`]): the toolchain is already there
//! (gohot builds the app with it), it cross-compiles to every architecture the
//! app can run on, and `CGO_ENABLED=0 -trimpath -ldflags='-s -w'` gives a
//! static binary of about 3 MB that runs on an empty base. It sits in the dev
//! image at [`crate::layout::HELPER_PATH`] and gohot runs it through an exec stream
//! (`docker exec -i`, Kubernetes exec): payload on stdin, one JSON status line
//! on stdout, non-zero exit and a message on stderr on failure. The same
//! bytes work over both transports.
//!
//! The helper writes atomically: a temporary file in the destination's own
//! directory, `chmod`, `rename` over the destination. watchexec has no "file
//! complete" detection, so it can only ever see the old binary or the whole
//! new one, and renaming (rather than writing into a running executable) can
//! never hit "text file busy". A put is not fsynced: atomicity is what
//! readers need, and durability across a machine crash would cost 10–50 ms
//! per reload on overlay filesystems for a file whose container a crash
//! discards anyway (`atomic.go` says more).
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
//! Measured when the codec was written, on a stdlib-only net/http server
//! (release build, 2 shared cores; `bench/reload` reports today's bytes per
//! reload, and `real_go_binaries_delta_small_and_applied_by_the_helper` in
//! tests/wayin.rs checks the sizes on real Go builds): a string edit that changes the string's
//! length gives a delta of 0.6–1.1% of the binary, adding a small handler
//! 4–4.5%, encoded in 25–90 ms; the helper applied it in 35–85 ms (fsync
//! included then; `bench/reload` reports today's `encode` and `write`). One exception: Go zlib-compresses DWARF by default, and any
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
//! {"v":3,"kind":"full","size":N,"sha256":HEX,"crc32":C,"body":B}\n              gzip(new content)
//! {"v":3,"kind":"delta","size":N,"sha256":HEX,"crc32":C,"base_size":M,"base_sha256":HEX,"body":B}\n  gzip(records)
//! ```
//!
//! Every request frames itself (the put body's length, the get request's
//! closing empty line) and the helper never reads past it: the Kubernetes
//! exec protocol `v4.channel.k8s.io` (API servers before 1.30) has no way to
//! close stdin short of closing the whole stream, exit status included.
//!
//! A delta is a sequence of records until `size` bytes were produced:
//! `varint seek` (zig-zag, moves the base cursor), `uvarint add_len`, `uvarint
//! lit_len`, then runs covering `add_len` bytes of the base — each `uvarint
//! same` (bytes copied as they are), `uvarint diff` and `diff` difference
//! bytes (`out = base[cursor+i] + d[i]`, wrapping) — and `lit_len` literal
//! bytes. Each record produces at least one byte and each run covers one;
//! every length and position is bounds-checked by both decoders (the
//! helper's and [`decode_payload`]). The written file is checked against
//! `crc32` (IEEE); `sha256` names the content.
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

pub mod delta;
pub mod fuzz;
pub mod get;
pub mod list;
pub mod paths;
pub mod put;
pub mod session;

use std::io;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use get::*;
pub use list::*;
pub use paths::*;
pub use put::*;

/// Protocol version spoken by the helper and by this module.
pub const HELPER_PROTOCOL: u32 = 3;

/// Exit code of `helper put` when a delta's base is not the destination's
/// current content (the status line then says `base-mismatch`).
pub const EXIT_BASE_MISMATCH: i32 = 3;

/// Default upper bound on the size a payload may announce in [`decode_payload`].
pub const DEFAULT_MAX_PAYLOAD_SIZE: u64 = 4 << 30;

pub(crate) const MAX_HEADER_LINE: usize = 4096;
pub(crate) const MAX_REL_PATH: usize = 4096;
/// Most entries a listing may have by default ([`ListLimits`]).
pub const MAX_LIST_ENTRIES: usize = 50_000;
/// Most bytes a listing may have by default ([`ListLimits`]).
pub const MAX_LIST_BYTES: u64 = 64 << 20;

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

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> WayInError {
    let context = context.into();
    move |source| WayInError::Io { context, source }
}

pub(crate) fn snippet(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let mut t: String = s.chars().take(300).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[cfg(test)]
/// Deterministic pseudo-random bytes (xorshift).
pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
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
