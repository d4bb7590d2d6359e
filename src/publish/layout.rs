//! Publishing into an OCI image layout directory (`--oci-layout-path`), the
//! format `umoci`, `skopeo copy oci:` and containerd read.
//!
//! Blobs are written first (each atomically); `index.json` last, atomically,
//! so an interrupted publish leaves the layout as it was plus unreferenced blobs.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci::{self, Artifact, Descriptor};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Writes images into an OCI layout.
pub struct LayoutPublisher {
    dir: PathBuf,
    naming: Naming,
}

impl LayoutPublisher {
    /// Writes into `dir` (created if missing).
    pub fn new(dir: PathBuf, naming: Naming) -> Self {
        LayoutPublisher { dir, naming }
    }

    fn write_blob(&self, digest: &str, data: &[u8]) -> Result<(), PublishError> {
        let path = self.dir.join("blobs").join("sha256").join(oci::digest_hex(digest));
        if path.is_file() {
            return Ok(());
        }
        crate::atomic::write(&path, data, None).map_err(|source| PublishError::Io { path, source })
    }
}

#[async_trait]
impl Publish for LayoutPublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let io = |path: PathBuf| move |source| PublishError::Io { path: path.clone(), source };
        for img in built.artifact.images() {
            for l in &img.layers {
                let data = l.data.read().await.map_err(io(self.dir.clone()))?;
                self.write_blob(&l.descriptor.digest, &data)?;
            }
            self.write_blob(&img.config_digest(), &img.config)?;
            self.write_blob(&img.digest(), &img.manifest)?;
        }
        if let Artifact::Index { manifest, .. } = &built.artifact {
            self.write_blob(&built.artifact.digest(), manifest)?;
        }
        let layout_file = self.dir.join("oci-layout");
        if !layout_file.is_file() {
            crate::atomic::write(&layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#, None)
                .map_err(io(layout_file.clone()))?;
        }
        // The ref name is the repository's last element, so `umoci unpack --image DIR:NAME` works.
        let repository = self.naming.repository("ko.local", &built.package.import_path);
        let name = repository.rsplit('/').next().unwrap_or(&repository).to_string();
        let index_path = self.dir.join("index.json");
        let mut index: Value = match std::fs::read(&index_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                PublishError::Destination(format!(
                    "{} is not a valid OCI index ({e}); choose an empty directory",
                    index_path.display()
                ))
            })?,
            Err(_) => json!({"schemaVersion": 2, "manifests": []}),
        };
        let mut desc = Descriptor::of(built.artifact.media_type(), built.artifact.manifest());
        desc.annotations = Some([(REF_NAME.to_string(), name.clone())].into_iter().collect());
        let entries = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| PublishError::Destination(format!("{} has no manifests array", index_path.display())))?;
        entries.retain(|e| e["annotations"][REF_NAME].as_str() != Some(name.as_str()));
        entries.push(serde_json::to_value(&desc).unwrap_or_default());
        crate::atomic::write(&index_path, &serde_json::to_vec_pretty(&index).unwrap_or_default(), None)
            .map_err(io(index_path.clone()))?;
        tracing::info!("wrote {} into OCI layout {}", name, self.dir.display());
        Ok(format!("{}:{name}@{}", self.dir.display(), built.artifact.digest()))
    }
}
