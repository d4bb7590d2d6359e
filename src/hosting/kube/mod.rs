//! An app on a Kubernetes cluster as a [`Target`]: its containers, reached
//! through the exec API ([`exec`]), found by the one pod rule ([`pods`]).
//!
//! A [`KubeTarget`] selects either
//!
//! * **the app** ([`KubeTarget::new`], the dev loop): every running
//!   container of the applied workloads that runs the image gohot built.
//!   Discovery runs afresh on every [`Target::replicas`] call (the dev loop
//!   calls it before each sync and on every health check), so a pod replaced
//!   or a container restarted shows up with a new `instance` and gets the
//!   binary again. Pods running an image gohot did not build are left alone
//!   and reported once each through the warning hook. A container on a node
//!   whose platform is not one gohot built a binary for is an error naming
//!   both — a binary of the wrong architecture is never sent;
//! * **one pod** ([`KubeTarget::one_pod`], syncback): `pod/NAME`, or the
//!   newest ready pod of `deploy/NAME` ([`pods::pick_pod`]), listed again on
//!   every call so a replaced pod is followed and one shutting down is never
//!   read.
//!
//! Recovery is Kubernetes' job (controllers re-create pods), so
//! [`Target::recover`] does nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

pub mod exec;
pub mod logs;
pub mod pods;
pub mod watch;

use super::{ExecOutput, Replica, Target, TargetError};
use crate::cluster::nodes::{self, NodePlatform};
use crate::cluster::workload::{AppImage, Workload};
use crate::cluster::{Cluster, KubeError};
use crate::platform::Platform;

/// Called with each warning meant for people.
pub type WarnFn = Box<dyn Fn(&str) + Send + Sync>;

/// A pod named on the command line (`pod/NAME`, `deploy/NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// A pod, by name.
    Pod(String),
    /// A Deployment: one of its pods.
    Deployment(String),
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Named::Pod(n) => write!(f, "pod/{n}"),
            Named::Deployment(n) => write!(f, "deploy/{n}"),
        }
    }
}

/// The Kubernetes target.
pub struct KubeTarget {
    cluster: Cluster,
    selection: Selection,
}

enum Selection {
    App(Box<AppSelection>),
    OnePod { namespace: String, owner: Named, container: Option<String> },
}

/// Every running container of the app.
struct AppSelection {
    workloads: Vec<Workload>,
    image: AppImage,
    platforms: Vec<Platform>,
    nodes: Mutex<Vec<NodePlatform>>,
    /// The cluster refused to list nodes.
    nodes_refused: std::sync::atomic::AtomicBool,
    /// `handle` → platform of its node, from the last discovery.
    placed: Mutex<Vec<(String, Platform)>>,
    warned: Mutex<HashSet<String>>,
    warn: WarnFn,
    /// Follow the pods with a watch ([`KubeTarget::watching`]) rather than
    /// list them on every call; started at the first call.
    watching: bool,
    watch: std::sync::OnceLock<watch::PodWatch>,
}

fn target_error(cluster: &Cluster, e: KubeError) -> TargetError {
    let target = format!("cluster {}", cluster.context.name);
    match e {
        KubeError::Exec { replica, detail } => TargetError::Exec { replica, detail },
        // Already named after the cluster (the pod watch's errors): not twice.
        KubeError::Api { what, detail } if what == target => TargetError::Api { target, detail },
        e => TargetError::Api { target, detail: e.to_string() },
    }
}

impl KubeTarget {
    /// The app: the pods of `workloads` running `image`; `platforms` are
    /// those gohot builds binaries for.
    pub fn new(
        cluster: Cluster,
        workloads: Vec<Workload>,
        image: AppImage,
        platforms: Vec<Platform>,
        warn: WarnFn,
    ) -> Self {
        let app = AppSelection {
            workloads,
            image,
            platforms,
            nodes: Mutex::default(),
            nodes_refused: Default::default(),
            placed: Mutex::default(),
            warned: Mutex::default(),
            warn,
            watching: false,
            watch: std::sync::OnceLock::new(),
        };
        KubeTarget { cluster, selection: Selection::App(Box::new(app)) }
    }

