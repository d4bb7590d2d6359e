//! Conveniences around the dev loop: the app's logs followed and prefixed
//! with the pod name, and a local port forwarded to the app — both following
//! the workload as its pods are replaced.
//!
//! Both run as background tasks the caller owns (abort the handle to stop);
//! neither prints: lines go to a callback, as everything in the library.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{Api, LogParams};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::pods::AppContainer;
use crate::cluster::workload::{AppImage, Workload};
use crate::cluster::{Cluster, KubeError};

/// How many earlier lines of each pod already running when the session
/// starts are shown.
const FIRST_LINES: i64 = 20;

/// Called with `(pod/container, line)` for every log line.
pub type LineFn = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Follows the logs of each container (from `since_seconds` ago, or from its
/// start), calling `line` with the pod name and the line. One task per
/// container; a stream that ends (the container restarted) ends its task.
pub fn stream_logs(
    cluster: &Cluster,
    containers: &[AppContainer],
    since_seconds: Option<i64>,
    line: LineFn,
) -> Vec<JoinHandle<()>> {
    containers
        .iter()
        .map(|c| tokio::spawn(stream_one(cluster.clone(), c.clone(), since_seconds, None, line.clone())))
        .collect()
}

async fn stream_one(
    cluster: Cluster,
    c: AppContainer,
    since_seconds: Option<i64>,
    tail_lines: Option<i64>,
    line: LineFn,
) {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &c.namespace);
    let prefix = format!("{}/{}", c.pod, c.container);
    let params = LogParams {
        follow: true,
        container: Some(c.container.clone()),
        since_seconds,
        tail_lines,
        ..Default::default()
    };
    match api.log_stream(&c.pod, &params).await {
        Ok(stream) => {
            let mut lines = stream.lines();
            while let Ok(Some(l)) = lines.try_next().await {
                line(&prefix, &l);
            }
        }
        Err(e) => {
            let e = cluster.error(e, "get", "pods/log", &c.namespace);
            line(&prefix, &format!("(gohot: cannot follow logs: {e})"))
        }
    }
}

/// The last `lines` lines `namespace/pod/container` printed (empty when they
/// cannot be read).
pub async fn last_lines(cluster: &Cluster, namespace: &str, pod: &str, container: &str, lines: usize) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let params =
        LogParams { container: Some(container.to_string()), tail_lines: Some(lines as i64), ..Default::default() };
    match api.logs(pod, &params).await {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) => {
            tracing::debug!("logs of {namespace}/{pod}/{container}: {e}");
            Vec::new()
        }
    }
}

/// Follows the logs of every container of `workloads` running `image`, as
/// pods come and go (as `skaffold dev` and `stern` do): the pods are
/// watched ([`super::watch::PodWatch`]: no polling, so an idle session sends
/// nothing), looked at again at most every `interval` when they change, and
/// each container instance seen for the first time — a new pod, a restarted
/// container — gets its stream from its start. Containers present at the
/// first look start with their last `FIRST_LINES` (20) lines. Aborting the returned task stops
/// every stream.
pub fn follow_logs(
    cluster: &Cluster,
    workloads: Vec<Workload>,
    image: AppImage,
    interval: Duration,
    line: LineFn,
) -> JoinHandle<()> {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let watch = super::watch::PodWatch::start(&cluster, &workloads);
        let mut streams = tokio::task::JoinSet::new();
        let mut seen = HashSet::new();
        let mut first = true;
        loop {
            while streams.try_join_next().is_some() {}
            let mut changes = watch.changes();
            let pods = match watch.pods().await {
                Ok(pods) => pods,
                Err(e) => {
                    tracing::debug!("following logs: {e}");
                    tokio::time::sleep(interval).await;
                    continue;
                }
            };
            let found = super::pods::select(&pods, &image);
            for c in found.containers {
                if seen.insert(c.instance()) {
                    // The pods there at the start (just rolled out, or kept from an
                    // earlier session): their last lines, the app's start among them
                    // (as the engine shows it), not a long history. Later ones: all.
                    let tail = first.then_some(FIRST_LINES);
                    streams.spawn(stream_one(cluster.clone(), c, None, tail, line.clone()));
                }
            }
            first = false;
            let _ = changes.changed().await;
            tokio::time::sleep(interval).await;
        }
    })
}

/// Listens on `127.0.0.1:local` and forwards each connection to `remote` in
/// a live pod of `workloads` running `image` (`kubectl port-forward
/// deploy/NAME`, but following the workload): every new connection goes to
/// a ready pod as of that moment — so a replaced pod is left behind as
/// `skaffold dev`'s forwarding does — trying the next one if a pod refuses.
/// `local` 0 picks a free port; the bound address is returned with the task.
///
/// A forward the cluster refuses (RBAC: `pods/portforward`) is told to `warn`
/// once, naming the missing permission; the connection is closed.
pub async fn port_forward(
    cluster: &Cluster,
    workloads: Vec<Workload>,
    image: AppImage,
    local: u16,
    remote: u16,
    warn: WarnFn,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), KubeError> {
    let listener = TcpListener::bind(("127.0.0.1", local)).await.map_err(|e| KubeError::Api {
        what: format!("port-forward 127.0.0.1:{local}"),
        detail: format!("{e} (is the port already in use?)"),
    })?;
    let addr =
        listener.local_addr().map_err(|e| KubeError::Api { what: "port-forward".into(), detail: e.to_string() })?;
    let cluster = cluster.clone();
    let target = Arc::new(Forwarding { workloads, image, warn, refused: Default::default() });
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((conn, _)) = listener.accept().await {
            while conns.try_join_next().is_some() {}
            conns.spawn(forward_one(cluster.clone(), target.clone(), conn, remote));
        }
    });
    Ok((addr, task))
}

