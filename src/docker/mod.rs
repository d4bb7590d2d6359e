//! The Docker engine, beneath everything that uses it (the `ko.local` and
//! KinD publishers, the Docker target, syncback from a container): one way
//! to connect ([`connect`], to the engine [`endpoint`] chooses as the Docker
//! CLI would: `--docker-host`, `DOCKER_HOST` with or without TLS,
//! `DOCKER_CONTEXT`, the current context of `config.json`), one way to run a
//! command with input in a container.

pub mod endpoint;
mod tls;

use std::sync::OnceLock;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

pub use crate::exec::ExecOutput;
pub use endpoint::{Endpoint, EndpointError, Route};

/// The engine could not be chosen, set up or reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The settings name no usable engine.
    #[error("Docker engine: {0}")]
    Endpoint(#[from] EndpointError),
    /// The TLS material cannot be used.
    #[error("Docker engine at {endpoint}: {detail}")]
    Setup {
        /// The engine and the route to it.
        endpoint: String,
        /// What is wrong, naming the file.
        detail: String,
    },
    /// The engine did not answer, or the TLS handshake failed.
    #[error("cannot reach the Docker engine at {endpoint}: {cause}; {hint}")]
    Unreachable {
        /// The engine and the route to it.
        endpoint: String,
        /// The underlying error.
        cause: String,
        /// What to check.
        hint: String,
    },
}

/// `--docker-host`, set once by the command line before anything connects.
static HOST_FLAG: OnceLock<String> = OnceLock::new();

/// Records `--docker-host` (Docker's `-H`): it wins over every other setting.
pub fn set_host_flag(host: String) {
    let _ = HOST_FLAG.set(host);
}

/// The engine the settings choose (see [`endpoint`]), from the process
/// environment and `--docker-host`.
pub fn current_endpoint() -> Result<Endpoint, DockerError> {
    Ok(endpoint::resolve(HOST_FLAG.get().map(String::as_str), &|k| std::env::var(k).ok())?)
}

/// Connects to the engine the settings choose and agrees on an API version
/// both sides speak.
pub async fn connect() -> Result<Docker, DockerError> {
    connect_to(&current_endpoint()?).await
}

/// Connects to `endpoint` and agrees on an API version.
pub async fn connect_to(endpoint: &Endpoint) -> Result<Docker, DockerError> {
    const TIMEOUT_S: u64 = 120;
    let version = bollard::API_DEFAULT_VERSION;
    let setup = |detail: String| DockerError::Setup { endpoint: endpoint.to_string(), detail };
    let docker = match (&endpoint.tls, endpoint.host.starts_with("unix://")) {
        (_, true) => Docker::connect_with_unix(&endpoint.host, TIMEOUT_S, version).map_err(|e| {
            let cause = causes(&e);
            DockerError::Unreachable { endpoint: endpoint.to_string(), hint: hint(endpoint, &cause), cause }
        })?,
        (None, false) => {
            Docker::connect_with_http(&endpoint.host, TIMEOUT_S, version).map_err(|e| setup(e.to_string()))?
        }
        (Some(t), false) => tls::connect(&endpoint.host, t, TIMEOUT_S).map_err(setup)?,
    };
    docker.negotiate_version().await.map_err(|e| DockerError::Unreachable {
        endpoint: endpoint.to_string(),
        cause: causes(&e),
        hint: hint(endpoint, &causes(&e)),
    })
}

/// An error and its sources, each once.
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// What to check, by route and by what failed.
fn hint(endpoint: &Endpoint, cause: &str) -> String {
    let lower = cause.to_ascii_lowercase();
    let how = match endpoint.route {
        Route::Flag => "--docker-host",
        Route::DockerHost => "DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
        Route::EnvContext(_) => "DOCKER_CONTEXT, or the context itself (`docker context inspect`)",
        Route::ConfigContext(..) => {
            "the current context (`docker context ls`; `docker context use default` for the local socket)"
        }
        Route::Default => "--docker-host, DOCKER_HOST or `docker context use` to reach another engine",
    };
    match &endpoint.tls {
        Some(tls) if ["certificate", "tls", "handshake", "alert", "cert"].iter().any(|w| lower.contains(w)) => format!(
            "the TLS handshake failed: check that ca.pem in {dir} signed the engine's certificate and that \
             cert.pem/key.pem there are a client certificate the engine trusts (minikube: run \
             `eval $(minikube docker-env)` again); `docker version` with the same settings shows the same; set with {how}",
            dir = tls.dir.display()
        ),
        None if endpoint.host.starts_with("tcp://") => format!(
            "is an engine listening there without TLS? One on port 2376 speaks TLS: set DOCKER_TLS_VERIFY=1 and \
             DOCKER_CERT_PATH (as `minikube docker-env` prints them); set with {how}"
        ),
        _ if endpoint.host.starts_with("unix://") => {
            format!("is the Docker engine running, and may this user open its socket? Set with {how}")
        }
        _ => format!("is the engine running and listening there? Set with {how}"),
    }
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
    let (exec_id, mut output, mut input) = start_attached(docker, container, argv).await?;
    let mut out = ExecOutput { exit_code: -1, ..Default::default() };
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
    // The output stream ends when the process exits; its code may lag a moment.
    for _ in 0..200 {
        let info = docker.inspect_exec(&exec_id).await.map_err(err)?;
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
pub async fn exec_attached(docker: &Docker, container: &str, argv: &[String]) -> Result<crate::exec::Attached, String> {
    let (_, output, input) = start_attached(docker, container, argv).await?;
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
    Ok(crate::exec::Attached {
        stdin: input,
        stdout: Box::pin(tokio_util::io::StreamReader::new(stdout)),
        keep: Box::new(()),
    })
}

/// Starts `argv` in `container` with `stdin` as its input and hands back
/// its stdout as it comes (see [`crate::exec::ExecStream`]): a pump moves
/// the engine's output through a small channel, so at most a few frames
/// are held whatever the process prints; stderr goes to the tail.
pub async fn exec_streaming(
    docker: &Docker,
    container: &str,
    argv: &[String],
    stdin: Bytes,
) -> Result<crate::exec::ExecStream, String> {
    let (_, mut output, mut input) = start_attached(docker, container, argv).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let stderr = crate::exec::StderrTail::default();
    let tail = stderr.clone();
    let pump = tokio::spawn(async move {
        let writer = async move {
            input.write_all(&stdin).await?;
            input.shutdown().await
        };
        let reader = async move {
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        if tx.send(Ok(message)).await.is_err() {
                            return; // the reader is gone
                        }
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => tail.push(&message),
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        return;
                    }
                }
            }
        };
        let (w, ()) = tokio::join!(writer, reader);
        // A process that exits before reading all of stdin closes the pipe: not an error here.
        if let Err(e) = w {
            tracing::debug!("exec stdin: {e}");
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok(crate::exec::ExecStream {
        stdout: Box::pin(tokio_util::io::StreamReader::new(chunks)),
        stderr,
        keep: Box::new(crate::exec::AbortOnDrop(pump)),
    })
}

type ExecOutputStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
>;
type ExecInput = std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// Creates and starts an exec of `argv` with stdin, stdout and stderr
/// attached: its id, its output stream and its stdin.
async fn start_attached(
    docker: &Docker,
    container: &str,
    argv: &[String],
) -> Result<(String, ExecOutputStream, ExecInput), String> {
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
    match docker.start_exec(&exec.id, None).await.map_err(err)? {
        StartExecResults::Attached { output, input } => Ok((exec.id, output, input)),
        StartExecResults::Detached => Err("exec detached unexpectedly".into()),
    }
}
