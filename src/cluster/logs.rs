//! Conveniences around the dev loop: the app's logs followed and prefixed
//! with the pod name, and a local port forwarded to a pod.
//!
//! Both run as background tasks the caller owns (abort the handle to stop);
//! neither prints: lines go to a callback, as everything in the library.

use std::sync::Arc;

use ::kube::api::{Api, LogParams};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::pods::AppContainer;
use super::{Cluster, KubeError};

/// Called with `(pod/container, line)` for every log line.
pub type LineFn = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Follows the logs of each container (from now on), calling `line` with the
/// pod name and the line. One task per container; a stream that ends (the
/// container restarted) ends its task — call again after the next discovery.
pub fn stream_logs(cluster: &Cluster, containers: &[AppContainer], line: LineFn) -> Vec<JoinHandle<()>> {
    containers
        .iter()
        .map(|c| {
            let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &c.namespace);
            let (pod, container, line) = (c.pod.clone(), c.container.clone(), line.clone());
            let prefix = format!("{}/{}", c.pod, c.container);
            tokio::spawn(async move {
                let params = LogParams {
                    follow: true,
                    container: Some(container),
                    since_seconds: Some(1),
                    ..Default::default()
                };
                match api.log_stream(&pod, &params).await {
                    Ok(stream) => {
                        let mut lines = stream.lines();
                        while let Ok(Some(l)) = lines.try_next().await {
                            line(&prefix, &l);
                        }
                    }
                    Err(e) => line(&prefix, &format!("(gohot: cannot follow logs: {e})")),
                }
            })
        })
        .collect()
}

/// Listens on `127.0.0.1:local` and forwards each connection to `remote` in
/// the pod (`kubectl port-forward`). `local` 0 picks a free port; the bound
/// address is returned with the task.
pub async fn port_forward(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    local: u16,
    remote: u16,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), KubeError> {
    let listener = TcpListener::bind(("127.0.0.1", local)).await.map_err(|e| KubeError::Api {
        what: format!("port-forward 127.0.0.1:{local}"),
        detail: format!("{e} (is the port already in use?)"),
    })?;
    let addr =
        listener.local_addr().map_err(|e| KubeError::Api { what: "port-forward".into(), detail: e.to_string() })?;
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let cluster = cluster.clone();
    let (namespace, pod) = (namespace.to_string(), pod.to_string());
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (api, pod, cluster, namespace) = (api.clone(), pod.clone(), cluster.clone(), namespace.clone());
            tokio::spawn(async move {
                let mut forwarder = match api.portforward(&pod, &[remote]).await {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(
                            "port-forward to {pod}:{remote}: {}",
                            cluster.error(e, "create", "pods/portforward", &namespace)
                        );
                        return;
                    }
                };
                if let Some(mut upstream) = forwarder.take_stream(remote) {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                }
                drop(forwarder);
            });
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::mock;

    /// Mock API server (no cluster here): each container's log stream is
    /// requested with follow=true for that container, and every line comes
    /// back prefixed with its pod and container.
    #[tokio::test]
    async fn logs_are_prefixed_with_the_pod() {
        let (cluster, log) = mock::cluster(|s| {
            let pod = if s.uri.contains("/pods/hello-a/") { "a" } else { "b" };
            (200, serde_json::Value::String(format!("listening {pod}\nrequest {pod}\n")))
        });
        let container = |pod: &str| AppContainer {
            namespace: "default".into(),
            pod: pod.into(),
            uid: format!("uid-{pod}"),
            container: "app".into(),
            restart_count: 0,
            node: "n".into(),
        };
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let tasks = stream_logs(
            &cluster,
            &[container("hello-a"), container("hello-b")],
            Arc::new(move |prefix: &str, line: &str| l.lock().unwrap().push(format!("{prefix}: {line}"))),
        );
        for t in tasks {
            t.await.unwrap();
        }
        let mut lines = lines.lock().unwrap().clone();
        lines.sort();
        assert_eq!(
            lines,
            [
                "hello-a/app: listening a",
                "hello-a/app: request a",
                "hello-b/app: listening b",
                "hello-b/app: request b"
            ]
        );
        let seen = log.lock().unwrap();
        assert!(
            seen.iter()
                .all(|s| s.uri.contains("/log?") && s.uri.contains("follow=true") && s.uri.contains("container=app")),
            "{seen:?}"
        );
    }
}
