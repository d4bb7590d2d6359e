//! The Docker engine, beneath everything that uses it (the `ko.local` and
//! KinD publishers, the Docker target, syncback from a container): one way
//! to connect, one way to run a command with input in a container.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

pub use crate::exec::ExecOutput;

/// The engine could not be reached or refused.
#[derive(Debug, thiserror::Error)]
#[error("Docker engine: {0}")]
pub struct DockerError(pub String);

/// Connects to the engine named by `DOCKER_HOST` (default: the local socket)
/// and agrees on an API version both sides speak.
pub async fn connect() -> Result<Docker, DockerError> {
    let hint = "is the Docker engine running and DOCKER_HOST right?";
    let docker = Docker::connect_with_defaults().map_err(|e| DockerError(format!("cannot connect: {e}; {hint}")))?;
    docker.negotiate_version().await.map_err(|e| DockerError(format!("cannot reach the engine: {e}; {hint}")))
}

/// Runs `argv` in `container` with `stdin` as its input, collecting output
/// and the exit code (`docker exec -i`). Used by the Docker target and the
/// KinD publisher (which loads images through `ctr` in a node container).
pub async fn exec_stdin(docker: &Docker, container: &str, argv: &[String], stdin: Bytes) -> Result<ExecOutput, String> {
    exec_stdin_deferred(docker, container, argv, Box::pin(async move { stdin })).await
}

/// [`exec_stdin`] with stdin still being computed: the exec is created and
/// attached first, stdin is awaited only when it is to be written.
pub async fn exec_stdin_deferred(
    docker: &Docker,
    container: &str,
    argv: &[String],
    stdin: futures::future::BoxFuture<'static, Bytes>,
) -> Result<ExecOutput, String> {
    let err = |e: bollard::errors::Error| e.to_string();
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            },
        )
        .await
        .map_err(err)?;
    let mut out = ExecOutput { exit_code: -1, ..Default::default() };
    match docker.start_exec(&exec.id, None).await.map_err(err)? {
        StartExecResults::Attached { mut output, mut input } => {
            // Feed stdin while reading output, so neither side can block the other.
            let writer = async move {
                let stdin = stdin.await;
                input.write_all(&stdin).await?;
                input.shutdown().await
            };
            let reader = async {
                while let Some(item) = output.next().await {
                    match item.map_err(err)? {
                        bollard::container::LogOutput::StdOut { message } => out.stdout.extend_from_slice(&message),
                        bollard::container::LogOutput::StdErr { message } => out.stderr.extend_from_slice(&message),
                        _ => {}
                    }
                }
                Ok::<(), String>(())
            };
            let (w, r) = tokio::join!(writer, reader);
            r?;
            // A process that exits before reading all of stdin closes the pipe: not an error here.
            if let Err(e) = w {
                tracing::debug!("exec stdin: {e}");
            }
        }
        StartExecResults::Detached => return Err("exec detached unexpectedly".into()),
    }
    // The output stream ends when the process exits; its code may lag a moment.
    for _ in 0..200 {
        let info = docker.inspect_exec(&exec.id).await.map_err(err)?;
        if info.running != Some(true) {
            out.exit_code = info.exit_code.unwrap_or(-1);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(out)
}

/// Starts `argv` in `container` with stdin, stdout and stderr attached and
/// hands back its stdin and its stdout as byte streams (stderr lines go to
/// the debug log): a long-lived process such as the way-in helper's session.
pub async fn exec_attached(
    docker: &Docker,
    container: &str,
    argv: &[String],
) -> Result<crate::target::Attached, String> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    match docker.start_exec(&exec.id, None).await.map_err(|e| e.to_string())? {
        StartExecResults::Attached { output, input } => {
            let container = container.to_string();
            let stdout = output.filter_map(move |item| {
                let chunk = match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => Some(Ok(message)),
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        tracing::debug!("{container}: {}", String::from_utf8_lossy(&message).trim_end());
                        None
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(std::io::Error::other(e))),
                };
                std::future::ready(chunk)
            });
            Ok(crate::target::Attached {
                stdin: input,
                stdout: Box::pin(tokio_util::io::StreamReader::new(stdout)),
                keep: Box::new(()),
            })
        }
        StartExecResults::Detached => Err("exec detached unexpectedly".into()),
    }
}
