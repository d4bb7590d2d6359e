//! Flags that choose where images go.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use super::values::parse_insecure;
use crate::publish::select::Destinations;
use crate::publish::Naming;

/// Flags choosing where images go.
#[derive(Debug, Args, Clone)]
pub struct PublishFlags {
    /// Repository to publish to (default: $KO_DOCKER_REPO). `ko.local` loads
    /// into the local Docker engine.
    #[arg(long, env = "KO_DOCKER_REPO")]
    pub repo: Option<String>,
    /// Push to --repo (false: only write --tarball / --oci-layout-path).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub push: bool,
    /// Also write a `docker load`-able tarball here.
    #[arg(long)]
    pub tarball: Option<PathBuf>,
    /// Also write into this OCI image layout directory.
    #[arg(long)]
    pub oci_layout_path: Option<PathBuf>,
    /// Name repositories <repo>/<last element of the import path> (ko's -B).
    #[arg(short = 'B', long, conflicts_with_all = ["bare", "preserve_import_paths"])]
    pub base_import_paths: bool,
    /// Use the repository as is, with no suffix.
    #[arg(long, conflicts_with = "preserve_import_paths")]
    pub bare: bool,
    /// Name repositories <repo>/<full import path>.
    #[arg(short = 'P', long)]
    pub preserve_import_paths: bool,
    /// Tags to push, comma-separated or repeated (default: latest); on
    /// ko.local, added beside the digest tag, as ko does.
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// The destination registry (KO_DOCKER_REPO's) may have a certificate
    /// that is not verified, or speak plain HTTP: HTTPS without verification
    /// is tried first, then HTTP, as ko's --insecure-registry. Other
    /// registries (base images) are always verified HTTPS; loopback ones
    /// fall back to HTTP without the flag.
    #[arg(long = "insecure-registry", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", value_parser = parse_insecure)]
    pub insecure_registry: Option<bool>,
    /// Load into the local Docker engine (ko's -L: KO_DOCKER_REPO=ko.local).
    #[arg(short = 'L', long, conflicts_with = "repo")]
    pub local: bool,
    /// Also write each published reference, one per line, to FILE (ko's --image-refs).
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
    /// SBOM to push beside each image in a registry, as ko: `spdx` (an SPDX
    /// 2.3 document from the binary's build information, under the tag
    /// `sha256-<digest hex>.sbom`) or `none`.
    #[arg(long, value_enum, default_value_t = Sbom::Spdx)]
    pub sbom: Sbom,
    /// Also write each image's SBOM to DIR as `<app>.spdx.json` (one per
    /// platform, `<app>-<os>-<arch>.spdx.json`, when there are several), as
    /// ko's --sbom-dir; whatever the destination.
    #[arg(long, value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
}

/// `--sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sbom {
    /// No SBOM.
    None,
    /// An SPDX 2.3 JSON document.
    Spdx,
}

impl PublishFlags {
    /// Where images go, as the publisher factory takes it.
    pub fn destinations(&self) -> Destinations {
        let naming = if self.base_import_paths {
            Naming::Base
        } else if self.bare {
            Naming::Bare
        } else if self.preserve_import_paths {
            Naming::Preserve
        } else {
            Naming::Md5
        };
        let repo = if self.local { Some("ko.local".to_string()) } else { self.repo.clone() };
        Destinations {
            repo: repo.filter(|r| !r.is_empty()),
            push: self.push,
            tarball: self.tarball.clone(),
            layout: self.oci_layout_path.clone(),
            naming,
            tags: self.tags.clone(),
            insecure: self.insecure_registry.unwrap_or(false),
            image_refs: self.image_refs.clone(),
            sbom: self.sbom == Sbom::Spdx,
            sbom_dir: self.sbom_dir.clone().filter(|_| self.sbom == Sbom::Spdx),
            kind_cluster: std::env::var("KIND_CLUSTER_NAME").ok().filter(|s| !s.is_empty()),
            minikube_profile: std::env::var("MINIKUBE_PROFILE").ok().filter(|s| !s.is_empty()),
            exact: None,
        }
    }
}