    /// Follows the app's pods with a watch ([`watch::PodWatch`]) instead of
    /// listing them on every [`Target::replicas`]: for a long session (the
    /// dev loop), where a list per reload is a round trip in its path and a
    /// list per health check is most of an idle session's traffic.
    pub fn watching(mut self) -> Self {
        if let Selection::App(app) = &mut self.selection {
            app.watching = true;
        }
        self
    }

    /// One pod of `owner` in `namespace`; `container` defaults to the pod's first.
    pub fn one_pod(cluster: Cluster, namespace: String, owner: Named, container: Option<String>) -> Self {
        KubeTarget { cluster, selection: Selection::OnePod { namespace, owner, container } }
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The platform of the node a replica runs on (from the last
    /// [`Target::replicas`]): which binary to send it.
    pub fn platform_of(&self, replica: &Replica) -> Option<Platform> {
        let Selection::App(app) = &self.selection else { return None };
        let placed = app.placed.lock().ok()?;
        placed.iter().find(|(h, _)| h == &replica.handle).map(|(_, p)| p.clone())
    }

    /// The platform of `node`, listing the nodes again if it is new.
    async fn node_platform(&self, app: &AppSelection, node: &str) -> Result<Vec<NodePlatform>, KubeError> {
        let known = app.nodes.lock().map(|n| n.clone()).unwrap_or_default();
        if known.iter().any(|n| n.node == node) {
            return Ok(known);
        }
        if app.nodes_refused.load(std::sync::atomic::Ordering::Relaxed) {
            // Refused once: not asked again on every discovery.
            return Err(KubeError::Forbidden {
                verb: "list".into(),
                resource: "nodes".into(),
                namespace: String::new(),
                user: self.cluster.context.user.clone(),
                message: String::new(),
            });
        }
        let fresh = nodes::list(&self.cluster).await?;
        if let Ok(mut n) = app.nodes.lock() {
            *n = fresh.clone();
        }
        Ok(fresh)
    }

    async fn discover(&self, app: &AppSelection) -> Result<Vec<Replica>, KubeError> {
        let found = if app.watching {
            let watch = app.watch.get_or_init(|| watch::PodWatch::start(&self.cluster, &app.workloads));
            pods::select(&watch.pods().await?, &app.image)
        } else {
            pods::discover(&self.cluster, &app.workloads, &app.image).await?
        };
        for f in &found.foreign {
            let new = app.warned.lock().map(|mut w| w.insert(f.pod.clone())).unwrap_or(true);
            if new {
                (app.warn)(&f.to_string());
            }
        }
        let mut placed = Vec::new();
        let mut replicas = Vec::new();
        for c in &found.containers {
            let nodes = match self.node_platform(app, &c.node).await {
                Ok(nodes) => nodes,
                // Nodes are cluster-scoped, and a developer's namespaced Role
                // cannot grant reading them (manifests/gohot-developer.yaml).
                // A container that runs the image gohot built for one
                // platform runs on a node of that platform.
                Err(KubeError::Forbidden { .. }) if app.platforms.len() == 1 => {
                    if !app.nodes_refused.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::debug!("cannot list nodes: the image's one platform is the nodes'");
                    }
                    placed.push((c.handle(), app.platforms[0].clone()));
                    replicas.push(c.replica());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let node_platform = nodes.iter().find(|n| n.node == c.node).map(|n| n.platform.clone());
            let built = node_platform
                .as_ref()
                .and_then(|p| app.platforms.iter().find(|b| b.os == p.os && b.arch == p.arch))
                .cloned();
            let Some(platform) = built else {
                return Err(KubeError::ArchMismatch {
                    replica: c.handle(),
                    node: c.node.clone(),
                    node_platform: node_platform.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
                    binary_platform: app.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                });
            };
            placed.push((c.handle(), platform));
            replicas.push(c.replica());
        }
        if let Ok(mut p) = app.placed.lock() {
            *p = placed;
        }
        Ok(replicas)
    }

    /// The pods `owner` names: by name, or by the Deployment's selector.
    async fn named_pods(&self, namespace: &str, owner: &Named) -> Result<Vec<Pod>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), namespace);
        let params = match owner {
            Named::Pod(name) => ListParams::default().fields(&format!("metadata.name={name}")),
            Named::Deployment(name) => {
                let deployments: Api<Deployment> = Api::namespaced(self.cluster.client.clone(), namespace);
                let d =
                    deployments.get(name).await.map_err(|e| self.cluster.error(e, "get", "deployments", namespace))?;
                let labels = d
                    .spec
                    .selector
                    .match_labels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                ListParams::default().labels(&labels)
            }
        };
        Ok(api.list(&params).await.map_err(|e| self.cluster.error(e, "list", "pods", namespace))?.items)
    }

