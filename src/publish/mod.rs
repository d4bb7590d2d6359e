//! Publish: a built image in, a reference out (ko's `publish.Interface`).
//!
//! One file per destination — registry, Docker engine, KinD nodes, Minikube,
//! tarball, OCI layout —
//! each a small [`Publish`] implementation, chosen in one place
//! ([`select::publisher`]). Fan-out to several destinations is a wrapper
//! ([`Multi`]), as are recording references for `--image-refs`
//! ([`recorder::Recorder`]) and writing SBOMs for `--sbom-dir`
//! ([`sbom_dir::SbomDir`]), not a flag inside each.

pub mod daemon;
pub mod kind;
pub mod layout;
pub mod minikube;
pub mod recorder;
pub mod registry;
pub mod sbom_dir;
pub mod select;
pub mod tarball;

use async_trait::async_trait;

use crate::builder::Built;
use crate::oci::client::RegistryError;

/// Errors publishing an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The registry failed.
    #[error("pushing {reference}: {source}")]
    Registry {
        /// Where to.
        reference: String,
        /// Why.
        source: RegistryError,
    },
    /// The Docker engine failed.
    #[error("Docker engine: {detail}")]
    Daemon {
        /// What went wrong and what to do.
        detail: String,
    },
    /// The Docker engine could not be reached.
    #[error(transparent)]
    Engine(#[from] crate::docker::DockerError),
    /// Writing to disk failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No destination, or an unusable one.
    #[error("{0}")]
    Destination(String),
}

/// Anything that can publish a built image and name the result.
#[async_trait]
pub trait Publish: Send + Sync {
    /// Publishes and returns the reference to use (with digest where the
    /// destination has one).
    async fn publish(&self, built: &Built) -> Result<String, PublishError>;
}

/// How an import path becomes a repository name, as ko's flags choose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Naming {
    /// `<repo>/<base>-<md5 of import path>` (ko's default).
    #[default]
    Md5,
    /// `<repo>/<base>` (`-B`, `--base-import-paths`).
    Base,
    /// `<repo>` itself (`--bare`).
    Bare,
    /// `<repo>/<import path>` (`-P`, `--preserve-import-paths`).
    Preserve,
}

impl Naming {
    /// The repository for an import path under `repo`.
    pub fn repository(self, repo: &str, import_path: &str) -> String {
        use md5::Digest as _;
        let repo = repo.trim_end_matches('/');
        let base = crate::builder::go::binary_name(import_path).to_lowercase();
        match self {
            Naming::Md5 => format!("{repo}/{base}-{}", hex::encode(md5::Md5::digest(import_path.as_bytes()))),
            Naming::Base => format!("{repo}/{base}"),
            Naming::Bare => repo.to_string(),
            Naming::Preserve => format!("{repo}/{}", import_path.to_lowercase()),
        }
    }
}

/// Publishes to several destinations; returns the first one's reference.
pub struct Multi(pub Vec<Box<dyn Publish>>);

#[async_trait]
impl Publish for Multi {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let mut first = None;
        for p in &self.0 {
            let r = p.publish(built).await?;
            first.get_or_insert(r);
        }
        first.ok_or_else(|| PublishError::Destination("no destination to publish to".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_follows_ko() {
        let ip = "example.com/hello";
        assert_eq!(Naming::Base.repository("r.io/x/", ip), "r.io/x/hello");
        assert_eq!(Naming::Bare.repository("r.io/x", ip), "r.io/x");
        assert_eq!(Naming::Preserve.repository("r.io/x", ip), "r.io/x/example.com/hello");
        let md5 = Naming::Md5.repository("r.io/x", ip);
        assert!(md5.starts_with("r.io/x/hello-") && md5.len() == "r.io/x/hello-".len() + 32, "{md5}");
    }
}
