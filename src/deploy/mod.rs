//! `gohot apply`: resolve the manifests (build and publish every `ko://`
//! image, and in dev mode rewrite the app's containers to run under
//! watchexec), server-side apply them, and wait for the rollout.
//!
//! This is the one place that strings the stages together for a cluster; it
//! sees only the [`Build`] and [`Publish`] traits, so the destination
//! (registry, KinD nodes) is chosen elsewhere, once.

use std::collections::{BTreeMap, HashMap};

pub mod apply;
pub mod rollout;

use crate::builder::Build;
use crate::cluster::workload::{AppImage, Workload};
use crate::cluster::{Cluster, KubeError};
use crate::oci::Artifact;
use crate::publish::Publish;
use crate::resolve::{self, ManifestFile, ResolveError, ResolvedRef};
use apply::{Applied, Doc};
use rollout::WaitOptions;

/// Errors deploying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// Building or publishing an image failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The cluster refused or the rollout failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// How to deploy.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    /// Rewrite the app's containers for hot reload.
    pub dev: bool,
    /// With `dev`: only the containers of these `ko://` references (None:
    /// every one); the others run their image as built.
    pub dev_only: Option<std::collections::BTreeSet<String>>,
    /// With `dev`: the developed apps run under delve (`gohot dev --debug`).
    pub debug: bool,
    /// Builds to run at once.
    pub jobs: usize,
    /// Wait for the rollout (None: don't).
    pub wait: Option<WaitOptions>,
}

/// What was deployed.
#[derive(Debug)]
pub struct Deployed {
    /// Each `ko://` reference and what it became.
    pub refs: BTreeMap<String, ResolvedRef>,
    /// The applied objects.
    pub applied: Vec<Applied>,
    /// The workloads among them.
    pub workloads: Vec<Workload>,
    /// The resolved (and, in dev mode, rewritten) manifests as applied.
    pub manifests: String,
}

impl Deployed {
    /// The workloads whose pods run `image` (a published reference).
    pub fn workloads_running(&self, image: &str) -> Vec<Workload> {
        self.applied.iter().filter(|a| a.images.iter().any(|i| i == image)).filter_map(|a| a.workload.clone()).collect()
    }

    /// The app image of one reference, with every digest a node may report for it.
    pub fn app_image(&self, reference: &str) -> Option<AppImage> {
        self.refs.get(reference).map(|r| app_image(&r.image, &r.built.artifact))
    }
}

/// The [`AppImage`] for a published reference and the artifact behind it:
/// the index or manifest digest, and each platform image's manifest and
/// config digests (what runtimes report as `imageID`).
pub fn app_image(reference: &str, artifact: &Artifact) -> AppImage {
    let mut image = AppImage::new(reference).with_digest(artifact.digest());
    for i in artifact.images() {
        image = image.with_digest(i.digest()).with_digest(i.config_digest());
    }
    image
}

/// Resolves, rewrites (dev), renders and parses the manifests into documents to apply.
pub async fn resolve_for_apply(
    files: &[ManifestFile],
    builder: &dyn Build,
    publisher: &dyn Publish,
    opts: &DeployOptions,
) -> Result<(BTreeMap<String, ResolvedRef>, String, Vec<Doc>), DeployError> {
    let refs = resolve::build_refs(files, builder, publisher, opts.jobs).await?;
    let images: HashMap<String, String> = refs.iter().map(|(k, v)| (k.clone(), v.image.clone())).collect();
    let rendered = if opts.dev {
        let developed: BTreeMap<String, ResolvedRef> = refs
            .iter()
            .filter(|(r, _)| opts.dev_only.as_ref().is_none_or(|only| only.contains(*r)))
            .map(|(r, v)| (r.clone(), v.clone()))
            .collect();
        let edit = resolve::dev_edit_with(&developed, opts.debug);
        resolve::render_documents(files, &images, &edit)?
    } else {
        resolve::render_documents(files, &images, &|_| Ok(false))?
    };
    // Each document keeps its file's name (and number), for messages.
    let mut docs = Vec::new();
    for r in &rendered {
        for mut d in resolve::yaml::split(&r.text) {
            d.parse().map_err(|(line, _, message)| KubeError::Manifest {
                path: r.origin.clone(),
                detail: format!("line {line} of the resolved document: {message}"),
            })?;
            if let Some(v) = d.value {
                docs.extend(apply::docs_from_yaml(&r.origin, &[v])?);
            }
        }
    }
    let text = resolve::join(&rendered);
    Ok((refs, text, docs))
}

