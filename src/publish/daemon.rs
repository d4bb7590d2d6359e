//! Publishing into the local Docker engine (`ko.local`), through its API with
//! bollard: the image is streamed as a `docker load` archive and tagged
//! `ko.local/<name>:<manifest digest hex>` plus each `--tags` tag (default
//! `latest`), as ko's `pkg/publish/daemon.go` does — or, for
//! callers that name the image themselves (Skaffold's `$IMAGE`), under
//! exactly the tags they give ([`DaemonPublisher::with_tags`]).

use async_trait::async_trait;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;

use super::tarball::{pick_image, write_docker_archive};
use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci;

/// Loads images into the Docker engine.
pub struct DaemonPublisher {
    repo: String,
    naming: Naming,
    /// Exact tags replacing ko's names (Skaffold's `$IMAGE`).
    exact: Vec<String>,
    /// Tags beside the digest tag (ko's `--tags`; default `latest`).
    tags: Vec<String>,
}

impl DaemonPublisher {
    /// `repo` is `ko.local` or `ko.local/<something>`; `tags` are added
    /// beside the digest tag (empty: `latest`).
    pub fn new(repo: String, naming: Naming, tags: Vec<String>) -> Self {
        let tags = if tags.is_empty() { vec!["latest".into()] } else { tags };
        DaemonPublisher { repo, naming, exact: Vec::new(), tags }
    }

    /// Loads under exactly `tags` (e.g. `127.0.0.1:5000/app:v1`; a reference
    /// without a tag gets `:latest`) instead of ko's names; returns the first.
    pub fn with_tags(tags: Vec<String>) -> Self {
        let tags = tags
            .into_iter()
            .map(|t| {
                let last = t.rsplit('/').next().unwrap_or(&t);
                if last.contains(':') || last.contains('@') {
                    t
                } else {
                    format!("{t}:latest")
                }
            })
            .collect();
        DaemonPublisher { repo: String::new(), naming: Naming::Bare, exact: tags, tags: Vec::new() }
    }
}

/// Loads one image archive into the engine.
pub async fn load(docker: &bollard::Docker, archive: Vec<u8>) -> Result<(), PublishError> {
    let mut stream = docker.import_image(
        ImportImageOptions { quiet: true, ..Default::default() },
        bollard::body_full(archive.into()),
        None,
    );
    while let Some(item) = stream.next().await {
        item.map_err(|e| PublishError::Daemon { detail: format!("loading the image failed: {e}") })?;
    }
    Ok(())
}

#[async_trait]
impl Publish for DaemonPublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let image = pick_image(&built.artifact);
        let tags = if self.exact.is_empty() {
            // ko: `<repo>:<hex of the image's manifest digest>`, then each tag.
            let repository = self.naming.repository(&self.repo, &built.package.import_path);
            let mut tags = vec![format!("{repository}:{}", oci::digest_hex(&image.digest()))];
            tags.extend(self.tags.iter().map(|t| format!("{repository}:{t}")));
            tags
        } else {
            self.exact.clone()
        };
        let id_tag = tags[0].clone();
        let mut archive = Vec::new();
        write_docker_archive(image, &tags, &mut archive)
            .map_err(|source| PublishError::Io { path: "<docker archive>".into(), source })?;
        let docker = crate::docker::connect().await?;
        let bar = crate::progress::spinner(format!("loading {id_tag} into the Docker engine"));
        let loaded = load(&docker, archive).await;
        bar.finish_and_clear();
        loaded?;
        tracing::info!("loaded {id_tag} into the Docker engine ({})", image.platform);
        Ok(id_tag)
    }
}
