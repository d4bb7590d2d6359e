//! Running the way-in helper in a container through the Kubernetes exec API
//! (a WebSocket, `v5.channel.k8s.io` or `v4.channel.k8s.io`): the payload on
//! stdin, stdout and stderr collected, the exit status read from the status
//! channel.
//!
//! The status channel carries a `metav1.Status`: `Success`, or `Failure` with
//! reason `NonZeroExitCode` and the code in `details.causes[reason=ExitCode]`,
//! or another failure (no such container, executable not found) that never
//! ran the command. [`exit_code`] decodes it; it is pure so it is tested
//! without a cluster. A 403 on the upgrade request is RBAC refusing
//! `create` on `pods/exec`, and [`crate::cluster::Cluster::error`] says so.
//!
//! Note on stdin: only the v5 protocol (API servers from 1.30) can signal
//! end-of-input. On v4 the client's only way to end stdin is to close the
//! whole WebSocket, and kube-rs does exactly that when stdin is shut down —
//! the exit status on channel 3 is then lost. So stdin is never closed here:
//! it stays open until the status has arrived, every helper request frames
//! itself (the put body's length, the get request's empty line), and a
//! command without input runs with no stdin at all.

use ::kube::api::{Api, AttachParams, AttachedProcess};
use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{Cluster, KubeError};
use crate::exec::AbortOnDrop;
use crate::hosting::{Attached, ExecOutput, ExecStream, StderrTail};

/// What the status channel said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecStatus {
    /// The command ran and exited with this code.
    Exited(i64),
    /// The command did not run (or the stream broke): why.
    Failed(String),
}

/// Decodes the exec status object (`None`: the stream ended without one).
pub fn exit_code(status: Option<&Status>) -> ExecStatus {
    let Some(s) = status else {
        return ExecStatus::Failed(
            "the exec stream ended without an exit status (the container may have restarted)".into(),
        );
    };
    if s.status.as_deref() == Some("Success") {
        return ExecStatus::Exited(0);
    }
    if s.reason.as_deref() == Some("NonZeroExitCode") {
        let code = s
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse::<i64>().ok());
        if let Some(code) = code {
            return ExecStatus::Exited(code);
        }
    }
    let message = s.message.clone().unwrap_or_else(|| "exec failed without a message".into());
    if message.contains("executable file not found") || message.contains("no such file or directory") {
        return ExecStatus::Failed(format!(
            "{message}: the container has no gohot helper; was it deployed from a dev image (gohot apply --dev / gohot dev)?"
        ));
    }
    ExecStatus::Failed(message)
}

/// Starts `argv` in `namespace/pod/container` over the exec WebSocket, with
/// stdout and stderr (and stdin when asked) attached.
async fn start(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
    stdin: bool,
    stdout_buf: usize,
) -> Result<AttachedProcess, KubeError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(true)
        .max_stdin_buf_size(256 * 1024)
        .max_stdout_buf_size(stdout_buf)
        .max_stderr_buf_size(64 * 1024);
    api.exec(pod, argv.iter().map(String::as_str), &params)
        .await
        .map_err(|e| cluster.error(e, "create", "pods/exec", namespace))
}

