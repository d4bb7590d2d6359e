//! One handler per command: each validates, builds what the library needs
//! with the factories here (builder, publisher, cluster), calls it, and
//! prints. No work of their own.

pub mod apply;
pub mod build;
pub mod dev;
pub mod skaffold;
pub mod syncback;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::args::{BuildFlags, KubeFlags};
use crate::builder::base::BaseStore;
use crate::builder::go::GoToolchain;
use crate::builder::{Build, BuildOptions, GoBuilder};
use crate::config::ko::KoConfig;
use crate::oci::client::Registry;
use crate::publish::select::Destinations;

/// The builder the flags ask for: the production Go builder, or (`--dev`)
/// the dev image's wrapper around it.
pub(crate) enum Builder {
    Prod(GoBuilder),
    Dev(crate::devimage::DevBuilder),
}

impl Builder {
    pub(crate) fn build(&self) -> &dyn Build {
        match self {
            Builder::Prod(b) => b,
            Builder::Dev(d) => d,
        }
    }
}

/// Builds the builder from flags: toolchain, `.ko.yaml`, base store.
pub(crate) fn make_builder(flags: &BuildFlags, registry: &Registry) -> Result<Builder> {
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let platforms = if flags.platform.is_empty() || flags.all_platforms() {
        Vec::new()
    } else {
        crate::platform::parse_list(&flags.platform.join(","))?
    };
    builder_in(flags, registry, workdir, platforms)
}

/// [`make_builder`], with delve in the dev image when `delve` is given
/// (`--dev --debug`).
pub(crate) fn builder_with(
    flags: &BuildFlags,
    delve: Option<crate::devimage::delve::DelveSource>,
    registry: &Registry,
) -> Result<Builder> {
    match delve {
        Some(d) => Ok(Builder::Dev(make_dev_builder(flags, registry)?.with_delve(d))),
        None => make_builder(flags, registry),
    }
}

/// The dev image's builder from flags (whatever `--dev` says).
pub(crate) fn make_dev_builder(flags: &BuildFlags, registry: &Registry) -> Result<crate::devimage::DevBuilder> {
    let mut flags = flags.clone();
    flags.dev = true;
    match make_builder(&flags, registry)? {
        Builder::Dev(d) => Ok(d),
        Builder::Prod(b) => Ok(crate::devimage::DevBuilder::new(b, dev_tools(&flags))),
    }
}

pub(crate) fn dev_tools(flags: &BuildFlags) -> crate::devimage::DevTools {
    crate::devimage::DevTools {
        watchexec: flags.watchexec.clone(),
        watchexec_version: flags.watchexec_version.clone(),
        watchexec_base_url: flags.watchexec_url.clone(),
        debug: flags.dwarf,
        delve: None,
    }
}

/// The builder for packages relative to `workdir`, for `platforms`
/// (empty: `.ko.yaml`'s, else the host's).
pub(crate) fn builder_in(
    flags: &BuildFlags,
    registry: &Registry,
    workdir: PathBuf,
    platforms: Vec<crate::platform::Platform>,
) -> Result<Builder> {
    let go = GoToolchain::find()?;
    let config = KoConfig::load(&workdir)?;
    let cache_root = crate::cache::root();
    let bases = BaseStore::new(crate::cache::base_dir(&cache_root), registry.clone(), flags.pull);
    let go = GoBuilder::new(
        go,
        config,
        bases,
        BuildOptions {
            workdir,
            platforms: platforms.clone(),
            base: flags.base.clone(),
            cache_root,
            labels: flags.image_label.clone(),
            user: flags.image_user.clone(),
            // `all` applies unless the caller fixed the platforms ($PLATFORMS, the nodes').
            all_platforms: flags.all_platforms() && platforms.is_empty(),
        },
    );
    Ok(if flags.dev { Builder::Dev(crate::devimage::DevBuilder::new(go, dev_tools(flags))) } else { Builder::Prod(go) })
}

/// Reads every -f path (directories' subdirectories too with `recursive`, -R).
pub(crate) fn read_all_manifests(paths: &[PathBuf], recursive: bool) -> Result<Vec<crate::resolve::ManifestFile>> {
    let mut files = Vec::new();
    for f in paths {
        files.extend(crate::resolve::read_manifests(f, recursive)?);
    }
    Ok(files)
}

/// Connects to the cluster the flags name, refusing non-local contexts not
/// allowed by name, and checks the API server answers.
pub(crate) async fn connect_cluster(flags: &KubeFlags) -> Result<crate::cluster::Cluster> {
    let mut opts = flags.options();
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    opts.allow_contexts.extend(crate::config::gohot::GohotConfig::load(&workdir)?.allow_contexts);
    let cluster = crate::cluster::connect(&opts).await?;
    let version = cluster.ping().await?;
    tracing::info!("context {} ({}, Kubernetes {version})", cluster.context.name, cluster.context.server);
    Ok(cluster)
}

/// Where images go for a cluster: as given, else loaded straight into the
/// nodes on KinD (kind.local) and minikube (minikube.local).
pub(crate) fn cluster_destinations(cluster: &crate::cluster::Cluster, mut dest: Destinations) -> Destinations {
    if dest.repo.is_none() {
        if let Some(kind) = crate::cluster::context::kind_cluster(&cluster.context.name) {
            tracing::info!("KO_DOCKER_REPO is not set: loading images into KinD cluster {kind} (kind.local)");
            dest.repo = Some("kind.local".into());
            dest.kind_cluster.get_or_insert_with(|| kind.to_string());
        } else if crate::cluster::context::is_minikube(&cluster.context) && which::which("minikube").is_ok() {
            tracing::info!(
                "KO_DOCKER_REPO is not set: loading images into minikube profile {} (minikube.local)",
                cluster.context.name
            );
            dest.repo = Some("minikube.local".into());
            dest.minikube_profile.get_or_insert_with(|| cluster.context.name.clone());
        }
    }
    dest
}

/// `gohot completion SHELL`: clap_complete's script for the command line as defined.
pub(crate) fn completion(cmd: super::args::CompletionCmd) -> Result<()> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(cmd.shell, &mut super::args::Cli::command(), "gohot", &mut script);
    print_stdout(&String::from_utf8_lossy(&script))
}

/// Writes data to stdout; a closed pipe (`gohot build | head`) is not an error.
pub(crate) fn print_stdout(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}
