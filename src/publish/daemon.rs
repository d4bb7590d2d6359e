//! Publishing into the local Docker engine (`ko.local`), through its API with
//! bollard: the image is streamed as a `docker load` archive and tagged
//! `ko.local/<name>:<image id>` (and `:latest`), as ko does.

use async_trait::async_trait;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;

use super::tarball::{pick_image, write_docker_archive};
use super::{Naming, Publish, PublishError};
use crate::build::Built;
use crate::oci;

/// Loads images into the Docker engine.
pub struct DaemonPublisher {
    repo: String,
    naming: Naming,
}

impl DaemonPublisher {
    /// `repo` is `ko.local` or `ko.local/<something>`.
    pub fn new(repo: String, naming: Naming) -> Self {
        DaemonPublisher { repo, naming }
    }
}

/// Connects to the engine named by `DOCKER_HOST` (default: the local socket)
/// and agrees on an API version both sides speak.
pub async fn connect() -> Result<bollard::Docker, PublishError> {
    let hint = "is the Docker engine running and DOCKER_HOST right?";
    let docker = bollard::Docker::connect_with_defaults()
        .map_err(|e| PublishError::Daemon { detail: format!("cannot connect: {e}; {hint}") })?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| PublishError::Daemon { detail: format!("cannot reach the engine: {e}; {hint}") })
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
        let repository = self.naming.repository(&self.repo, &built.package.import_path);
        let image = pick_image(&built.artifact);
        let id_tag = format!("{repository}:{}", oci::digest_hex(&image.config_digest()));
        let tags = vec![id_tag.clone(), format!("{repository}:latest")];
        let mut archive = Vec::new();
        write_docker_archive(image, &tags, &mut archive)
            .map_err(|source| PublishError::Io { path: "<docker archive>".into(), source })?;
        let docker = connect().await?;
        load(&docker, archive).await?;
        tracing::info!("loaded {id_tag} into the Docker engine ({})", image.platform);
        Ok(id_tag)
    }
}
