//! The app on a Kubernetes cluster: the containers of the applied workloads
//! that run the image gohot built, reached through the exec API.
//!
//! [`KubeTarget::replicas`] runs discovery afresh on every call (the dev loop
//! calls it before each sync), so a pod replaced or a container restarted
//! since the last sync shows up with a new `instance` and gets the binary
//! again. Pods running an image gohot did not build are left alone and
//! reported once each through the warning hook. A container on a node whose
//! platform is not one gohot built a binary for is an error naming both — a
//! binary of the wrong architecture is never sent. Recovery is Kubernetes'
//! job (controllers re-create pods), so [`Target::recover`] does nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ExecOutput, Replica, Target, TargetError};
use crate::cluster::nodes::{self, NodePlatform};
use crate::cluster::pods::{self, AppImage, Workload};
use crate::cluster::{exec, Cluster, KubeError};
use crate::platform::Platform;

/// Called with each warning meant for people.
pub type WarnFn = Box<dyn Fn(&str) + Send + Sync>;

/// The Kubernetes target.
pub struct KubeTarget {
    cluster: Cluster,
    workloads: Vec<Workload>,
    image: AppImage,
    platforms: Vec<Platform>,
    nodes: Mutex<Vec<NodePlatform>>,
    /// `handle` → platform of its node, from the last discovery.
    placed: Mutex<Vec<(String, Platform)>>,
    warned: Mutex<HashSet<String>>,
    warn: WarnFn,
}

fn target_error(cluster: &Cluster, e: KubeError) -> TargetError {
    match e {
        KubeError::Exec { replica, detail } => TargetError::Exec { replica, detail },
        e => TargetError::Api { target: format!("cluster {}", cluster.context.name), detail: e.to_string() },
    }
}

impl KubeTarget {
    /// A target for the pods of `workloads` running `image`; `platforms` are
    /// those gohot builds binaries for.
    pub fn new(
        cluster: Cluster,
        workloads: Vec<Workload>,
        image: AppImage,
        platforms: Vec<Platform>,
        warn: WarnFn,
    ) -> Self {
        KubeTarget {
            cluster,
            workloads,
            image,
            platforms,
            nodes: Mutex::default(),
            placed: Mutex::default(),
            warned: Mutex::default(),
            warn,
        }
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The platform of the node a replica runs on (from the last
    /// [`Target::replicas`]): which binary to send it.
    pub fn platform_of(&self, replica: &Replica) -> Option<Platform> {
        let placed = self.placed.lock().ok()?;
        placed.iter().find(|(h, _)| h == &replica.handle).map(|(_, p)| p.clone())
    }

    /// The platform of `node`, listing the nodes again if it is new.
    async fn node_platform(&self, node: &str) -> Result<Vec<NodePlatform>, KubeError> {
        let known = self.nodes.lock().map(|n| n.clone()).unwrap_or_default();
        if known.iter().any(|n| n.node == node) {
            return Ok(known);
        }
        let fresh = nodes::list(&self.cluster).await?;
        if let Ok(mut n) = self.nodes.lock() {
            *n = fresh.clone();
        }
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Vec<Replica>, KubeError> {
        let found = pods::discover(&self.cluster, &self.workloads, &self.image).await?;
        for f in &found.foreign {
            let new = self.warned.lock().map(|mut w| w.insert(f.pod.clone())).unwrap_or(true);
            if new {
                (self.warn)(&f.to_string());
            }
        }
        let mut placed = Vec::new();
        let mut replicas = Vec::new();
        for c in &found.containers {
            let nodes = self.node_platform(&c.node).await?;
            let node_platform = nodes.iter().find(|n| n.node == c.node).map(|n| n.platform.clone());
            let built = node_platform
                .as_ref()
                .and_then(|p| self.platforms.iter().find(|b| b.os == p.os && b.arch == p.arch))
                .cloned();
            let Some(platform) = built else {
                return Err(KubeError::ArchMismatch {
                    replica: c.handle(),
                    node: c.node.clone(),
                    node_platform: node_platform.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
                    binary_platform: self.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                });
            };
            placed.push((c.handle(), platform));
            replicas.push(c.replica());
        }
        if let Ok(mut p) = self.placed.lock() {
            *p = placed;
        }
        Ok(replicas)
    }
}

#[async_trait]
impl Target for KubeTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        self.discover().await.map_err(|e| target_error(&self.cluster, e))
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

    async fn recover(&self) -> Result<bool, TargetError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::cluster::mock;
    use crate::cluster::pods::fixtures::{self, app_ref, DIGEST};

    fn node_list(arch: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{
            "metadata": {"name": "kind-control-plane"},
            "status": {"nodeInfo": {"architecture": arch, "operatingSystem": "linux", "bootID": "", "containerRuntimeVersion": "",
                "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "", "machineID": "", "osImage": "", "systemUUID": ""}}
        }]})
    }

    use crate::cluster::pods::fixtures::workload;

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
        assert!(!target.recover().await.unwrap());
    }
}
