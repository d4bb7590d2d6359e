//! Base images: pulled once with oci-client, kept in a content-addressed store
//! on disk, and reused by every later build without touching the network.
//!
//! The store holds `blobs/sha256/<hex>` (manifests, configs, layers — each
//! verified against its digest before it is renamed into place) and
//! `refs/<sha256 of the reference>` mapping a tag to the manifest digest it
//! had when first pulled. `--pull` (refresh) re-resolves tags.
//! `scratch` is a built-in empty base and `static` ([`super::staticbase`]) a
//! built-in distroless-like one; neither needs the network.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use oci_client::manifest::OciDescriptor;
use oci_client::Reference;
use serde_json::Value;

use crate::oci::client::{classify, parse_reference, Registry, RegistryError};
use crate::oci::{self, BlobData, Descriptor, Layer};
use crate::platform::Platform;

use super::image::BaseImage;

/// `--platform=all` on a built-in base (`static`, `scratch`): the Linux
/// platforms Go builds static binaries for that container runtimes run —
/// distroless static's set, plus riscv64 and 386.
pub const BUILTIN_PLATFORMS: &[&str] =
    &["linux/386", "linux/amd64", "linux/arm/v7", "linux/arm64", "linux/ppc64le", "linux/riscv64", "linux/s390x"];