    async fn one(
        &self,
        namespace: &str,
        owner: &Named,
        container: &Option<String>,
    ) -> Result<Vec<Replica>, TargetError> {
        let pods = self.named_pods(namespace, owner).await.map_err(|e| target_error(&self.cluster, e))?;
        let summaries: Vec<pods::PodSummary> = pods.iter().map(pods::summarize).collect();
        let owner_name = owner.to_string();
        let choice = pods::pick_pod(&owner_name, &summaries)
            .map_err(|e| TargetError::Api { target: owner_name.clone(), detail: e.to_string() })?;
        let chosen = pods.iter().find(|p| p.metadata.name.as_deref() == Some(choice.name.as_str()));
        let container = match container {
            Some(c) => c.clone(),
            None => chosen
                .and_then(|p| p.spec.as_ref())
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        tracing::info!("{}", choice.reason);
        Ok(vec![pods::replica_of(&choice, namespace, &container, &summaries)])
    }
}

#[async_trait]
impl Target for KubeTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        match &self.selection {
            Selection::App(app) => self.discover(app).await.map_err(|e| target_error(&self.cluster, e)),
            Selection::OnePod { namespace, owner, container } => self.one(namespace, owner, container).await,
        }
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        let Some((ns, pod, container)) = pods::parse_handle(&replica.handle) else {
            return Err(TargetError::Exec {
                replica: replica.name.clone(),
                detail: format!("not a namespace/pod/container handle: {}", replica.handle),
            });
        };
        exec::exec(&self.cluster, ns, pod, container, argv, stdin).await.map_err(|e| target_error(&self.cluster, e))
    }

    async fn exec_stream(
        &self,
        replica: &Replica,
        argv: &[String],
        stdin: Bytes,
    ) -> Result<crate::hosting::ExecStream, TargetError> {
        let Some((ns, pod, container)) = pods::parse_handle(&replica.handle) else {
            return Err(TargetError::Exec {
                replica: replica.name.clone(),
                detail: format!("not a namespace/pod/container handle: {}", replica.handle),
            });
        };
        exec::exec_stream(&self.cluster, ns, pod, container, argv, stdin)
            .await
            .map_err(|e| target_error(&self.cluster, e))
    }

    async fn attach(&self, replica: &Replica, argv: &[String]) -> Result<crate::hosting::Attached, TargetError> {
        let Some((ns, pod, container)) = pods::parse_handle(&replica.handle) else {
            return Err(TargetError::Exec {
                replica: replica.name.clone(),
                detail: format!("not a namespace/pod/container handle: {}", replica.handle),
            });
        };
        exec::attach(&self.cluster, ns, pod, container, argv).await.map_err(|e| target_error(&self.cluster, e))
    }

    async fn last_lines(&self, replica: &Replica, lines: usize) -> Vec<String> {
        let Some((ns, pod, container)) = pods::parse_handle(&replica.handle) else { return Vec::new() };
        logs::last_lines(&self.cluster, ns, pod, container, lines).await
    }

    async fn recover(&self) -> Result<Option<String>, TargetError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::cluster::mock;
    use crate::cluster::mock::fixtures::{self, app_ref, DIGEST};

    fn node_list(arch: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{
            "metadata": {"name": "kind-control-plane"},
            "status": {"nodeInfo": {"architecture": arch, "operatingSystem": "linux", "bootID": "", "containerRuntimeVersion": "",
                "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "", "machineID": "", "osImage": "", "systemUUID": ""}}
        }]})
    }

    use crate::cluster::mock::fixtures::workload;

    /// Mock API server (no cluster here): a pod is replaced between two
    /// syncs; the second discovery returns the new pod's UID, so the dev loop
    /// sees a new instance and syncs it. A pod on a foreign image is warned
    /// about once, however often discovery runs.
    #[tokio::test]
    async fn replicas_follow_replacement_and_warn_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let other = "127.0.0.1:5000/hello@sha256:9999999999999999999999999999999999999999999999999999999999999999";
        let (cluster, _) = mock::cluster(move |s| {
            if s.uri.starts_with("/api/v1/nodes") {
                return (200, node_list("amd64"));
            }
            let foreign = fixtures::pod_with("hello-old", "uid-o", other, other, 0);
            let pods = if c.fetch_add(1, Ordering::SeqCst) == 0 {
                vec![fixtures::pod("hello-a", "uid-a", 0), foreign]
            } else {
                vec![fixtures::pod("hello-b", "uid-b", 0), foreign]
            };
            (200, fixtures::list(pods))
        });
        let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
        let w = warnings.clone();
        let target = KubeTarget::new(
            cluster,
            vec![workload()],
            AppImage::new(&app_ref()),
            vec![Platform::linux("amd64")],
            Box::new(move |m| w.lock().unwrap().push(m.to_string())),
        );
        let first = target.replicas().await.unwrap();
        let second = target.replicas().await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].handle, "default/hello-a/app");
        assert_eq!(first[0].instance, "uid-a/app/0");
        assert_eq!(second[0].instance, "uid-b/app/0");
        assert_eq!(target.platform_of(&second[0]), Some(Platform::linux("amd64")));
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("hello-old"), "{}", warnings[0]);
        assert!(!DIGEST.is_empty());
    }

    /// Mock API server: the node is arm64 and the binary amd64; nothing is synced.
    #[tokio::test]
    async fn wrong_architecture_is_refused() {
        let (cluster, _) = mock::cluster(|s| {
            if s.uri.starts_with("/api/v1/nodes") {
                (200, node_list("arm64"))
            } else {
                (200, fixtures::list(vec![fixtures::pod("hello-a", "uid-a", 0)]))
            }
        });
        let target = KubeTarget::new(
            cluster,
            vec![workload()],
            AppImage::new(&app_ref()),
            vec![Platform::linux("amd64")],
            Box::new(|_| {}),
        );
        let e = target.replicas().await.unwrap_err().to_string();
        assert!(e.contains("node kind-control-plane is linux/arm64") && e.contains("built for linux/amd64"), "{e}");
        assert!(e.contains("default/hello-a/app"), "{e}");
        assert_eq!(target.recover().await.unwrap(), None);
    }

    fn pod(name: &str, created: &str, ready: bool, terminating: bool) -> serde_json::Value {
        let mut meta = serde_json::json!({"name": name, "namespace": "dev", "uid": format!("uid-{name}"), "creationTimestamp": created});
        if terminating {
            meta["deletionTimestamp"] = serde_json::json!("2026-01-01T01:00:00Z");
        }
        serde_json::json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        })
    }

    /// Mock API server (kube-rs's tower-test service; no cluster runs here):
    /// deploy/web lists its pods by the deployment's selector and reads from
    /// the newest ready pod — never from the newer one still terminating.
    #[tokio::test]
    async fn deploy_source_picks_a_ready_pod_by_selector() {
        let (cluster, log) = crate::cluster::mock::cluster(|seen| {
            if seen.uri.starts_with("/apis/apps/v1/namespaces/dev/deployments/web") {
                (
                    200,
                    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "dev"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": []}}}}),
                )
            } else if seen.uri.starts_with("/api/v1/namespaces/dev/pods") {
                (
                    200,
                    serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                        pod("web-old", "2026-01-01T00:00:00Z", true, false),
                        pod("web-new", "2026-01-01T00:05:00Z", true, false),
                        pod("web-going", "2026-01-01T00:09:00Z", true, true),
                        pod("web-starting", "2026-01-01T00:10:00Z", false, false),
                    ]}),
                )
            } else {
                crate::cluster::mock::status(404, "NotFound", "unexpected")
            }
        });
        let source = KubeTarget::one_pod(cluster, "dev".into(), Named::Deployment("web".into()), None);
        let replicas = source.replicas().await.unwrap();
        assert_eq!(replicas[0].handle, "dev/web-new/app");
        let seen = log.lock().unwrap();
        let list = seen.iter().find(|s| s.uri.starts_with("/api/v1/namespaces/dev/pods")).unwrap();
        assert!(list.uri.contains("labelSelector=app%3Dweb"), "{}", list.uri);
    }
}
