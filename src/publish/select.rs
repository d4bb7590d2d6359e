//! The one place that turns flags into a publisher (ko's `makePublisher`).

use std::path::PathBuf;

use super::daemon::DaemonPublisher;
use super::kind::KindPublisher;
use super::layout::LayoutPublisher;
use super::minikube::MinikubePublisher;
use super::registry::RegistryPublisher;
use super::tarball::TarballPublisher;
use super::{Multi, Naming, Publish, PublishError};
use crate::oci::client::Registry;

/// Where images should go.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    /// `KO_DOCKER_REPO` / `--repo`: a registry repository, `ko.local[/…]`.
    pub repo: Option<String>,
    /// Push to `repo` (ko's `--push`); false keeps only the on-disk outputs.
    pub push: bool,
    /// `--tarball`.
    pub tarball: Option<PathBuf>,
    /// `--oci-layout-path`.
    pub layout: Option<PathBuf>,
    /// Naming strategy.
    pub naming: Naming,
    /// Extra tags for registry pushes.
    pub tags: Vec<String>,
    /// The destination registry may be reached without verifying its
    /// certificate, or over plain HTTP (ko's `--insecure-registry`; see
    /// [`Destinations::insecure_registry`]).
    pub insecure: bool,
    /// Also write each published reference to this file (ko's `--image-refs`).
    pub image_refs: Option<PathBuf>,
    /// Push an SPDX SBOM beside each image in a registry (ko's `--sbom=spdx`).
    pub sbom: bool,
    /// Also write each image's SPDX SBOM to this directory (ko's `--sbom-dir`).
    pub sbom_dir: Option<PathBuf>,
    /// The KinD cluster for `kind.local` (`KIND_CLUSTER_NAME`; default `kind`).
    pub kind_cluster: Option<String>,
    /// The Minikube profile for `minikube.local` (`MINIKUBE_PROFILE`; default `minikube`).
    pub minikube_profile: Option<String>,
    /// Publish under exactly this reference instead of ko's naming
    /// (Skaffold's `$IMAGE`): pushed to its registry with `push`, else
    /// loaded into the Docker engine under that tag.
    pub exact: Option<String>,
}

impl Destinations {
    /// The registry (`host[:port]`) `--insecure-registry` names: the
    /// destination's, when images are pushed to one (ko applies it to
    /// `KO_DOCKER_REPO` only). Base images from other registries are never
    /// reached insecurely ([`crate::oci::client`]).
    pub fn insecure_registry(&self) -> Option<String> {
        if !self.insecure || !self.push {
            return None;
        }
        let to = match (&self.exact, &self.repo) {
            (Some(image), _) => image,
            (None, Some(repo)) if repo_kind(repo) == RepoKind::Registry => repo,
            _ => return None,
        };
        crate::oci::client::parse_reference(to).ok().map(|r| r.resolve_registry().to_string())
    }
}

/// What a `KO_DOCKER_REPO` value means.
#[derive(Debug, PartialEq, Eq)]
pub enum RepoKind {
    /// The local Docker engine.
    Daemon,
    /// KinD nodes.
    Kind,
    /// A Minikube cluster (`minikube image load`).
    Minikube,
    /// A registry.
    Registry,
}

/// Classifies a repo the way ko does (`ko.local`, `kind.local` prefixes).
pub fn repo_kind(repo: &str) -> RepoKind {
    let first = repo.split('/').next().unwrap_or(repo);
    match first {
        "ko.local" => RepoKind::Daemon,
        "kind.local" => RepoKind::Kind,
        "minikube.local" => RepoKind::Minikube,
        _ => RepoKind::Registry,
    }
}

/// Builds the publisher for the destinations.
pub fn publisher(dest: &Destinations, registry: &Registry) -> Result<Box<dyn Publish>, PublishError> {
    if dest.exact.is_some() && dest.image_refs.is_some() {
        return Err(PublishError::Destination("--image-refs does not apply to an exact image name".into()));
    }
    if let Some(image) = &dest.exact {
        return Ok(if dest.push {
            Box::new(RegistryPublisher::for_reference(registry.clone(), image)?)
        } else {
            Box::new(DaemonPublisher::with_tags(vec![image.clone()]))
        });
    }
    let mut all: Vec<Box<dyn Publish>> = Vec::new();
    if dest.push {
        match dest.repo.as_deref() {
            Some(repo) => match repo_kind(repo) {
                RepoKind::Daemon => {
                    all.push(Box::new(DaemonPublisher::new(repo.into(), dest.naming, dest.tags.clone())))
                }
                RepoKind::Kind => all.push(Box::new(KindPublisher::new(
                    repo.into(),
                    dest.naming,
                    dest.kind_cluster.clone().unwrap_or_else(|| super::kind::cluster_name(None)),
                ))),
                RepoKind::Minikube => all.push(Box::new(MinikubePublisher::new(
                    repo.into(),
                    dest.naming,
                    super::minikube::profile(dest.minikube_profile.clone()),
                    MinikubePublisher::find_program()?,
                ))),
                RepoKind::Registry => all.push(Box::new(RegistryPublisher::new(
                    registry.clone(),
                    repo.into(),
                    dest.naming,
                    dest.tags.clone(),
                    dest.sbom,
                ))),
            },
            None if dest.tarball.is_none() && dest.layout.is_none() => {
                return Err(PublishError::Destination(
                    "no destination: set KO_DOCKER_REPO or --repo (a registry such as 127.0.0.1:5000/me, or ko.local for the local Docker engine), or use --tarball / --oci-layout-path".into(),
                ))
            }
            None => {}
        }
    }
    if let Some(t) = &dest.tarball {
        all.push(Box::new(TarballPublisher::new(t.clone(), dest.repo.clone(), dest.naming)));
    }
    if let Some(l) = &dest.layout {
        all.push(Box::new(LayoutPublisher::new(l.clone(), dest.naming)));
    }
    if all.is_empty() {
        return Err(PublishError::Destination(
            "nothing to publish to: --push=false needs --tarball or --oci-layout-path".into(),
        ));
    }
    let mut one: Box<dyn Publish> = if all.len() == 1 { all.remove(0) } else { Box::new(Multi(all)) };
    if let Some(dir) = &dest.sbom_dir {
        one = Box::new(super::sbom_dir::SbomDir::create(one, dir)?);
    }
    Ok(match &dest.image_refs {
        Some(path) => Box::new(super::recorder::Recorder::create(one, path)?),
        None => one,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_kinds() {
        assert_eq!(repo_kind("ko.local"), RepoKind::Daemon);
        assert_eq!(repo_kind("ko.local/foo"), RepoKind::Daemon);
        assert_eq!(repo_kind("kind.local"), RepoKind::Kind);
        assert_eq!(repo_kind("minikube.local"), RepoKind::Minikube);
        assert_eq!(repo_kind("127.0.0.1:5000/me"), RepoKind::Registry);
    }
}