/// Errors getting a base image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaseError {
    /// The registry failed.
    #[error("base image {reference}: {source}")]
    Registry {
        /// The base image.
        reference: String,
        /// Why.
        source: RegistryError,
    },
    /// The base has no image for the platform.
    #[error(
        "base image {reference} has no image for {platform} (it has: {available}); pick another base or --platform"
    )]
    NoPlatform {
        /// The base image.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// What it has.
        available: String,
    },
    /// The base's manifest or config is not what an image should be.
    #[error("base image {reference}: {detail}")]
    Invalid {
        /// The base image.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// The on-disk store failed.
    #[error("base image cache {path}: {source}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The base-image store.
#[derive(Clone)]
pub struct BaseStore {
    dir: PathBuf,
    registry: Registry,
    refresh: bool,
}

const MANIFEST_TYPES: &[&str] =
    &[oci::MEDIA_MANIFEST, oci::MEDIA_INDEX, oci::MEDIA_DOCKER_MANIFEST, oci::MEDIA_DOCKER_LIST];

impl BaseStore {
    /// A store rooted at `dir`; `refresh` re-resolves tags against the registry.
    pub fn new(dir: PathBuf, registry: Registry, refresh: bool) -> Self {
        BaseStore { dir, registry, refresh }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(oci::digest_hex(digest))
    }

    fn cache_err(&self, path: &Path) -> impl Fn(std::io::Error) -> BaseError + '_ {
        let path = path.to_path_buf();
        move |source| BaseError::Cache { path: path.clone(), source }
    }

    /// Gets `reference` for `platform`, from the store when it is there.
    pub async fn get(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BaseError> {
        if reference == "scratch" {
            return Ok(BaseImage::scratch(platform));
        }
        if reference == super::staticbase::NAME {
            return super::staticbase::image(platform)
                .map_err(|e| BaseError::Invalid { reference: reference.into(), detail: e.to_string() });
        }
        let bar = crate::progress::spinner(format!("base image {reference} ({platform})"));
        let got = self.pull(reference, platform).await;
        bar.finish_and_clear();
        got
    }

    /// Every platform `reference` offers (`--platform=all`): the entries of
    /// its index (attestations' `unknown/unknown` left out), the one image's
    /// own platform, or for the built-in bases the Linux platforms Go builds
    /// static binaries for that container runtimes run.
    pub async fn platforms(&self, reference: &str) -> Result<Vec<Platform>, BaseError> {
        if reference == "scratch" || reference == super::staticbase::NAME {
            return Ok(BUILTIN_PLATFORMS.iter().map(|p| p.parse().expect("a valid platform")).collect());
        }
        let reg_err = |source| BaseError::Registry { reference: reference.into(), source };
        let r = parse_reference(reference).map_err(reg_err)?;
        let invalid = |detail: String| BaseError::Invalid { reference: reference.into(), detail };
        let top_digest = self.resolve_top(&r, reference).await?;
        let top = self.manifest(&r, &top_digest).await?;
        let json: Value = serde_json::from_slice(&top).map_err(|e| invalid(format!("manifest is not JSON: {e}")))?;
        if json.get("manifests").is_some() {
            let index: oci::Index = serde_json::from_value(json).map_err(|e| invalid(format!("bad index: {e}")))?;
            let mut out: Vec<Platform> = Vec::new();
            for p in index.manifests.iter().filter_map(|d| d.platform.as_ref()) {
                if p.os == "unknown" || p.architecture == "unknown" {
                    continue;
                }
                let platform = Platform { os: p.os.clone(), arch: p.architecture.clone(), variant: p.variant.clone() };
                if !out.contains(&platform) {
                    out.push(platform);
                }
            }
            return if out.is_empty() { Err(invalid("its index lists no platform".into())) } else { Ok(out) };
        }
        let manifest: oci::Manifest =
            serde_json::from_slice(&top).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        let config = self.blob(&r, &manifest.config).await?.read().await.map_err(self.cache_err(&self.dir))?;
        let config: Value = serde_json::from_slice(&config).map_err(|e| invalid(format!("config is not JSON: {e}")))?;
        let (os, arch) = (config["os"].as_str().unwrap_or("linux"), config["architecture"].as_str().unwrap_or(""));
        if arch.is_empty() {
            return Err(invalid("its config names no architecture".into()));
        }
        Ok(vec![Platform { os: os.into(), arch: arch.into(), variant: config["variant"].as_str().map(String::from) }])
    }

    /// [`BaseStore::get`] for an image reference: from the cache, else the registry.
    async fn pull(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BaseError> {
        let reg_err = |source| BaseError::Registry { reference: reference.into(), source };
        let r = parse_reference(reference).map_err(reg_err)?;
        let invalid = |detail: String| BaseError::Invalid { reference: reference.into(), detail };

        let top_digest = self.resolve_top(&r, reference).await?;
        let top = self.manifest(&r, &top_digest).await?;
        let top_json: Value =
            serde_json::from_slice(&top).map_err(|e| invalid(format!("manifest is not JSON: {e}")))?;
        let manifest_bytes = if top_json.get("manifests").is_some() {
            let index: oci::Index = serde_json::from_value(top_json).map_err(|e| invalid(format!("bad index: {e}")))?;
            let chosen = index.manifests.iter().find(|d| {
                d.platform.as_ref().is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
            });
            let Some(chosen) = chosen else {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| {
                        format!(
                            "{}/{}{}",
                            p.os,
                            p.architecture,
                            p.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
                        )
                    })
                    .collect();
                return Err(BaseError::NoPlatform {
                    reference: reference.into(),
                    platform: platform.to_string(),
                    available: available.join(", "),
                });
            };
            self.manifest(&r, &chosen.digest).await?
        } else {
            top
        };
        let manifest: oci::Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
        let config_bytes = self.blob(&r, &manifest.config).await?.read().await.map_err(self.cache_err(&self.dir))?;
        let config: Value =
            serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("config is not JSON: {e}")))?;
        let (os, arch) = (config["os"].as_str().unwrap_or(""), config["architecture"].as_str().unwrap_or(""));
        if !platform.matches(os, arch, config["variant"].as_str()) {
            return Err(BaseError::NoPlatform {
                reference: reference.into(),
                platform: platform.to_string(),
                available: format!("{os}/{arch}"),
            });
        }
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "{} layers but {} diff_ids in its config",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (desc, diff_id) in manifest.layers.iter().zip(diff_ids) {
            let data = self.blob(&r, desc).await?;
            let mut descriptor = desc.clone();
            descriptor.media_type = oci_layer_type(&desc.media_type).map_err(invalid)?.into();
            descriptor.annotations = None;
            layers.push(Layer { descriptor, diff_id, data });
        }
        Ok(BaseImage { reference: reference.into(), config, layers })
    }

    /// The digest a reference points at: its own digest, the remembered tag
    /// resolution, or (first time / refresh) the registry's answer.
    async fn resolve_top(&self, r: &Reference, reference: &str) -> Result<String, BaseError> {
        if let Some(d) = r.digest() {
            return Ok(d.to_string());
        }
        let ref_file = self.dir.join("refs").join(oci::digest_hex(&oci::sha256_digest(r.whole().as_bytes())));
        if !self.refresh {
            if let Ok(d) = std::fs::read_to_string(&ref_file) {
                if oci::is_sha256_digest(d.trim()) && self.blob_path(d.trim()).is_file() {
                    return Ok(d.trim().to_string());
                }
            }
        }
        tracing::info!("pulling base image {reference}");
        let auth = self.auth(r, reference).await?;
        let client = self.client(r, reference).await?;
        let (bytes, _) = client
            .pull_manifest_raw(r, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| BaseError::Registry { reference: reference.into(), source: classify(r, e) })?;
        let digest = oci::sha256_digest(&bytes);
        self.store(&digest, &bytes)?;
        crate::atomic::write(&ref_file, digest.as_bytes(), None).map_err(self.cache_err(&ref_file))?;
        Ok(digest)
    }

    /// Pull credentials for `r` (`reference` as the user wrote it, for errors).
    async fn auth(&self, r: &Reference, reference: &str) -> Result<oci_client::secrets::RegistryAuth, BaseError> {
        self.registry
            .auth_for(r, oci_client::RegistryOperation::Pull)
            .await
            .map_err(|source| BaseError::Registry { reference: reference.into(), source })
    }

    /// The registry client for `r` (`reference` as the user wrote it, for errors).
    async fn client(&self, r: &Reference, reference: &str) -> Result<oci_client::Client, BaseError> {
        self.registry.client(r).await.map_err(|source| BaseError::Registry { reference: reference.into(), source })
    }

    fn store(&self, digest: &str, bytes: &[u8]) -> Result<(), BaseError> {
        let path = self.blob_path(digest);
        crate::atomic::write(&path, bytes, None).map_err(self.cache_err(&path))
    }

    /// A manifest by digest, from the store or the registry (verified).
    async fn manifest(&self, r: &Reference, digest: &str) -> Result<Bytes, BaseError> {
        let invalid = |detail: String| BaseError::Invalid { reference: r.whole(), detail };
        if !oci::is_sha256_digest(digest) {
            return Err(invalid(format!("unsupported digest {digest:?}")));
        }
        let path = self.blob_path(digest);
        if let Ok(b) = std::fs::read(&path) {
            if oci::sha256_digest(&b) == digest {
                return Ok(Bytes::from(b));
            }
        }
        let by_digest = Reference::with_digest(r.registry().into(), r.repository().into(), digest.into());
        let auth = self.auth(r, &r.whole()).await?;
        let (bytes, _) = self
            .client(r, &r.whole())
            .await?
            .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| BaseError::Registry { reference: r.whole(), source: classify(r, e) })?;
        if oci::sha256_digest(&bytes) != digest {
            return Err(invalid(format!("registry returned a manifest that does not match {digest}")));
        }
        self.store(digest, &bytes)?;
        Ok(bytes)
    }

    /// A blob by descriptor, downloaded into the store unless already there.
    async fn blob(&self, r: &Reference, desc: &Descriptor) -> Result<BlobData, BaseError> {
        if !oci::is_sha256_digest(&desc.digest) {
            return Err(BaseError::Invalid {
                reference: r.whole(),
                detail: format!("unsupported digest {:?}", desc.digest),
            });
        }
        let path = self.blob_path(&desc.digest);
        if path.is_file() {
            return Ok(BlobData::File(path));
        }
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(self.cache_err(&dir))?;
        let tmp = crate::atomic::AtomicFile::create(&path).map_err(self.cache_err(&dir))?;
        let file = tokio::fs::File::from_std(tmp.file().try_clone().map_err(self.cache_err(&dir))?);
        let od = OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            size: desc.size as i64,
            ..Default::default()
        };
        // pull_blob verifies the bytes against the digest before returning Ok.
        self.client(r, &r.whole())
            .await?
            .pull_blob(r, &od, file)
            .await
            .map_err(|e| BaseError::Registry { reference: r.whole(), source: classify(r, e) })?;
        tmp.commit(None).map_err(self.cache_err(&path))?;
        Ok(BlobData::File(path))
    }
}

