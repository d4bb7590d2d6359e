//! The Debug Adapter Protocol's wire format: a header block
//! (`Content-Length: N`, other headers ignored) ended by an empty line, then
//! N bytes of JSON. Messages are kept as JSON values, so fields gohot does
//! not know pass through unchanged.
//!
//! Memory is bounded whatever a peer sends: a header block of at most
//! [`MAX_HEADER`] bytes, a body of at most [`MAX_MESSAGE`] bytes.

use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest message body accepted (a large `variables` or
/// `loadedSources` answer is a few MB).
pub const MAX_MESSAGE: usize = 64 << 20;
/// The largest header block accepted.
pub const MAX_HEADER: usize = 8 << 10;

/// A malformed or failed DAP stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DapError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The header block is not DAP's.
    #[error("not a DAP header: {0}")]
    Header(String),
    /// A body larger than [`MAX_MESSAGE`].
    #[error("a DAP message of {0} bytes is over the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    /// The body is not a JSON object.
    #[error("a DAP message is not a JSON object: {0}")]
    Json(String),
}

/// Reads messages from a stream, keeping what it has read of a message
/// that is not complete yet: [`MessageReader::next`] is cancel safe, so it
/// can wait in a `select!` beside other events without losing bytes
/// ([`read_message`] cannot: cancelled half way through a message, the
/// bytes it took are gone and the stream is out of step).
pub struct MessageReader<R> {
    inner: R,
    buf: bytes::BytesMut,
}

impl<R: tokio::io::AsyncRead + Unpin> MessageReader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> Self {
        MessageReader { inner, buf: bytes::BytesMut::with_capacity(16 << 10) }
    }

    /// The next message; `None` when the stream ends cleanly between
    /// messages. Cancel safe.
    pub async fn next(&mut self) -> Result<Option<Map<String, Value>>, DapError> {
        loop {
            let frame = parse_frame(&self.buf)?;
            if let Frame::Whole(used, msg) = frame {
                let _ = self.buf.split_to(used);
                return Ok(Some(msg));
            }
            // `read_buf` is cancel safe: no bytes are taken unless it completes.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return match frame {
                    _ if self.buf.is_empty() => Ok(None),
                    Frame::NeedBody => {
                        Err(DapError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "early eof")))
                    }
                    _ => Err(DapError::Header("the stream ended inside a header".into())),
                };
            }
        }
    }
}

/// What the start of a buffer holds.
enum Frame {
    /// A message, and the bytes it took.
    Whole(usize, Map<String, Value>),
    /// Part of a header block.
    NeedHeader,
    /// A header block and part of its body.
    NeedBody,
}

/// The message at the start of `buf`, or what is missing.
fn parse_frame(buf: &[u8]) -> Result<Frame, DapError> {
    let mut length: Option<usize> = None;
    let mut at = 0;
    loop {
        let Some(end) = buf[at..].iter().position(|b| *b == b'\n') else {
            if buf.len() > MAX_HEADER {
                return Err(DapError::Header(format!("a header block over {MAX_HEADER} bytes")));
            }
            return Ok(Frame::NeedHeader);
        };
        let line = &buf[at..at + end];
        at += end + 1;
        if at > MAX_HEADER {
            return Err(DapError::Header(format!("a header block over {MAX_HEADER} bytes")));
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(DapError::Header(format!("{text:?}")));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>().map_err(|_| DapError::Header(format!("{text:?}")))?);
        }
    }
    let length = length.ok_or_else(|| DapError::Header("no Content-Length".into()))?;
    if length > MAX_MESSAGE {
        return Err(DapError::TooLarge(length));
    }
    if buf.len() < at + length {
        return Ok(Frame::NeedBody);
    }
    match serde_json::from_slice(&buf[at..at + length]) {
        Ok(Value::Object(m)) => Ok(Frame::Whole(at + length, m)),
        Ok(_) => Err(DapError::Json("not an object".into())),
        Err(e) => Err(DapError::Json(e.to_string())),
    }
}

/// Reads one message; `None` when the stream ends cleanly between messages.
pub async fn read_message<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<Map<String, Value>>, DapError> {
    let mut length: Option<usize> = None;
    let mut header_bytes = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *r).take((MAX_HEADER - header_bytes + 1) as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            if header_bytes == 0 {
                return Ok(None);
            }
            return Err(DapError::Header("the stream ended inside a header".into()));
        }
        header_bytes += n;
        if header_bytes > MAX_HEADER {
            return Err(DapError::Header(format!("a header block over {MAX_HEADER} bytes")));
        }
        if line.last() != Some(&b'\n') {
            return Err(DapError::Header("the stream ended inside a header".into()));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(DapError::Header(format!("{text:?}")));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<usize>().map_err(|_| DapError::Header(format!("{text:?}")))?;
            length = Some(n);
        }
    }
    let length = length.ok_or_else(|| DapError::Header("no Content-Length".into()))?;
    if length > MAX_MESSAGE {
        return Err(DapError::TooLarge(length));
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await?;
    match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(DapError::Json("not an object".into())),
        Err(e) => Err(DapError::Json(e.to_string())),
    }
}

