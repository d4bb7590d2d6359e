//! Putting one file into a container: the payload (`helper put`'s stdin,
//! FULL or DELTA, framed by its own lengths), the status lines of `put`,
//! `hash`, `rm` and `version`, and the argv of every single-file command.

use std::fmt;
use std::io::{BufReader, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Deserialize;

use super::{delta, is_hex64, sha256_hex, snippet, WayInError, HELPER_PROTOCOL, MAX_HEADER_LINE};
use crate::layout::HELPER_PATH;

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

#[derive(Clone, serde::Serialize, Deserialize)]
struct PutHeader {
    v: u32,
    kind: String,
    size: u64,
    sha256: String,
    /// CRC-32 (IEEE) of the new content: what the helper checks the file it
    /// wrote against (hashing it again with sha256 would cost a reload
    /// ~10 ms per 6 MB where the CPU lacks SHA instructions).
    crc32: u32,
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

/// gzip level of delta records (where no link was measured: the dev loop
/// picks per reload, `reload/payload.rs`). The records send only the bytes
/// a move changed, tens of kilobytes: measured on a 5.9 MB Go binary after
/// a string edit, level 2 gives 12.4 kB in 0.4 ms, level 1 13.1 kB in as
/// long; after a new handler, 99 kB in 2.6 ms against 113 kB in 1.5 ms.
const DELTA_LEVEL: u32 = 2;
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
        crc32: crc32fast::hash(new),
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
    encode_delta_hashed(old, &sha256_hex(old), new, &sha256_hex(new))
}

/// [`encode_delta`] when the caller already has both sha256s (lowercase
/// hex), which saves hashing two binaries on a reload's critical path.
pub fn encode_delta_hashed(old: &[u8], old_sha256: &str, new: &[u8], new_sha256: &str) -> Vec<u8> {
    DeltaRecords::encode(old, old_sha256, new, new_sha256).payload(DELTA_LEVEL)
}

/// A delta's records before compression: encoded once, then compressed at
/// the level the link calls for ([`DeltaRecords::payload`]). The records
/// hold the bytes of the new binary that moved blocks changed (and new
/// code), so the level trades encoding time for bytes on the wire.
pub struct DeltaRecords {
    head: PutHeader,
    records: Vec<u8>,
}

impl DeltaRecords {
    /// The records turning `old` into `new` (both sha256s, lowercase hex, known).
    pub fn encode(old: &[u8], old_sha256: &str, new: &[u8], new_sha256: &str) -> Self {
        Self::encode_indexed(&delta::SeedIndex::build(old), old, old_sha256, new, new_sha256)
    }

    /// [`DeltaRecords::encode`] with `old` indexed already ([`delta::SeedIndex::build`]).
    pub fn encode_indexed(
        seeds: &delta::SeedIndex,
        old: &[u8],
        old_sha256: &str,
        new: &[u8],
        new_sha256: &str,
    ) -> Self {
        let head = PutHeader {
            v: HELPER_PROTOCOL,
            kind: "delta".into(),
            size: new.len() as u64,
            sha256: new_sha256.to_string(),
            crc32: crc32fast::hash(new),
            base_size: Some(old.len() as u64),
            base_sha256: Some(old_sha256.to_string()),
            body: 0,
        };
        let (records, _literal) = delta::encode_indexed(seeds, old, new);
        DeltaRecords { head, records }
    }

    /// Bytes of records (before compression).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records (an empty new binary).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The DELTA payload with the records compressed at gzip `level` (1–9).
    pub fn payload(&self, level: u32) -> Vec<u8> {
        framed(self.head.clone(), gzip(&self.records, level))
    }
}

/// Applies a put payload the way the helper does, in memory: `current` is the
/// destination's content (needed for a delta), `max_size` caps the size the
/// header may announce. Every bound is checked; the result's crc32 is
/// verified as the helper does, and its sha256 too. Useful to check a payload before sending it, and in tests.
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
    let crc = crc32fast::hash(&out);
    if crc != h.crc32 {
        return Err(WayInError::HashMismatch {
            what: "payload (crc32)".into(),
            expected: h.crc32.to_string(),
            actual: crc.to_string(),
        });
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
        /// Milliseconds the helper took from the payload's first byte to the
        /// rename (receiving, decoding, writing).
        write_ms: Option<u64>,
        /// With `-probe`: milliseconds from the new process's start until it
        /// answered the probe inside the container (`None`: it did not).
        answer_ms: Option<u64>,
        /// With `-wait-exec`: the new process exited without answering — how
        /// (`exit status 2`, `signal: killed`; empty when the kernel no longer
        /// held its status).
        exited: Option<String>,
        /// Milliseconds from the rename until the exit was seen.
        exit_ms: Option<u64>,
        /// In a session: microseconds the payload took to arrive (from the
        /// request line to its last byte), what the link's throughput is
        /// measured by.
        recv_us: Option<u64>,
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
    write_ms: Option<u64>,
    answer_ms: Option<u64>,
    exited: Option<String>,
    exit_ms: Option<u64>,
    recv_us: Option<u64>,
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
            Ok(PutStatus::Written {
                kind,
                bytes,
                sha256,
                pid: raw.pid,
                restart_ms: raw.restart_ms,
                write_ms: raw.write_ms,
                answer_ms: raw.answer_ms,
                exited: raw.exited,
                exit_ms: raw.exit_ms,
                recv_us: raw.recv_us,
            })
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

/// argv for `put`: write stdin's payload to `dest` with permission `mode`.
pub fn put_argv(dest: &str, mode: u32) -> Vec<String> {
    vec![HELPER_PATH.into(), "put".into(), "-mode".into(), format!("{:04o}", mode & 0o7777), "--".into(), dest.into()]
}

/// argv for `put` that, after the rename, waits up to `wait` for a process
/// started from the new file (the supervisor's restart) and reports it.
pub fn put_wait_argv(dest: &str, mode: u32, wait: std::time::Duration) -> Vec<String> {
    let mut v = put_argv(dest, mode);
    let at = v.len() - 2;
    v.insert(at, format!("-wait-exec={}ms", wait.as_millis()));
    v
}

/// [`put_wait_argv`], and then waits until the new process answers `probe`
/// inside the container (`http:PORT`: any HTTP answer from 127.0.0.1:PORT;
/// `tcp:PORT`: a connection accepted) or exits, whichever comes first.
pub fn put_probe_argv(dest: &str, mode: u32, wait: std::time::Duration, probe: &str) -> Vec<String> {
    let mut v = put_wait_argv(dest, mode, wait);
    let at = v.len() - 2;
    v.insert(at, format!("-probe={probe}"));
    v
}

/// argv for `serving`: wait up to `wait` for a process running `dest` and,
/// with `probe` (`http:PORT`, `tcp:PORT`), until it answers inside the
/// container — the first start's answer, with no put.
pub fn serving_argv(dest: &str, wait: std::time::Duration, probe: Option<&str>) -> Vec<String> {
    let mut v = vec![HELPER_PATH.into(), "serving".into(), format!("-wait-exec={}ms", wait.as_millis())];
    v.extend(probe.map(|p| format!("-probe={p}")));
    v.extend(["--".into(), dest.into()]);
    v
}

/// What `helper serving` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serving {
    /// The process running the file answered (or, with no probe, runs).
    Answered,
    /// It exited first: how (`exit status 2`; "" when unknown).
    Exited(String),
    /// Nothing answered within the wait.
    NotYet,
}

/// Parses the stdout of `helper serving`.
pub fn parse_serving_status(stdout: &[u8], probing: bool) -> Result<Serving, WayInError> {
    let raw: RawStatus = parse_status(stdout)?;
    match raw.ok {
        Some(true) => Ok(match (raw.exited, raw.pid, raw.answer_ms) {
            (Some(how), _, _) => Serving::Exited(how),
            (None, Some(_), Some(_)) => Serving::Answered,
            (None, Some(_), None) if !probing => Serving::Answered,
            _ => Serving::NotYet,
        }),
        Some(false) => Err(helper_failure(&raw)),
        None => Err(WayInError::BadStatus { reason: "no \"ok\" field".into(), output: snippet(stdout) }),
    }
}

/// argv for `rm PATH`: remove one file (a missing file is not an error).
pub fn rm_argv(path: &str) -> Vec<String> {
    vec![HELPER_PATH.into(), "rm".into(), "--".into(), path.into()]
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
    vec![HELPER_PATH.into(), "hash".into(), "--".into(), path.into()]
}

/// argv for `seed SRC DST` (atomic copy, e.g. from an init container).
pub fn seed_argv(src: &str, dst: &str) -> Vec<String> {
    vec![HELPER_PATH.into(), "seed".into(), "--".into(), src.into(), dst.into()]
}

/// argv for `version`.
pub fn version_argv() -> Vec<String> {
    vec![HELPER_PATH.into(), "version".into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wayin::noise;
    use crate::wayin::DEFAULT_MAX_PAYLOAD_SIZE;

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
            vec![0, 2, 0, 3, 0],             // a kept run longer than its record's add
            vec![0, 2, 0, 1, 2, 7, 7],       // a changed run past its record's add
            vec![0, 2, 0, 0, 0],             // a run that covers nothing
        ] {
            let mut z = GzEncoder::new(Vec::new(), Compression::fast());
            z.write_all(&recs).expect("write");
            let h = PutHeader {
                v: HELPER_PROTOCOL,
                kind: "delta".into(),
                size: 4,
                sha256: sha256_hex(b"abcd"),
                crc32: crc32fast::hash(b"abcd"),
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
    fn serving_status_lines() {
        let argv = serving_argv("/ko-app/app", std::time::Duration::from_secs(2), Some("http:8080"));
        assert_eq!(argv[1..], ["serving", "-wait-exec=2000ms", "-probe=http:8080", "--", "/ko-app/app"]);
        let p = |line: &str, probing| parse_serving_status(line.as_bytes(), probing);
        assert_eq!(p(r#"{"ok":true,"pid":7,"restart_ms":0,"answer_ms":12}"#, true).unwrap(), Serving::Answered);
        assert_eq!(p(r#"{"ok":true,"pid":7,"restart_ms":0}"#, false).unwrap(), Serving::Answered);
        assert_eq!(
            p(r#"{"ok":true,"pid":7,"restart_ms":0}"#, true).unwrap(),
            Serving::NotYet,
            "running, not answering"
        );
        assert_eq!(p(r#"{"ok":true,"restart_ms":2000}"#, false).unwrap(), Serving::NotYet);
        assert_eq!(
            p(r#"{"ok":true,"exited":"exit status 2","exit_ms":40,"restart_ms":0}"#, true).unwrap(),
            Serving::Exited("exit status 2".into())
        );
        assert!(matches!(
            p(r#"{"ok":false,"error":"usage","message":"m"}"#, true),
            Err(WayInError::HelperFailed { .. })
        ));
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
                write_ms: None,
                answer_ms: None,
                exited: None,
                exit_ms: None,
                recv_us: None,
            }
        );
        let exited = format!(
            "{{\"ok\":true,\"kind\":\"delta\",\"bytes\":5,\"sha256\":\"{}\",\"pid\":9,\"exited\":\"exit status 2\",\"exit_ms\":4,\"recv_us\":120}}\n",
            "a".repeat(64)
        );
        let Ok(PutStatus::Written { exited, exit_ms, answer_ms, recv_us, .. }) = parse_put_status(exited.as_bytes())
        else {
            panic!("exited")
        };
        assert_eq!((exited.as_deref(), exit_ms, answer_ms, recv_us), (Some("exit status 2"), Some(4), None, Some(120)));
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
}
