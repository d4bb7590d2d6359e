//! Publishing to an OCI registry with oci-client.
//!
//! Blobs the registry already has (checked with a HEAD) are not sent again,
//! so a rebuild that changed only the binary uploads only that layer, the
//! config and the manifest. With SBOMs on (`--sbom=spdx`, ko's default),
//! each image's SPDX document goes beside it under cosign's tag
//! `sha256-<digest hex>.sbom` ([`crate::builder::sbom`]).

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use http::HeaderValue;
use oci_client::Reference;

use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci::client::{classify, parse_reference, Registry};
use crate::oci::{self, Artifact, BlobData};

/// Pushes images to `repo` (e.g. `127.0.0.1:5000/team`).
pub struct RegistryPublisher {
    registry: Registry,
    repo: String,
    naming: Naming,
    tags: Vec<String>,
    sbom: bool,
}

impl RegistryPublisher {
    /// A publisher; `tags` are applied to every image (ko defaults to
    /// `latest`); `sbom` pushes an SPDX SBOM beside each image.
    pub fn new(registry: Registry, repo: String, naming: Naming, tags: Vec<String>, sbom: bool) -> Self {
        let tags = if tags.is_empty() { vec!["latest".into()] } else { tags };
        RegistryPublisher { registry, repo, naming, tags, sbom }
    }

    /// A publisher that pushes to exactly `reference` (`host/repo:tag`, as
    /// Skaffold's `$IMAGE` names it): that repository, that one tag, no
    /// naming strategy applied. A reference with a digest is refused, since
    /// the digest is only known after the build.
    pub fn for_reference(registry: Registry, reference: &str) -> Result<Self, PublishError> {
        let (repo, tag) = split_tag(reference)?;
        Ok(RegistryPublisher { registry, repo, naming: Naming::Bare, tags: vec![tag], sbom: false })
    }
}

/// Splits `host/repo:tag` into `host/repo` and `tag` (`latest` when there is
/// none), checking the reference parses. Digests are refused.
pub fn split_tag(reference: &str) -> Result<(String, String), PublishError> {
    let bad = |detail: &str| PublishError::Destination(format!("image reference {reference:?} {detail}"));
    if reference.contains('@') {
        return Err(bad("has a digest; give a tag (host/repo:tag): the digest is only known after the build"));
    }
    parse_reference(reference).map_err(|e| bad(&format!("is not valid: {e}")))?;
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            Ok((reference[..at].to_string(), reference[at + 1..].to_string()))
        }
        None => Ok((reference.to_string(), "latest".to_string())),
    }
}

/// What a push did, for the one log line.
#[derive(Debug, Default)]
struct PushStats {
    uploaded: usize,
    uploaded_bytes: u64,
    present: usize,
}

