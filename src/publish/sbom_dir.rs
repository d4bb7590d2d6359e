//! `--sbom-dir DIR`: a wrapper that writes each image's SPDX SBOM to a
//! directory before the wrapped publisher runs, as ko's `--sbom-dir` does,
//! whatever the destination (registry, engine, tarball, layout).
//!
//! Named after the binary as ko names it, `DIR/<app>.spdx.json`; with several
//! platforms, one per platform, `DIR/<app>-<os>-<arch>[-<variant>].spdx.json`
//! (ko writes them all to the one name, each overwriting the last). Written
//! through a temporary file and a rename: never half a document.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Publish, PublishError};
use crate::builder::{sbom, Built};

/// Writes SBOMs on the way in.
pub struct SbomDir {
    inner: Box<dyn Publish>,
    dir: PathBuf,
}

impl SbomDir {
    /// Wraps `inner`, creating `dir` if need be.
    pub fn create(inner: Box<dyn Publish>, dir: &Path) -> Result<Self, PublishError> {
        std::fs::create_dir_all(dir).map_err(|source| PublishError::Io { path: dir.into(), source })?;
        Ok(SbomDir { inner, dir: dir.into() })
    }

    fn write(&self, name: &str, doc: &[u8]) -> Result<(), PublishError> {
        let path = self.dir.join(name);
        crate::atomic::write(&path, doc, Some(0o644))
            .map_err(|source| PublishError::Io { path: path.clone(), source })?;
        tracing::info!("wrote the SBOM {}", path.display());
        Ok(())
    }
}

#[async_trait]
impl Publish for SbomDir {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let app = built.package.binary_name();
        let images = built.artifact.images();
        for img in images {
            let Some((_, info)) = built.build_info.iter().find(|(p, _)| *p == img.platform) else { continue };
            let name = if images.len() == 1 {
                format!("{app}.spdx.json")
            } else {
                format!("{app}-{}.spdx.json", img.platform.to_string().replace('/', "-"))
            };
            self.write(&name, &sbom::image_spdx(img, info))?;
        }
        self.inner.publish(built).await
    }
}
