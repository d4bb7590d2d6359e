//! The platforms the cluster's nodes run, so gohot builds for them rather
//! than for the developer's machine (an Apple Silicon laptop against an
//! amd64 cluster is the common case), and never syncs a binary into a node
//! of another architecture.
//!
//! Platforms come from each Node's `status.nodeInfo.operatingSystem` and
//! `.architecture` (what the kubelet reports; the `kubernetes.io/arch` label
//! says the same but can be edited). When nodes differ, gohot builds for every
//! platform among the nodes that can run the app — schedulable nodes matching
//! the pod template's `nodeSelector` — and publishes an image index, so each
//! node pulls its own; [`build_platforms`] decides this, purely. The sync
//! then sends each container the binary of its node's platform, and
//! [`check_platform`] refuses a mismatch with an error naming both.

use std::collections::{BTreeMap, BTreeSet};

use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::Node;

use super::{Cluster, KubeError};
use crate::platform::Platform;

/// One node and what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlatform {
    /// Node name.
    pub node: String,
    /// Its platform (`linux/arm64`).
    pub platform: Platform,
    /// Its labels (for nodeSelector matching).
    pub labels: BTreeMap<String, String>,
    /// False when cordoned (`spec.unschedulable`).
    pub schedulable: bool,
}

/// The platform of each node, from its status.
pub fn node_platforms(nodes: &[Node]) -> Vec<NodePlatform> {
    nodes
        .iter()
        .filter_map(|n| {
            let info = n.status.as_ref()?.node_info.as_ref()?;
            let mut platform = Platform::linux(&info.architecture);
            platform.os = info.operating_system.clone();
            // arm nodes report their variant only in the label (kubelet: GOARM is not in nodeInfo).
            Some(NodePlatform {
                node: n.metadata.name.clone().unwrap_or_default(),
                platform,
                labels: n.metadata.labels.clone().unwrap_or_default(),
                schedulable: !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
            })
        })
        .collect()
}

/// Platforms to build for: those of the schedulable nodes whose labels match
/// `node_selector` (all schedulable nodes when it is empty), sorted. Empty
/// when no node qualifies.
pub fn build_platforms(nodes: &[NodePlatform], node_selector: &BTreeMap<String, String>) -> Vec<Platform> {
    let set: BTreeSet<Platform> = nodes
        .iter()
        .filter(|n| n.schedulable)
        .filter(|n| node_selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
        .filter(|n| n.platform.os == "linux")
        .map(|n| n.platform.clone())
        .collect();
    set.into_iter().collect()
}

/// Lists the cluster's nodes and their platforms.
pub async fn list(cluster: &Cluster) -> Result<Vec<NodePlatform>, KubeError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let nodes = api.list(&ListParams::default()).await.map_err(|e| cluster.error(e, "list", "nodes", ""))?;
    Ok(node_platforms(&nodes.items))
}

/// Refuses to sync a binary built for `binary` into `replica` on `node`
/// unless the node runs that platform. An unknown node (not listed yet) is
/// refused too: gohot does not guess.
pub fn check_platform(replica: &str, node: &str, nodes: &[NodePlatform], binary: &Platform) -> Result<(), KubeError> {
    let node_platform = nodes.iter().find(|n| n.node == node).map(|n| n.platform.clone());
    match node_platform {
        Some(p) if p.os == binary.os && p.arch == binary.arch => Ok(()),
        p => Err(KubeError::ArchMismatch {
            replica: replica.to_string(),
            node: if node.is_empty() { "(not scheduled)".into() } else { node.to_string() },
            node_platform: p.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
            binary_platform: binary.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock;
    use serde_json::{json, Value};

    fn node(name: &str, arch: &str, labels: Value, unschedulable: bool) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {"nodeInfo": {
                "architecture": arch, "operatingSystem": "linux", "bootID": "", "containerRuntimeVersion": "containerd://2.0",
                "kernelVersion": "6.1", "kubeProxyVersion": "", "kubeletVersion": "v1.35.0", "machineID": "", "osImage": "Debian", "systemUUID": ""
            }}
        })
    }

    fn nodes() -> Vec<NodePlatform> {
        let list: Vec<Node> = [
            node("cp", "arm64", json!({"pool": "system"}), false),
            node("a1", "amd64", json!({"pool": "apps"}), false),
            node("a2", "amd64", json!({"pool": "apps"}), false),
            node("old", "ppc64le", json!({"pool": "apps"}), true),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        node_platforms(&list)
    }

    #[test]
    fn platforms_from_nodes() {
        let n = nodes();
        assert_eq!(n[0].platform.to_string(), "linux/arm64");
        let all = build_platforms(&n, &BTreeMap::new());
        assert_eq!(all.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["linux/amd64", "linux/arm64"]);
        let apps = build_platforms(&n, &[("pool".to_string(), "apps".to_string())].into());
        assert_eq!(
            apps.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["linux/amd64"],
            "cordoned ppc64le left out"
        );
    }

    #[test]
    fn arch_mismatch_names_both() {
        let n = nodes();
        assert!(check_platform("default/p/app", "a1", &n, &Platform::linux("amd64")).is_ok());
        let e = check_platform("default/p/app", "cp", &n, &Platform::linux("amd64")).unwrap_err().to_string();
        assert!(
            e.contains("default/p/app") && e.contains("node cp is linux/arm64") && e.contains("built for linux/amd64"),
            "{e}"
        );
        let e = check_platform("default/p/app", "gone", &n, &Platform::linux("amd64")).unwrap_err().to_string();
        assert!(e.contains("unknown"), "{e}");
    }

    /// Mock API server (no cluster here): nodes are listed cluster-wide.
    #[tokio::test]
    async fn lists_nodes_from_api() {
        let (cluster, log) = mock::cluster(|_| {
            (
                200,
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [node("kind-control-plane", "arm64", json!({}), false)]}),
            )
        });
        let n = list(&cluster).await.unwrap();
        assert_eq!(n[0].node, "kind-control-plane");
        assert_eq!(n[0].platform, Platform::linux("arm64"));
        assert!(log.lock().unwrap()[0].uri.starts_with("/api/v1/nodes"));
    }
}
