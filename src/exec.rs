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

/// A command started in a replica whose stdout is read as it comes, for
/// answers of any size (syncback's listing and file stream): gohot holds
/// only what it is parsing, never the whole output. Dropping it ends the
/// exec.
pub struct ExecStream {
    /// The process's stdout, with backpressure: a slow reader slows the process.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// The start of its stderr, for error messages.
    pub stderr: StderrTail,
    /// Whatever the transport needs alive as long as the stream.
    pub keep: Box<dyn std::any::Any + Send>,
}

impl ExecStream {
    /// A stream over output that was collected whole (targets that cannot
    /// stream, test doubles).
    pub fn from_output(out: ExecOutput) -> Self {
        let stderr = StderrTail::default();
        stderr.push(&out.stderr);
        ExecStream { stdout: Box::pin(std::io::Cursor::new(out.stdout)), stderr, keep: Box::new(()) }
    }
}

/// The first [`StderrTail::MAX`] bytes of a process's stderr, filled while it runs.
#[derive(Clone, Debug, Default)]
pub struct StderrTail(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl StderrTail {
    /// Most bytes kept.
    pub const MAX: usize = 64 << 10;

    /// Appends what fits.
    pub fn push(&self, data: &[u8]) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = Self::MAX.saturating_sub(v.len());
        v.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// What arrived so far.
    pub fn get(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Aborts a transport's pump task when the stream it feeds is dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