#[async_trait]
impl Publish for RegistryPublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let repository = self.naming.repository(&self.repo, &built.package.import_path);
        let err_ref = repository.clone();
        let perr = move |source| PublishError::Registry { reference: err_ref.clone(), source };
        let base = parse_reference(&repository).map_err(&perr)?;
        let at_tag = |tag: &str| Reference::with_tag(base.registry().into(), base.repository().into(), tag.into());
        let at_digest =
            |digest: &str| Reference::with_digest(base.registry().into(), base.repository().into(), digest.into());
        let auth = self.registry.auth_for(&base, oci_client::RegistryOperation::Push).await.map_err(&perr)?;
        let client = self.registry.client(&base).await.map_err(&perr)?;
        let first = at_tag(&self.tags[0]);
        // Authenticate once for push (bearer token exchange where the registry asks for it).
        client.auth(&first, &auth, oci_client::RegistryOperation::Push).await.map_err(|e| perr(classify(&first, e)))?;

        // Every distinct blob of every image.
        let mut blobs: Vec<(String, u64, BlobData)> = Vec::new();
        for img in built.artifact.images() {
            let cfg = (img.config_digest(), img.config.len() as u64, BlobData::Bytes(img.config.clone()));
            let layers = img.layers.iter().map(|l| (l.descriptor.digest.clone(), l.descriptor.size, l.data.clone()));
            for b in std::iter::once(cfg).chain(layers) {
                if !blobs.iter().any(|x| x.0 == b.0) {
                    blobs.push(b);
                }
            }
        }
        let mut missing = Vec::new();
        let mut stats = PushStats::default();
        for (digest, size, data) in blobs {
            let exists = client.blob_exists(&first, &digest).await.map_err(|e| perr(classify(&first, e)))?;
            if exists {
                stats.present += 1;
            } else {
                missing.push((digest, size, data));
            }
        }
        let total: u64 = missing.iter().map(|m| m.1).sum();
        let bar = crate::progress::bytes(
            total,
            format!("pushing {repository}: {} blob(s), {} already there", missing.len(), stats.present),
        );
        stats.uploaded = missing.len();
        stats.uploaded_bytes = total;
        futures::stream::iter(missing.into_iter().map(|(digest, size, data)| {
            let (client, first, bar) = (&client, &first, &bar);
            async move {
                let bytes =
                    data.read().await.map_err(|source| PublishError::Io { path: digest.clone().into(), source })?;
                client
                    .push_blob(first, bytes, &digest)
                    .await
                    .map_err(|e| PublishError::Registry { reference: first.whole(), source: classify(first, e) })?;
                bar.inc(size);
                Ok::<_, PublishError>(())
            }
        }))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
        bar.finish_and_clear();

        if let Artifact::Index { images, .. } = &built.artifact {
            for img in images {
                let r = at_digest(&img.digest());
                client
                    .push_manifest_raw(&r, img.manifest.clone(), HeaderValue::from_static(oci::MEDIA_MANIFEST))
                    .await
                    .map_err(|e| perr(classify(&r, e)))?;
            }
        }
        let media = HeaderValue::from_static(built.artifact.media_type());
        for tag in &self.tags {
            let r = at_tag(tag);
            client
                .push_manifest_raw(&r, built.artifact.manifest().clone(), media.clone())
                .await
                .map_err(|e| perr(classify(&r, e)))?;
        }
        if self.sbom {
            for img in built.artifact.images() {
                let Some((_, info)) = built.build_info.iter().find(|(p, _)| *p == img.platform) else { continue };
                let (manifest, blobs) = sbom_manifest(img, info);
                for (digest, bytes) in blobs {
                    client.push_blob(&first, bytes, &digest).await.map_err(|e| perr(classify(&first, e)))?;
                }
                let r = at_tag(&crate::builder::sbom::sbom_tag(&img.digest()));
                client
                    .push_manifest_raw(&r, manifest, HeaderValue::from_static(oci::MEDIA_MANIFEST))
                    .await
                    .map_err(|e| perr(classify(&r, e)))?;
            }
        }
        tracing::info!(
            "published {repository}: {} blob(s) uploaded ({}), {} already in the registry",
            stats.uploaded,
            crate::progress::human_bytes(stats.uploaded_bytes),
            stats.present
        );
        Ok(format!("{repository}@{}", built.artifact.digest()))
    }
}

/// The SBOM attachment of `img` (cosign's shape: a config and one
/// `text/spdx+json` layer): its manifest, and its blobs with their digests.
fn sbom_manifest(img: &oci::Image, build_info: &str) -> (bytes::Bytes, Vec<(String, bytes::Bytes)>) {
    use crate::builder::sbom;
    let created = sbom::image_created(img);
    let doc = bytes::Bytes::from(sbom::image_spdx(img, build_info));
    let doc_digest = oci::sha256_digest(&doc);
    let cfg = serde_json::json!({
        "architecture": "", "os": "", "created": created, "config": {},
        "rootfs": {"type": "layers", "diff_ids": [doc_digest]},
    });
    let cfg = bytes::Bytes::from(oci::to_json(&cfg));
    let cfg_digest = oci::sha256_digest(&cfg);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::MEDIA_MANIFEST,
        "config": {"mediaType": oci::MEDIA_CONFIG, "digest": cfg_digest, "size": cfg.len()},
        "layers": [{"mediaType": sbom::SPDX_MEDIA_TYPE, "digest": doc_digest, "size": doc.len()}],
    });
    (bytes::Bytes::from(oci::to_json(&manifest)), vec![(cfg_digest, cfg), (doc_digest, doc)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_keeps_the_port() {
        let split = |r: &str| split_tag(r).map_err(|e| e.to_string());
        assert_eq!(split("127.0.0.1:5000/app:v1-abc").unwrap(), ("127.0.0.1:5000/app".into(), "v1-abc".into()));
        assert_eq!(split("127.0.0.1:5000/team/app").unwrap(), ("127.0.0.1:5000/team/app".into(), "latest".into()));
        assert_eq!(split("app:dirty").unwrap(), ("app".into(), "dirty".into()));
        assert!(split("127.0.0.1:5000/app@sha256:0000").unwrap_err().contains("digest"));
        assert!(split("Bad Ref").is_err());
    }
}
