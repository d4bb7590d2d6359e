//! Publishing into the nodes of a KinD cluster (`KO_DOCKER_REPO=kind.local`),
//! as ko does: no registry; the image is imported straight into each node's
//! containerd.
//!
//! KinD nodes are Docker containers labelled `io.x-k8s.kind.cluster=<cluster>`
//! and named `<cluster>-control-plane`, `<cluster>-worker`, `<cluster>-worker2`…
//! The cluster is `KIND_CLUSTER_NAME` (default `kind`), ko's convention. For
//! each running node gohot runs `ctr --namespace=k8s.io images import
//! --all-platforms -` through a Docker exec with the `docker load` archive
//! on stdin, the same archive the Docker-engine publisher loads. The image
//! is tagged `kind.local/<name>:<manifest digest hex>`: a tag that is not
//! `latest` makes Kubernetes' default pull policy `IfNotPresent`, so the
//! kubelet uses the imported image instead of trying to pull it.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::query_parameters::ListContainersOptions;

use super::tarball::{pick_image, write_docker_archive};
use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci;

/// The Docker label KinD puts on its node containers.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

/// The KinD cluster to load into: `KIND_CLUSTER_NAME`, else `kind`.
pub fn cluster_name(env: Option<String>) -> String {
    env.filter(|s| !s.is_empty()).unwrap_or_else(|| "kind".into())
}

/// Whether a container (its name, as Docker lists it with a leading `/`, and
/// labels) is a node of `cluster`.
pub fn is_node(name: &str, labels: &HashMap<String, String>, cluster: &str) -> bool {
    if let Some(c) = labels.get(CLUSTER_LABEL) {
        return c == cluster;
    }
    // Without the label (very old KinD), fall back to the naming scheme.
    let name = name.trim_start_matches('/');
    let Some(role) = name.strip_prefix(cluster).and_then(|r| r.strip_prefix('-')) else { return false };
    ["control-plane", "worker", "external-load-balancer"]
        .iter()
        .filter(|r| **r != "external-load-balancer")
        .any(|r| role.strip_prefix(r).is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())))
}

/// The command run in each node, with the archive on stdin.
pub fn import_argv() -> Vec<String> {
    ["ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "-"].map(String::from).to_vec()
}

/// Loads images into KinD nodes.
pub struct KindPublisher {
    repo: String,
    naming: Naming,
    cluster: String,
}

impl KindPublisher {
    /// `repo` is `kind.local[/…]`; `cluster` the KinD cluster name.
    pub fn new(repo: String, naming: Naming, cluster: String) -> Self {
        KindPublisher { repo, naming, cluster }
    }

    /// The node containers of the cluster, running ones only, sorted by name.
    pub async fn nodes(&self, docker: &bollard::Docker) -> Result<Vec<String>, PublishError> {
        let filters: HashMap<String, Vec<String>> = [("status".to_string(), vec!["running".to_string()])].into();
        let containers = docker
            .list_containers(Some(ListContainersOptions { all: false, filters: Some(filters), ..Default::default() }))
            .await
            .map_err(|e| PublishError::Daemon { detail: format!("listing containers to find KinD nodes: {e}") })?;
        let mut nodes: Vec<String> = containers
            .into_iter()
            .filter_map(|c| {
                let name = c.names.unwrap_or_default().into_iter().next()?;
                is_node(&name, &c.labels.unwrap_or_default(), &self.cluster)
                    .then(|| name.trim_start_matches('/').to_string())
            })
            .collect();
        nodes.sort();
        Ok(nodes)
    }
}

#[async_trait]
impl Publish for KindPublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let repository = self.naming.repository(&self.repo, &built.package.import_path);
        let image = pick_image(&built.artifact);
        let tag = format!("{repository}:{}", oci::digest_hex(&image.digest()));
        let mut archive = Vec::new();
        write_docker_archive(image, std::slice::from_ref(&tag), &mut archive)
            .map_err(|source| PublishError::Io { path: "<docker archive>".into(), source })?;
        let docker = crate::docker::connect().await?;
        let nodes = self.nodes(&docker).await?;
        if nodes.is_empty() {
            return Err(PublishError::Destination(format!(
                "no running KinD cluster {:?} (no running container labelled {CLUSTER_LABEL}={}): create it with `kind create cluster --name {}`, or set KIND_CLUSTER_NAME to the cluster you have (`kind get clusters`); for a cluster that pulls from a registry, set KO_DOCKER_REPO to a repository there (e.g. KO_DOCKER_REPO=127.0.0.1:5000/me)",
                self.cluster, self.cluster, self.cluster
            )));
        }
        let archive = bytes::Bytes::from(archive);
        for node in &nodes {
            let bar = crate::progress::spinner(format!("loading {tag} into KinD node {node}"));
            let out = crate::docker::exec_stdin(&docker, node, &import_argv(), archive.clone()).await;
            bar.finish_and_clear();
            let out =
                out.map_err(|e| PublishError::Daemon { detail: format!("loading {tag} into KinD node {node}: {e}") })?;
            if out.exit_code != 0 {
                return Err(PublishError::Daemon {
                    detail: format!(
                        "loading {tag} into KinD node {node}: `{}` exited with {}: {}",
                        import_argv().join(" "),
                        out.exit_code,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
        }
        tracing::info!("loaded {tag} into KinD cluster {} ({} node(s), {})", self.cluster, nodes.len(), image.platform);
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_discovery() {
        let label = |c: &str| HashMap::from([(CLUSTER_LABEL.to_string(), c.to_string())]);
        assert!(is_node("/kind-control-plane", &label("kind"), "kind"));
        assert!(is_node("/anything", &label("dev"), "dev"));
        assert!(!is_node("/dev-control-plane", &label("other"), "dev"), "the label wins over the name");
        let none = HashMap::new();
        assert!(is_node("/kind-control-plane", &none, "kind"));
        assert!(is_node("/kind-control-plane2", &none, "kind"));
        assert!(is_node("/kind-worker", &none, "kind"));
        assert!(is_node("/kind-worker3", &none, "kind"));
        assert!(!is_node("/kind-external-load-balancer", &none, "kind"));
        assert!(!is_node("/kind-workerx", &none, "kind"));
        assert!(!is_node("/kindly-worker", &none, "kind"));
        assert!(!is_node("/dev-worker", &none, "kind"));
    }

    #[test]
    fn commands_and_names() {
        assert_eq!(import_argv().join(" "), "ctr --namespace=k8s.io images import --all-platforms -");
        assert_eq!(cluster_name(None), "kind");
        assert_eq!(cluster_name(Some(String::new())), "kind");
        assert_eq!(cluster_name(Some("dev".into())), "dev");
    }
}
