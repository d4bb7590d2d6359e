//! What running a command in a container produced, whichever transport ran
//! it (Docker exec, the Kubernetes exec API).

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// What an exec produced.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit code (-1 when unknown).
    pub exit_code: i64,
}

/// A long-lived process started in a replica: its stdin and stdout (stderr
/// goes to the debug log). Dropping it ends the process's stdin.
pub struct Attached {
    /// The process's stdin.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// The process's stdout.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Whatever the transport needs alive as long as the streams.
    pub keep: Box<dyn std::any::Any + Send>,
}