/// The OCI media type for a base layer (Docker types map to their OCI twins:
/// same bytes, same digest).
fn oci_layer_type(media_type: &str) -> Result<&'static str, String> {
    match media_type {
        oci::MEDIA_LAYER_GZIP | oci::MEDIA_DOCKER_LAYER => Ok(oci::MEDIA_LAYER_GZIP),
        "application/vnd.oci.image.layer.v1.tar" => Ok("application/vnd.oci.image.layer.v1.tar"),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Ok("application/vnd.oci.image.layer.v1.tar+zstd"),
        other => Err(format!("unsupported layer media type {other}")),
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn builtin_bases_offer_every_platform_for_platform_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = BaseStore::new(dir.path().to_path_buf(), Registry::new(None).unwrap(), false);
        for base in ["static", "scratch"] {
            let platforms = store.platforms(base).await.unwrap();
            assert_eq!(platforms.len(), BUILTIN_PLATFORMS.len());
            assert!(platforms.contains(&"linux/arm/v7".parse().unwrap()));
        }
    }

    use super::*;

    #[test]
    fn scratch_is_empty() {
        let b = BaseImage::scratch(&"linux/arm/v7".parse().unwrap());
        assert!(b.layers.is_empty());
        assert_eq!(b.config["architecture"], "arm");
        assert_eq!(b.config["variant"], "v7");
    }

    #[test]
    fn docker_layers_become_oci() {
        assert_eq!(oci_layer_type(oci::MEDIA_DOCKER_LAYER).unwrap(), oci::MEDIA_LAYER_GZIP);
        assert!(oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip").is_err());
    }
}
