//! What running a command in a container produced, whichever transport ran
//! it (Docker exec, the Kubernetes exec API).

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
