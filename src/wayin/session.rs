//! A persistent way in: one `helper serve` per container, kept open, over
//! which puts, hashes and removals are requests with one-line replies — so a
//! reload pays no exec setup (a Docker exec create+start+inspect, or a
//! Kubernetes exec's WebSocket through the API server and the kubelet).
//!
//! A request is the argv of a one-shot subcommand (without the helper's path)
//! and its stdin, framed as
//!
//! ```text
//! {"args":["put","-mode","0755","--","/ko-app/app"],"payload":N}\n  N bytes
//! ```
//!
//! and the reply is that subcommand's status line, so the parsers of
//! [`super::put`] read it unchanged. The session knows nothing of deadlines
//! or reopening: its owner drops it when a request fails or times out (the
//! stream may be out of step) and opens a new one.

use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::{parse_version, snippet, WayInError};
use crate::layout::HELPER_PATH;

/// Longest reply line accepted (status lines are a few hundred bytes).
const MAX_REPLY_LINE: usize = 64 << 10;

/// argv that starts a session in a container.
pub fn serve_argv() -> Vec<String> {
    vec![HELPER_PATH.into(), "serve".into()]
}

/// An open `helper serve`: its stdin and its stdout.
pub struct Session {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
    /// Anything the transport must keep alive while the session is open.
    _keep: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

impl Session {
    /// A session over a started `helper serve` (see [`serve_argv`]); `keep`
    /// is held until the session is dropped (e.g. the exec's handle). Checks
    /// the helper's protocol version with a first request.
    pub async fn open(
        input: Pin<Box<dyn AsyncWrite + Send>>,
        output: Pin<Box<dyn AsyncRead + Send>>,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Result<Session, WayInError> {
        let mut s = Session { input, output: BufReader::with_capacity(4096, output), _keep: keep };
        let reply = s.request(&["version".to_string()], &[]).await?;
        parse_version(&reply)?;
        Ok(s)
    }

    /// Sends one request — `argv` as for a one-shot exec, the helper's path
    /// first (it is dropped here), and its stdin — and returns the reply line.
    pub async fn request(&mut self, argv: &[String], stdin: &[u8]) -> Result<Vec<u8>, WayInError> {
        let args = match argv.first() {
            Some(first) if first == HELPER_PATH => &argv[1..],
            _ => argv,
        };
        let mut line = serde_json::to_vec(&serde_json::json!({ "args": args, "payload": stdin.len() }))
            .map_err(|e| WayInError::BadStatus { reason: e.to_string(), output: String::new() })?;
        line.push(b'\n');
        let broken = |context: &str| super::io_err(format!("the helper session {context}"));
        self.input.write_all(&line).await.map_err(broken("refused the request"))?;
        self.input.write_all(stdin).await.map_err(broken("refused the payload"))?;
        self.input.flush().await.map_err(broken("refused the payload"))?;
        let mut reply = Vec::with_capacity(256);
        let n = (&mut self.output)
            .take(MAX_REPLY_LINE as u64 + 1)
            .read_until(b'\n', &mut reply)
            .await
            .map_err(broken("broke while answering"))?;
        if n == 0 {
            return Err(WayInError::BadStatus {
                reason: "the helper session ended (the container may have restarted)".into(),
                output: String::new(),
            });
        }
        if reply.last() != Some(&b'\n') {
            return Err(WayInError::BadStatus {
                reason: "reply cut short or too long".into(),
                output: snippet(&reply),
            });
        }
        Ok(reply)
    }
}
