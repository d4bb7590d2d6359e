//! Flags that choose the cluster, and the cluster commands `gohot apply`
//! and `gohot delete`.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use super::build::{BuildFlags, DevDebug};
use super::publish::PublishFlags;
use super::values::parse_duration;

/// Flags choosing the cluster.
#[derive(Debug, Args, Clone)]
pub struct KubeFlags {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current-context).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace for objects that name none (default: the context's, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Allow a context that is not a local cluster, by name; repeatable.
    /// Local ones need no allowing: a local tool's name (kind-*, k3d-*,
    /// minikube, docker-desktop, rancher-desktop, orbstack, colima) and an
    /// API server on this machine (loopback, its own addresses, its bridges).
    #[arg(long = "allow-context", value_name = "NAME")]
    pub allow_context: Vec<String>,
}

impl KubeFlags {
    /// The cluster connection settings.
    pub fn options(&self) -> crate::cluster::KubeOptions {
        crate::cluster::KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
            allow_contexts: self.allow_context.clone(),
        }
    }
}

/// `gohot apply`.
#[derive(Debug, Args)]
pub struct ApplyCmd {
    /// Build settings (default platforms: those of the cluster's nodes).
    #[command(flatten)]
    pub build: BuildFlags,
    /// ko's --debug (with --dev).
    #[command(flatten)]
    pub debug: DevDebug,
    /// Destination (default on a kind-* context: kind.local).
    #[command(flatten)]
    pub publish: PublishFlags,
    /// Cluster.
    #[command(flatten)]
    pub kube: KubeFlags,
    /// YAML or JSON files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Read the directories given with -f recursively (as ko and kubectl).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Builds to run at once.
    #[arg(short = 'j', long, default_value_t = 2)]
    pub jobs: usize,
    /// Wait for Deployments, StatefulSets and DaemonSets to be ready.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait for the rollout (`90s`, `5m`).
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `gohot delete`.
#[derive(Debug, Args)]
pub struct DeleteCmd {
    /// Cluster.
    #[command(flatten)]
    pub kube: KubeFlags,
    /// YAML or JSON files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Read the directories given with -f recursively (as ko and kubectl).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// The global --docker-host, which delete does not use: hidden from its
    /// help and refused (a flag that does nothing is not taken in silence).
    #[arg(long = "docker-host", id = "docker_host", hide = true, value_name = "HOST", value_parser = no_docker_engine)]
    pub docker_host: Option<String>,
}

fn no_docker_engine(_: &str) -> Result<String, String> {
    Err("gohot delete uses no Docker engine (it talks to the cluster only): drop --docker-host".into())
}
