//! `docker load`-able tarballs (`--tarball`), and the archive writer the
//! Docker-engine publisher shares.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci::{self, Artifact, Image};
use crate::platform::Platform;

/// Writes `image` as a Docker image archive (`manifest.json`, config, layers)
/// tagged with `tags`. Layers stay gzip-compressed; `docker load` and skopeo
/// both accept that.
pub fn write_docker_archive(image: &Image, tags: &[String], out: impl Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let config_name = format!("{}.json", oci::digest_hex(&image.config_digest()));
    let mut append = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, name, data)
    };
    append(&config_name, &image.config)?;
    let mut layer_names = Vec::new();
    for l in &image.layers {
        let name = format!("{}.tar.gz", oci::digest_hex(&l.descriptor.digest));
        if !layer_names.contains(&name) {
            append(&name, &l.data.read_blocking()?)?;
        }
        layer_names.push(name);
    }
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": tags, "Layers": layer_names }]);
    append("manifest.json", &serde_json::to_vec(&manifest).unwrap_or_default())?;
    tar.into_inner()?.flush()
}

/// The image of an artifact to hand to something that runs one platform
/// (the Docker engine, a tarball): the host's, else the first.
pub fn pick_image(artifact: &Artifact) -> &Image {
    let host = Platform::host_linux();
    artifact.image_for(&host).unwrap_or(&artifact.images()[0])
}

/// Writes a `docker load` tarball to a file.
pub struct TarballPublisher {
    path: PathBuf,
    repo: String,
    naming: Naming,
}

impl TarballPublisher {
    /// Writes to `path`; images are tagged `<repo>/<name>:latest` inside.
    pub fn new(path: PathBuf, repo: Option<String>, naming: Naming) -> Self {
        TarballPublisher { path, repo: repo.unwrap_or_else(|| "ko.local".into()), naming }
    }
}

#[async_trait]
impl Publish for TarballPublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let repository = self.naming.repository(&self.repo, &built.package.import_path);
        let image = pick_image(&built.artifact);
        let tag = format!("{repository}:latest");
        let io = |source| PublishError::Io { path: self.path.clone(), source };
        // Written beside the target and renamed at the end: never a half tarball.
        let mut tmp = crate::atomic::AtomicFile::create(&self.path).map_err(io)?;
        write_docker_archive(image, std::slice::from_ref(&tag), std::io::BufWriter::new(tmp.file_mut())).map_err(io)?;
        tmp.commit(None).map_err(io)?;
        tracing::info!("wrote {} ({tag}, {})", self.path.display(), image.platform);
        Ok(tag)
    }
}