/// Runs `argv` in `namespace/pod/container` with `stdin`, collecting output.
pub async fn exec(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
    stdin: Bytes,
) -> Result<ExecOutput, KubeError> {
    let replica = format!("{namespace}/{pod}/{container}");
    let fail = |detail: String| KubeError::Exec { replica: replica.clone(), detail };
    let with_stdin = !stdin.is_empty();
    let mut process = start(cluster, namespace, pod, container, argv, with_stdin, 256 * 1024).await?;
    let (Some(mut stdout), Some(mut stderr), Some(status)) =
        (process.stdout(), process.stderr(), process.take_status())
    else {
        return Err(fail("the exec stream has no stdout/stderr".into()));
    };
    let input = if with_stdin { process.stdin() } else { None };
    // Feed stdin while draining both outputs, so no side can block another;
    // the writer is handed back, not shut down, and dropped only once both
    // outputs have ended (the status has come): see the module note.
    let writer = async move {
        let Some(mut input) = input else { return (None, Ok(())) };
        let written = async {
            input.write_all(&stdin).await?;
            input.flush().await
        }
        .await;
        (Some(input), written)
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let ((input, w), o, e) = tokio::join!(writer, stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    if let Err(e) = w {
        // A command that exits before reading all of stdin closes it: not an error here.
        tracing::debug!("exec stdin in {replica}: {e}");
    }
    o.map_err(|e| fail(format!("reading stdout: {e}")))?;
    e.map_err(|e| fail(format!("reading stderr: {e}")))?;
    let status = status.await;
    drop(input);
    if let Err(e) = process.join().await {
        tracing::debug!("exec stream in {replica}: {e}");
    }
    match exit_code(status.as_ref()) {
        ExecStatus::Exited(exit_code) => Ok(ExecOutput { stdout: out, stderr: err, exit_code }),
        ExecStatus::Failed(detail) => Err(fail(detail)),
    }
}

/// Starts `argv` in `namespace/pod/container` with `stdin` and hands back
/// its stdout as it comes (see [`ExecStream`]; kube-rs's bounded buffer
/// gives backpressure); stderr goes to the tail. Stdin stays open until
/// the exec has ended (see the module note).
pub async fn exec_stream(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
    stdin: Bytes,
) -> Result<ExecStream, KubeError> {
    let replica = format!("{namespace}/{pod}/{container}");
    let with_stdin = !stdin.is_empty();
    let mut process = start(cluster, namespace, pod, container, argv, with_stdin, 256 * 1024).await?;
    let (Some(stdout), Some(mut stderr)) = (process.stdout(), process.stderr()) else {
        return Err(KubeError::Exec { replica, detail: "the exec stream has no stdout/stderr".into() });
    };
    let input = if with_stdin { process.stdin() } else { None };
    let tail = StderrTail::default();
    let filling = tail.clone();
    let task = tokio::spawn(async move {
        let writer = async move {
            let mut input = input?;
            let written = async {
                input.write_all(&stdin).await?;
                input.flush().await
            };
            if let Err(e) = written.await {
                tracing::debug!("exec stdin in {replica}: {e}");
            }
            Some(input)
        };
        let drain = async {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                filling.push(&buf[..n]);
            }
        };
        let (input, ()) = tokio::join!(writer, drain);
        let _ = process.join().await;
        drop(input);
    });
    Ok(ExecStream { stdout: Box::pin(stdout), stderr: tail, keep: Box::new(AbortOnDrop(task)) })
}

/// Starts `argv` in `namespace/pod/container` with stdin kept open (a
/// long-lived process: the way-in helper's session) and hands back its stdin
/// and stdout; stderr lines go to the debug log. The exec's handle travels in
/// [`Attached::keep`]: dropping it (with the streams) closes the WebSocket,
/// which ends the process's stdin on every protocol version.
pub async fn attach(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
) -> Result<Attached, KubeError> {
    let replica = format!("{namespace}/{pod}/{container}");
    let mut process = start(cluster, namespace, pod, container, argv, true, 64 * 1024).await?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) = (process.stdin(), process.stdout(), process.stderr()) else {
        return Err(KubeError::Exec { replica, detail: "the exec stream has no stdin/stdout/stderr".into() });
    };
    // Drained so that a chatty stderr can never stall stdout.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tracing::debug!("{replica}: {}", String::from_utf8_lossy(&buf[..n]).trim_end());
        }
    });
    Ok(Attached { stdin: Box::pin(stdin), stdout: Box::pin(stdout), keep: Box::new(process) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock;

    fn status(v: serde_json::Value) -> Status {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn exit_status_decoding() {
        assert_eq!(
            exit_code(Some(&status(serde_json::json!({"status": "Success", "metadata": {}})))),
            ExecStatus::Exited(0)
        );
        let nonzero = status(serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [helper put], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }));
        assert_eq!(exit_code(Some(&nonzero)), ExecStatus::Exited(3));
        let notfound = status(serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "InternalError",
            "message": "exec: \"/var/run/gohot/helper\": stat /var/run/gohot/helper: no such file or directory"
        }));
        match exit_code(Some(&notfound)) {
            ExecStatus::Failed(m) => assert!(m.contains("no gohot helper") && m.contains("--dev"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(exit_code(None), ExecStatus::Failed(m) if m.contains("without an exit status")));
    }

    /// Mock API server (no cluster here): RBAC refuses the exec upgrade with
    /// 403; the error names the verb, the resource and the namespace.
    #[tokio::test]
    async fn rbac_denial_of_exec_is_explained() {
        let (cluster, log) = mock::cluster(|_| {
            mock::status(
                403,
                "Forbidden",
                r#"pods "hello-a" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "shop""#,
            )
        });
        let e =
            exec(&cluster, "shop", "hello-a", "app", &["/var/run/gohot/helper".into(), "version".into()], Bytes::new())
                .await
                .unwrap_err();
        assert!(matches!(e, KubeError::Forbidden { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with("the cluster refused create pods/exec in namespace shop for dev: add it to your Role (manifests/gohot-developer.yaml"), "{e}");
        let seen = log.lock().unwrap();
        assert!(seen[0].uri.starts_with("/api/v1/namespaces/shop/pods/hello-a/exec?"), "{}", seen[0].uri);
        assert!(seen[0].uri.contains("container=app") && seen[0].uri.contains("stdout=true"), "{}", seen[0].uri);
        assert!(!seen[0].uri.contains("stdin=true"), "a command without input runs without stdin: {}", seen[0].uri);
    }

    /// A fake API server on loopback that speaks the real exec protocol
    /// (WebSocket), as `v5.channel.k8s.io` or `v4.channel.k8s.io` — the
    /// version it picks from what the client offers, as an API server of
    /// that generation does. Its "process" reads stdin until it has `expect`
    /// bytes (a framed request, as the helper reads), then answers on stdout,
    /// stderr and the status channel. Like a real v4 server it knows no
    /// end-of-stdin signal: a client that closes the WebSocket (or sends a v5
    /// CLOSE frame) before the answer gets no status at all. Not a cluster
    /// (tests/kube.rs has the real one), but the bytes kube-rs sends and
    /// reads are the real ones.
    // tungstenite's callback signature fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    async fn fake_exec_server(
        protocol: &'static str,
        expect: usize,
        exit: i64,
    ) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut path = String::new();
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, mut resp: Response| {
                path = req.uri().to_string();
                let offered = req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
                assert!(offered.contains(protocol), "client offered {offered:?}, server speaks {protocol}");
                resp.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
                Ok(resp)
            })
            .await
            .unwrap();
            let mut stdin = Vec::new();
            while stdin.len() < expect {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => match (b.first(), b.get(1)) {
                        (Some(0), _) => stdin.extend_from_slice(&b[1..]),
                        (Some(255), Some(0)) if protocol.starts_with("v5") => break, // stdin closed
                        // v4 has no channel 255: a real server drops the stream.
                        _ => return (path, stdin),
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return (path, stdin),
                    Some(Ok(_)) => {}
                }
            }
            let frame = |ch: u8, data: &[u8]| Message::binary([&[ch][..], data].concat());
            ws.send(frame(1, format!("{{\"received\":{}}}\n", stdin.len()).as_bytes())).await.unwrap();
            ws.send(frame(2, b"a warning\n")).await.unwrap();
            let status = if exit == 0 {
                serde_json::json!({"metadata": {}, "status": "Success"})
            } else {
                serde_json::json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                    "message": "command terminated with non-zero exit code", "details": {"causes": [{"reason": "ExitCode", "message": exit.to_string()}]}})
            };
            ws.send(frame(3, &serde_json::to_vec(&status).unwrap())).await.unwrap();
            let _ = ws.close(None).await;
            (path, stdin)
        });
        (url, task)
    }

    fn loopback_cluster(url: &str) -> Cluster {
        let config = ::kube::Config::new(url.parse().unwrap());
        let client = ::kube::Client::try_from(config).unwrap();
        Cluster::from_client(client, mock::context())
    }

    /// Both protocol generations: a 1 MB framed payload arrives intact and
    /// the exit status comes back (on v4 only because stdin is never closed
    /// before the answer); a command without input runs with stdin=false.
    #[tokio::test]
    async fn exec_stream_stdin_stdout_stderr_and_exit_code() {
        for protocol in ["v5.channel.k8s.io", "v4.channel.k8s.io"] {
            for exit in [0, 3] {
                let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
                let (url, server) = fake_exec_server(protocol, payload.len(), exit).await;
                let cluster = loopback_cluster(&url);
                let argv = vec!["/var/run/gohot/helper".to_string(), "put".into(), "/ko-app/hello".into()];
                let out =
                    exec(&cluster, "default", "hello-a", "app", &argv, Bytes::from(payload.clone())).await.unwrap();
                let (path, stdin) = server.await.unwrap();
                assert!(path.starts_with("/api/v1/namespaces/default/pods/hello-a/exec?"), "{path}");
                assert!(path.contains("command=%2Fvar%2Frun%2Fgohot%2Fhelper&command=put"), "{path}");
                assert!(path.contains("stdin=true"), "{path}");
                assert!(stdin == payload, "{protocol}: stdin arrived intact");
                assert_eq!(out.stdout, b"{\"received\":1000000}\n", "{protocol}");
                assert_eq!(out.stderr, b"a warning\n", "{protocol}");
                assert_eq!(out.exit_code, exit, "{protocol}");
            }
            let (url, server) = fake_exec_server(protocol, 0, 0).await;
            let argv = vec!["/var/run/gohot/helper".to_string(), "hash".into(), "/ko-app/hello".into()];
            let out = exec(&loopback_cluster(&url), "default", "hello-a", "app", &argv, Bytes::new()).await.unwrap();
            let (path, _) = server.await.unwrap();
            assert!(!path.contains("stdin=true"), "{path}");
            assert_eq!(out.exit_code, 0, "{protocol}");
        }
    }
}
