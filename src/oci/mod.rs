//! OCI images: the data as gohot builds and publishes it — descriptors,
//! manifests, indexes and the blobs behind them — and the registry client
//! ([`client`]) that pulls base images and pushes built ones.
//!
//! gohot writes its own manifests (rather than reusing a client library's
//! types) so that the bytes — and therefore the digests — are fully under its
//! control: fixed field order, no optional noise, the same JSON every time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::platform::Platform;

pub mod client;
pub mod fuzz;
mod identity;

/// OCI image manifest media type.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed layer media type.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker schema 2 manifest (accepted from base images).
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (accepted from base images).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker gzip layer media type (accepted from base images).
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:<hex>` digest.
pub fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Whether `s` is a well-formed `sha256:<64 hex>` digest (safe to use in a path).
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

/// Platform fields of an index entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlatformSpec {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Architecture variant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

impl From<&Platform> for PlatformSpec {
    fn from(p: &Platform) -> Self {
        PlatformSpec { architecture: p.arch.clone(), os: p.os.clone(), variant: p.variant.clone() }
    }
}

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, for index entries.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<PlatformSpec>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A descriptor for the given bytes.
    pub fn of(media_type: &str, data: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest: sha256_digest(data),
            size: data.len() as u64,
            platform: None,
            annotations: None,
        }
    }
}

/// An image manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MEDIA_MANIFEST`] for manifests gohot writes.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
}

/// An image index (multi-platform image).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`MEDIA_INDEX`] for indexes gohot writes.
    #[serde(default)]
    pub media_type: Option<String>,
    /// One entry per platform.
    pub manifests: Vec<Descriptor>,
}

/// Where a blob's bytes are: in memory, or in a file of the content cache.
#[derive(Clone, Debug)]
pub enum BlobData {
    /// Held in memory.
    Bytes(Bytes),
    /// A file whose content has already been verified against the digest.
    File(PathBuf),
}

impl BlobData {
    /// Reads the whole blob.
    pub async fn read(&self) -> std::io::Result<Bytes> {
        match self {
            BlobData::Bytes(b) => Ok(b.clone()),
            BlobData::File(p) => Ok(Bytes::from(tokio::fs::read(p).await?)),
        }
    }

    /// Reads the whole blob, blocking.
    pub fn read_blocking(&self) -> std::io::Result<Bytes> {
        match self {
            BlobData::Bytes(b) => Ok(b.clone()),
            BlobData::File(p) => Ok(Bytes::from(std::fs::read(p)?)),
        }
    }
}

/// A layer: its descriptor, its uncompressed digest and its bytes.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Descriptor of the compressed blob.
    pub descriptor: Descriptor,
    /// `sha256` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// The compressed bytes.
    pub data: BlobData,
}

/// A single-platform image, ready to publish.
#[derive(Clone, Debug)]
pub struct Image {
    /// The platform it runs on.
    pub platform: Platform,
    /// Serialized manifest.
    pub manifest: Bytes,
    /// Serialized config.
    pub config: Bytes,
    /// Layers in order, base first.
    pub layers: Vec<Layer>,
}

impl Image {
    /// Assembles an image from a config and its layers, writing the manifest.
    pub fn new(platform: Platform, config: Bytes, layers: Vec<Layer>) -> Self {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: Descriptor::of(MEDIA_CONFIG, &config),
            layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        };
        let manifest = Bytes::from(to_json(&manifest));
        Image { platform, manifest, config, layers }
    }

    /// Digest of the manifest: the image's identity in a registry.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// Digest of the config: the image ID the Docker engine shows.
    pub fn config_digest(&self) -> String {
        sha256_digest(&self.config)
    }

    /// Descriptor of the manifest, with platform, for an index.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(MEDIA_MANIFEST, &self.manifest);
        d.platform = Some((&self.platform).into());
        d
    }
}

/// What a build produces: one image, or an index of per-platform images.
#[derive(Clone, Debug)]
pub enum Artifact {
    /// A single-platform image.
    Image(Image),
    /// A multi-platform index and its images.
    Index {
        /// Serialized index.
        manifest: Bytes,
        /// The images, in index order.
        images: Vec<Image>,
    },
}

impl Artifact {
    /// Wraps several images into an index (or returns the single image).
    pub fn from_images(mut images: Vec<Image>) -> Self {
        if images.len() == 1 {
            if let Some(img) = images.pop() {
                return Artifact::Image(img);
            }
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(MEDIA_INDEX.into()),
            manifests: images.iter().map(Image::descriptor).collect(),
        };
        Artifact::Index { manifest: Bytes::from(to_json(&index)), images }
    }

    /// Digest of the top-level manifest or index.
    pub fn digest(&self) -> String {
        match self {
            Artifact::Image(i) => i.digest(),
            Artifact::Index { manifest, .. } => sha256_digest(manifest),
        }
    }

    /// Media type of the top-level manifest or index.
    pub fn media_type(&self) -> &'static str {
        match self {
            Artifact::Image(_) => MEDIA_MANIFEST,
            Artifact::Index { .. } => MEDIA_INDEX,
        }
    }

    /// Serialized top-level manifest or index.
    pub fn manifest(&self) -> &Bytes {
        match self {
            Artifact::Image(i) => &i.manifest,
            Artifact::Index { manifest, .. } => manifest,
        }
    }

    /// All images inside.
    pub fn images(&self) -> &[Image] {
        match self {
            Artifact::Image(i) => std::slice::from_ref(i),
            Artifact::Index { images, .. } => images,
        }
    }

    /// The image for a platform (the only one, for a single image).
    pub fn image_for(&self, platform: &Platform) -> Option<&Image> {
        match self {
            Artifact::Image(i) => Some(i),
            Artifact::Index { images, .. } => images.iter().find(|i| &i.platform == platform),
        }
    }
}

/// Serializes to compact JSON. Serializing these plain structs cannot fail.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