/// The bytes of one message on the wire.
pub fn encode(msg: &Map<String, Value>) -> Vec<u8> {
    let body = serde_json::to_vec(msg).unwrap_or_default();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Writes one message and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &Map<String, Value>) -> Result<(), DapError> {
    w.write_all(&encode(msg)).await?;
    w.flush().await?;
    Ok(())
}

/// Whether the first bytes a client sent are a DAP header (else it speaks
/// delve's JSON-RPC, whose first byte is `{`).
pub fn looks_like_dap(first: &[u8]) -> bool {
    let n = first.len().min(b"content-length".len());
    n > 0 && first[..n].eq_ignore_ascii_case(&b"content-length"[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message (or the error that ends the stream), read by both
    /// readers, which must agree.
    async fn read_all(bytes: &[u8]) -> Vec<Result<Option<Map<String, Value>>, String>> {
        let mut r = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let m = read_message(&mut r).await.map_err(|e| e.to_string());
            let end = !matches!(m, Ok(Some(_)));
            out.push(m);
            if end {
                break;
            }
        }
        let mut framed = MessageReader::new(bytes);
        let mut again = Vec::new();
        loop {
            let m = framed.next().await.map_err(|e| e.to_string());
            let end = !matches!(m, Ok(Some(_)));
            again.push(m);
            if end {
                break;
            }
        }
        assert_eq!(out, again, "read_message and MessageReader differ on {:?}", String::from_utf8_lossy(bytes));
        out
    }

    /// A read cancelled half way through a message (another `select!`
    /// branch won) keeps what it read: the next read returns the message.
    #[tokio::test]
    async fn a_read_cancelled_half_way_loses_nothing() {
        use futures::FutureExt;
        let msg: Map<String, Value> =
            serde_json::from_str(r#"{"seq":3,"type":"request","command":"disconnect"}"#).unwrap();
        let wire = encode(&msg);
        let (mut w, r) = tokio::io::duplex(4096);
        let mut reader = MessageReader::new(r);
        for cut in [5, wire.len() - 3] {
            w.write_all(&wire[..cut]).await.unwrap();
            assert!(reader.next().now_or_never().is_none(), "a part of a message is not a message");
            w.write_all(&wire[cut..]).await.unwrap();
            assert_eq!(reader.next().await.unwrap(), Some(msg.clone()), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"seq":1,"type":"request","command":"threads"}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"seq":2,"type":"event","event":"output","body":{"output":"é\n"}}"#).unwrap();
        let mut wire = encode(&a);
        wire.extend(encode(&b));
        let got = read_all(&wire).await;
        assert_eq!(got, vec![Ok(Some(a)), Ok(Some(b)), Ok(None)]);
    }

    #[tokio::test]
    async fn other_headers_and_bare_newlines_are_accepted() {
        let body = r#"{"seq":1}"#;
        let wire = format!("Content-Type: application/vscode-jsonrpc\nContent-Length: {}\n\n{body}", body.len());
        let got = read_all(wire.as_bytes()).await;
        assert!(matches!(&got[0], Ok(Some(m)) if m["seq"] == 1), "{got:?}");
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_bounded_memory() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"Content-Length: 99999999999\r\n\r\n".to_vec(), "over the limit"),
            (b"Content-Length: x\r\n\r\n".to_vec(), "not a DAP header"),
            (b"Hello\r\n\r\n".to_vec(), "not a DAP header"),
            (b"X-Other: 1\r\n\r\n{}".to_vec(), "no Content-Length"),
            (b"Content-Length: 2\r\n\r\n[]".to_vec(), "not a JSON object"),
            (b"Content-Length: 10\r\n\r\n{}".to_vec(), "early eof"),
            (b"Content-Len".to_vec(), "inside a header"),
            ([b"X: ".to_vec(), vec![b'a'; MAX_HEADER + 10]].concat(), "header block over"),
        ];
        for (wire, want) in cases {
            let got = read_all(&wire).await;
            let err = got[0].as_ref().expect_err("an error");
            assert!(err.contains(want), "{}: {err}", String::from_utf8_lossy(&wire[..wire.len().min(40)]));
        }
    }

    #[test]
    fn dap_is_told_from_json_rpc() {
        assert!(looks_like_dap(b"Content-Length: 12"));
        assert!(looks_like_dap(b"content-l"));
        assert!(!looks_like_dap(br#"{"method":"RPCServer.State"}"#));
        assert!(!looks_like_dap(b""));
    }
}