/// Resolve, apply, wait. `progress` gets rollout messages for people.
pub async fn deploy(
    cluster: &Cluster,
    files: &[ManifestFile],
    builder: &dyn Build,
    publisher: &dyn Publish,
    opts: &DeployOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Deployed, DeployError> {
    let (refs, manifests, docs) = resolve_for_apply(files, builder, publisher, opts).await?;
    let applied = apply::apply(cluster, &docs).await?;
    let workloads: Vec<Workload> = applied.iter().filter_map(|a| a.workload.clone()).collect();
    if let Some(wait) = opts.wait {
        rollout::wait_ready(cluster, &workloads, wait, progress).await?;
    }
    Ok(Deployed { refs, applied, workloads, manifests })
}

/// Documents of manifest files as they are (no resolution), for `gohot delete`.
pub fn raw_docs(files: &[ManifestFile]) -> Result<Vec<Doc>, KubeError> {
    let mut docs = Vec::new();
    for f in files {
        let values: Vec<serde_yaml_ng::Value> = f.documents.iter().filter_map(|d| d.value.clone()).collect();
        docs.extend(apply::docs_from_yaml(&f.path.display().to_string(), &values)?);
    }
    Ok(docs)
}

/// Every `ko://` reference in the files.
pub fn ko_refs(files: &[ManifestFile]) -> Vec<String> {
    let mut refs = Vec::new();
    for f in files {
        for d in &f.documents {
            if let Some(v) = &d.value {
                resolve::find_refs(v, &mut refs);
            }
        }
    }
    refs.sort();
    refs.dedup();
    refs
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::builder::go::Package;
    use crate::builder::{BuildError, Built};
    use crate::cluster::mock;
    use crate::cluster::mock::fixtures;
    use crate::deploy::apply::fixtures::{apps_v1, core_v1};
    use crate::oci::Image;
    use crate::platform::Platform;
    use crate::publish::PublishError;

    /// Builds nothing: a one-platform image with an empty config.
    struct FakeBuilder;
    #[async_trait]
    impl Build for FakeBuilder {
        async fn build(&self, package: &str) -> Result<Built, BuildError> {
            Ok(Built {
                package: Package { import_path: package.into(), name: "main".into(), dir: "/src".into(), module: None },
                artifact: Artifact::from_images(vec![Image::new(
                    Platform::linux("amd64"),
                    Bytes::from_static(b"{}"),
                    vec![],
                )]),
                build_info: Vec::new(),
            })
        }
    }

    /// Publishes nowhere: the reference a registry would give.
    struct FakePublisher;
    #[async_trait]
    impl Publish for FakePublisher {
        async fn publish(&self, built: &Built) -> Result<String, PublishError> {
            Ok(format!("127.0.0.1:5000/hello@{}", built.artifact.digest()))
        }
    }

    /// Mock API server (no cluster here) behind the whole `gohot apply --dev`
    /// pipeline, with a fake builder and publisher: the applied Deployment
    /// carries the published digest and the watchexec command, and the
    /// rollout wait reads it back as ready.
    #[tokio::test]
    async fn apply_dev_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.yaml");
        std::fs::write(
            &path,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hello}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: hello}}\n  template:\n    metadata: {labels: {app: hello}}\n    spec:\n      containers:\n      - {name: app, image: ko://example.com/hello}\n      - {name: side, image: busybox}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: hello}\nspec: {selector: {app: hello}, ports: [{port: 80}]}\n",
        )
        .unwrap();
        let files = resolve::read_manifests(&path, false).unwrap();
        assert_eq!(ko_refs(&files), ["ko://example.com/hello"]);
        let (cluster, log) = mock::cluster(|s| {
            let path = s.uri.split('?').next().unwrap_or_default().to_string();
            match (s.method.as_str(), path.as_str()) {
                ("GET", "/apis/apps/v1") => (200, apps_v1()),
                ("GET", "/api/v1") => (200, core_v1()),
                ("PATCH", _) => (200, s.json()),
                ("GET", "/apis/apps/v1/namespaces/default/deployments/hello") => (
                    200,
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "generation": 1},
                           "spec": {"replicas": 1, "selector": {}, "template": {}},
                           "status": {"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1, "replicas": 1}}),
                ),
                ("GET", "/api/v1/namespaces/default/pods") => (200, fixtures::list(vec![])),
                _ => mock::status(404, "NotFound", "unexpected"),
            }
        });
        let opts = DeployOptions {
            dev: true,
            dev_only: None,
            debug: false,
            jobs: 1,
            wait: Some(WaitOptions {
                timeout: std::time::Duration::from_secs(5),
                interval: std::time::Duration::from_millis(5),
            }),
        };
        let deployed = deploy(&cluster, &files, &FakeBuilder, &FakePublisher, &opts, &|_| {}).await.unwrap();
        assert_eq!(deployed.workloads.len(), 1);
        let image = deployed.app_image("ko://example.com/hello").unwrap();
        assert!(image.reference.starts_with("127.0.0.1:5000/hello@sha256:"));
        assert_eq!(image.digests.len(), 2, "manifest digest (no index for one platform) and config digest: {image:?}");

        let seen = log.lock().unwrap();
        let patch = seen.iter().find(|s| s.method == "PATCH" && s.uri.contains("deployments")).unwrap().json();
        let app = &patch["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(app["image"], image.reference.as_str());
        assert_eq!(app["command"][0], crate::layout::WATCHEXEC_PATH);
        assert_eq!(app["command"].as_array().unwrap().last().unwrap(), "/ko-app/hello");
        let side = &patch["spec"]["template"]["spec"]["containers"][1];
        assert!(side.get("command").is_none(), "other containers are left alone: {side}");
        assert!(seen
            .iter()
            .any(|s| s.method == "PATCH" && s.uri.starts_with("/api/v1/namespaces/default/services/hello?")));
    }
}