/// Called with a warning meant for people.
pub type WarnFn = Arc<dyn Fn(&str) + Send + Sync>;

/// What one port-forward forwards to, and where its refusals go.
struct Forwarding {
    workloads: Vec<Workload>,
    image: AppImage,
    warn: WarnFn,
    /// A refusal was told already.
    refused: std::sync::atomic::AtomicBool,
}

async fn forward_one(cluster: Cluster, target: Arc<Forwarding>, mut conn: TcpStream, remote: u16) {
    let found = match super::pods::discover(&cluster, &target.workloads, &target.image).await {
        Ok(f) => f,
        Err(e) => return tracing::warn!("port-forward: {e}"),
    };
    // Ready pods first; a pod still starting is better than none.
    let mut candidates = found.containers;
    candidates.sort_by_key(|c| !c.ready);
    for c in candidates {
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &c.namespace);
        let mut forwarder = match api.portforward(&c.pod, &[remote]).await {
            Ok(f) => f,
            Err(e) => {
                let e = cluster.error(e, "create", "pods/portforward", &c.namespace);
                if let KubeError::Forbidden { .. } = e {
                    // Every pod is refused alike: no use trying the others.
                    if !target.refused.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        (target.warn)(&format!("port-forward 127.0.0.1 → port {remote}: {e}"));
                    }
                    return;
                }
                tracing::debug!("port-forward to {}:{remote}: {e}", c.pod);
                continue;
            }
        };
        if let Some(mut upstream) = forwarder.take_stream(remote) {
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
        }
        return;
    }
    tracing::warn!("port-forward: no running pod of the app accepts a forward to port {remote}");
}

/// One pod's `port`, reached through a port-forward for each connection:
/// the pod asked for (`--debug-replica`) while it is live, else the pod of
/// the last connection while it is, else the first ready pod of the
/// workloads — so a session stays with its pod and moves only when that
/// pod is gone.
pub struct PodPort {
    cluster: Cluster,
    workloads: Vec<Workload>,
    image: AppImage,
    port: u16,
    wanted: Option<String>,
    last: std::sync::Mutex<Option<String>>,
}

impl PodPort {
    /// `port` of a pod of `workloads` running `image`; `wanted`: a pod's name to prefer.
    pub fn new(
        cluster: &Cluster,
        workloads: Vec<Workload>,
        image: AppImage,
        port: u16,
        wanted: Option<String>,
    ) -> Self {
        PodPort { cluster: cluster.clone(), workloads, image, port, wanted, last: std::sync::Mutex::new(None) }
    }

    /// The pod of the last connection (`namespace/pod`), or the workloads before any.
    pub fn replica(&self) -> String {
        match self.last.lock().ok().and_then(|l| l.clone()) {
            Some(pod) => pod,
            None => self.workloads.iter().map(|w| format!("{}/{}", w.namespace, w.name)).collect::<Vec<_>>().join(","),
        }
    }

    /// A new connection to the pod's port.
    pub async fn connect(
        &self,
    ) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static, String> {
        let found =
            super::pods::discover(&self.cluster, &self.workloads, &self.image).await.map_err(|e| e.to_string())?;
        let last = self.last.lock().ok().and_then(|l| l.clone());
        let name = |c: &AppContainer| format!("{}/{}", c.namespace, c.pod);
        let wanted = |c: &AppContainer| self.wanted.as_deref().is_some_and(|w| w == c.pod || w == name(c));
        // The pod asked for, then the last one, then ready pods, in discovery order.
        let mut candidates = found.containers;
        candidates.sort_by_key(|c| (!wanted(c), last.as_deref() != Some(name(c).as_str()), !c.ready));
        let c = candidates.first().ok_or_else(|| "no running pod of the app".to_string())?;
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), &c.namespace);
        let mut forwarder = api
            .portforward(&c.pod, &[self.port])
            .await
            .map_err(|e| self.cluster.error(e, "create", "pods/portforward", &c.namespace).to_string())?;
        let stream = forwarder.take_stream(self.port).ok_or_else(|| format!("no stream to {}:{}", c.pod, self.port))?;
        if let Ok(mut l) = self.last.lock() {
            *l = Some(name(c));
        }
        // The forwarder's task ends with the stream.
        tokio::spawn(async move {
            let _ = forwarder.join().await;
        });
        Ok(stream)
    }
}

/// `GET path` on `port` of one pod through a port-forward of its own: the
/// body of a 2xx-5xx answer, or None (no answer within 10 s). What a user
/// would see from that very pod — the dev loop's tests and benchmark check
/// every replica this way. The answer is read by its Content-Length: a
/// port-forward stream may stay open after the app closed its side.
pub async fn get_from_pod(cluster: &Cluster, namespace: &str, pod: &str, port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let talk = async {
        let mut pf = api.portforward(pod, &[port]).await.ok()?;
        let mut s = pf.take_stream(port)?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                });
                if n == 0 || len.is_some_and(|len| body.len() >= len) {
                    return head.starts_with("HTTP/1.").then(|| body.trim().to_string());
                }
            }
            if n == 0 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), talk).await.ok().flatten()
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
            ready: true,
            ports: vec![],
        };
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let tasks = stream_logs(
            &cluster,
            &[container("hello-a"), container("hello-b")],
            Some(1),
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
