//! `helper get`: files streamed out of a container, read without trusting them.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::GzDecoder;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{io_err, is_hex64, RelPath, WayInError, MAX_REL_PATH};
use crate::layout::HELPER_PATH;

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

/// argv for `get DIR` (feed it [`get_request`] on stdin, read with [`GetReader`]).
pub fn get_argv(dir: &str) -> Vec<String> {
    vec![HELPER_PATH.into(), "get".into(), "--".into(), dir.into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wayin::sha256_hex;
    use flate2::write::GzEncoder;
    use flate2::Compression;

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
}
