//! Skaffold's side: `gohot skaffold build | deps | sync`, and `gohot syncmap`.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::build::{BuildFlags, DebugRefused};
use super::kube::KubeFlags;
use super::values::parse_insecure;

/// `gohot skaffold …`.
#[derive(Debug, Subcommand)]
pub enum SkaffoldCmd {
    /// Build $IMAGE per Skaffold's custom-build contract (IMAGE, PUSH_IMAGE,
    /// BUILD_CONTEXT, PLATFORMS): push it when PUSH_IMAGE=true, else load it
    /// into the local Docker engine under exactly that tag.
    Build(SkaffoldBuildCmd),
    /// Print the files the image depends on as a JSON array (for Skaffold's
    /// custom.dependencies.command).
    Deps(SkaffoldDepsCmd),
    /// A Skaffold sync hook (`sync.hooks.before`, host): rebuild the binary
    /// on the host and put it into every container running $SKAFFOLD_IMAGE
    /// through gohot's atomic way in (reads Skaffold's SKAFFOLD_* hook
    /// variables).
    Sync(SkaffoldSyncCmd),
}

/// `gohot skaffold sync`.
#[derive(Debug, Args)]
pub struct SkaffoldSyncCmd {
    /// Go main package, relative to $SKAFFOLD_BUILD_CONTEXT.
    #[arg(long, default_value = ".")]
    pub package: String,
    /// Build settings (always a dev build, as `gohot skaffold build --dev`).
    #[command(flatten)]
    pub build: BuildFlags,
    /// ko's --debug, refused here.
    #[command(flatten)]
    pub ko_debug: DebugRefused,
    /// The cluster ($SKAFFOLD_KUBE_CONTEXT when --context is not given).
    #[command(flatten)]
    pub kube: KubeFlags,
    /// How long to wait for watchexec to start the new binary.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub restart_timeout: u64,
}

/// `gohot skaffold build`.
#[derive(Debug, Args)]
pub struct SkaffoldBuildCmd {
    /// Go main package, relative to $BUILD_CONTEXT.
    #[arg(long, default_value = ".")]
    pub package: String,
    /// Build settings (--platform is used when $PLATFORMS is unset or empty;
    /// $PLATFORMS, which Skaffold sets, wins over it).
    #[command(flatten)]
    pub build: BuildFlags,
    /// ko's --debug, refused here.
    #[command(flatten)]
    pub ko_debug: DebugRefused,
    /// The destination registry (KO_DOCKER_REPO's) may have a certificate
    /// that is not verified, or speak plain HTTP: HTTPS without verification
    /// is tried first, then HTTP, as ko's --insecure-registry. Other
    /// registries (base images) are always verified HTTPS; loopback ones
    /// fall back to HTTP without the flag.
    #[arg(long = "insecure-registry", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", value_parser = parse_insecure)]
    pub insecure_registry: Option<bool>,
}

/// `gohot skaffold deps`.
#[derive(Debug, Args)]
pub struct SkaffoldDepsCmd {
    /// Go main package, relative to --context.
    #[arg(long, default_value = ".")]
    pub package: String,
    /// The artifact's context: the package is resolved there and paths are
    /// printed relative to it, as Skaffold reads them. Skaffold runs this
    /// command in its own working directory, not in the context, so set this
    /// to the artifact's `context` when it is not `.`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub context: PathBuf,
}

/// `gohot syncmap`.
#[derive(Debug, Args)]
pub struct SyncmapCmd {
    /// The Dockerfile.
    #[arg(long)]
    pub dockerfile: PathBuf,
    /// The build context (default: the current directory).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// ARG values (NAME=VALUE, or NAME to take it from the environment); repeatable.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
}
