//! The command line: clap definitions, normalisation into checked settings,
//! and rendering errors for people. Handlers here validate, call the library,
//! print — no work of their own.
//!
//! Exit codes: 0 success; 1 the command failed (build, publish, resolve…);
//! 2 usage error (bad flags or arguments); 130 interrupted (Ctrl-C).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::build::base::BaseStore;
use crate::build::go::{GoError, GoToolchain};
use crate::build::{Build, BuildError, BuildOptions, GoBuilder};
use crate::config::KoConfig;
use crate::publish::select::{publisher, Destinations};
use crate::publish::Naming;
use crate::registry::Registry;

/// gohot: build Go images the way ko does, and hot-reload them in dev mode.
#[derive(Debug, Parser)]
#[command(name = "gohot", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). GOHOT_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images for Go main packages and publish them; prints one
    /// reference per package on stdout.
    Build(BuildCmd),
    /// Build every `ko://` image in YAML manifests and print the manifests
    /// with digests in their place.
    Resolve(ResolveCmd),
    /// Resolve manifests, server-side apply them to the cluster, and wait
    /// for the rollout.
    Apply(ApplyCmd),
    /// Delete what manifests name from the cluster (no build needed).
    Delete(DeleteCmd),
}

/// Flags shared by commands that build.
#[derive(Debug, Args, Clone)]
pub struct BuildFlags {
    /// Platforms to build, comma-separated (linux/amd64,linux/arm64); more
    /// than one publishes an image index. Default: .ko.yaml defaultPlatforms, else the host's.
    #[arg(long, value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Base image (overrides .ko.yaml); `scratch` is the built-in empty base.
    #[arg(long)]
    pub base: Option<String>,
    /// Re-resolve base image tags against the registry instead of the cache.
    #[arg(long)]
    pub pull: bool,
    /// Build the dev-mode variant (writable /ko-app for hot reload).
    #[arg(long)]
    pub dev: bool,
}

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
    /// Tags to push (default: latest).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Registries to reach over plain HTTP (loopback ones always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
}

/// `gohot build`.
#[derive(Debug, Args)]
pub struct BuildCmd {
    /// Build settings.
    #[command(flatten)]
    pub build: BuildFlags,
    /// Destination.
    #[command(flatten)]
    pub publish: PublishFlags,
    /// Go main packages (./cmd/app or import paths; a ko:// prefix is accepted).
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// `gohot resolve`.
#[derive(Debug, Args)]
pub struct ResolveCmd {
    /// Build settings.
    #[command(flatten)]
    pub build: BuildFlags,
    /// Destination.
    #[command(flatten)]
    pub publish: PublishFlags,
    /// YAML files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Builds to run at once.
    #[arg(short = 'j', long, default_value_t = 2)]
    pub jobs: usize,
}

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
    /// Local ones (kind-*, minikube, docker-desktop, k3d-*, loopback API servers) need no allowing.
    #[arg(long = "allow-context", value_name = "NAME")]
    pub allow_context: Vec<String>,
}

impl KubeFlags {
    fn options(&self) -> crate::cluster::KubeOptions {
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
    /// Destination (default on a kind-* context: kind.local).
    #[command(flatten)]
    pub publish: PublishFlags,
    /// Cluster.
    #[command(flatten)]
    pub kube: KubeFlags,
    /// YAML files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
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
    /// YAML files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
}

/// `90s`, `5m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 90s, 5m or 1h");
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(secs))
}

impl PublishFlags {
    fn destinations(&self) -> Destinations {
        let naming = if self.base_import_paths {
            Naming::Base
        } else if self.bare {
            Naming::Bare
        } else if self.preserve_import_paths {
            Naming::Preserve
        } else {
            Naming::Md5
        };
        Destinations {
            repo: self.repo.clone().filter(|r| !r.is_empty()),
            push: self.push,
            tarball: self.tarball.clone(),
            layout: self.oci_layout_path.clone(),
            naming,
            tags: self.tags.clone(),
            insecure: self.insecure_registry.clone(),
            kind_cluster: std::env::var("KIND_CLUSTER_NAME").ok().filter(|s| !s.is_empty()),
            minikube_profile: std::env::var("MINIKUBE_PROFILE").ok().filter(|s| !s.is_empty()),
        }
    }
}

/// Builds the Go builder from flags: toolchain, `.ko.yaml`, base store.
fn make_builder(flags: &BuildFlags, registry: &Registry) -> Result<GoBuilder> {
    let go = GoToolchain::find()?;
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let config = KoConfig::load(&workdir)?;
    let platforms =
        if flags.platform.is_empty() { Vec::new() } else { crate::platform::parse_list(&flags.platform.join(","))? };
    let cache_root = crate::cache::root();
    let bases = BaseStore::new(crate::cache::base_dir(&cache_root), registry.clone(), flags.pull);
    Ok(GoBuilder::new(
        go,
        config,
        bases,
        BuildOptions { workdir, platforms, base: flags.base.clone(), dev: flags.dev, cache_root },
    ))
}

async fn run_build(cmd: BuildCmd) -> Result<()> {
    let dest = cmd.publish.destinations();
    let registry = Registry::new(&dest.insecure)?;
    let builder = make_builder(&cmd.build, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    for pkg in &cmd.packages {
        let pkg = pkg.strip_prefix(crate::resolve::KO_PREFIX).unwrap_or(pkg);
        let built = builder.build(pkg).await?;
        let reference = publisher.publish(&built).await?;
        print_stdout(&format!("{reference}\n"))?;
    }
    Ok(())
}

async fn run_resolve(cmd: ResolveCmd) -> Result<()> {
    let mut files = Vec::new();
    for f in &cmd.files {
        files.extend(crate::resolve::read_manifests(f)?);
    }
    let dest = cmd.publish.destinations();
    let registry = Registry::new(&dest.insecure)?;
    let builder = make_builder(&cmd.build, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let refs = crate::resolve::build_refs(&files, &builder, publisher.as_ref(), cmd.jobs).await?;
    let images: HashMap<String, String> = refs.iter().map(|(k, v)| (k.clone(), v.image.clone())).collect();
    print_stdout(&crate::resolve::render(&files, &images, &|_| false))?;
    Ok(())
}

/// Reads every -f path.
fn read_all_manifests(paths: &[PathBuf]) -> Result<Vec<crate::resolve::ManifestFile>> {
    let mut files = Vec::new();
    for f in paths {
        files.extend(crate::resolve::read_manifests(f)?);
    }
    Ok(files)
}

/// Connects to the cluster the flags name, refusing non-local contexts not
/// allowed by name, and checks the API server answers.
async fn connect_cluster(flags: &KubeFlags) -> Result<crate::cluster::Cluster> {
    let mut opts = flags.options();
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    opts.allow_contexts.extend(crate::cluster::context::allowed_from_config(&workdir)?);
    let cluster = crate::cluster::connect(&opts).await?;
    let version = cluster.ping().await?;
    tracing::info!("context {} ({}, Kubernetes {version})", cluster.context.name, cluster.context.server);
    Ok(cluster)
}

async fn run_apply(mut cmd: ApplyCmd) -> Result<()> {
    use crate::cluster::{deploy, nodes, rollout};
    let files = read_all_manifests(&cmd.files)?;
    let refs = deploy::ko_refs(&files);
    if refs.is_empty() {
        tracing::warn!("no ko:// image references in the manifests: applying them as they are");
    }
    let cluster = connect_cluster(&cmd.kube).await?;
    if cmd.build.platform.is_empty() && !refs.is_empty() {
        let found = nodes::build_platforms(&nodes::list(&cluster).await?, &Default::default());
        tracing::info!(
            "building for the cluster's nodes: {}",
            found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
        cmd.build.platform = found.iter().map(ToString::to_string).collect();
    }
    let mut dest = cmd.publish.destinations();
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
    let registry = Registry::new(&dest.insecure)?;
    let builder = make_builder(&cmd.build, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let opts = deploy::DeployOptions {
        dev: cmd.build.dev,
        jobs: cmd.jobs,
        wait: cmd.wait.then_some(rollout::WaitOptions { timeout: cmd.timeout, ..Default::default() }),
    };
    let progress = |m: &str| tracing::info!("waiting: {m}");
    let deployed = deploy::deploy(&cluster, &files, &builder, publisher.as_ref(), &opts, &progress).await?;
    for a in &deployed.applied {
        eprintln!("applied {}", a.object);
    }
    if cmd.wait && !deployed.workloads.is_empty() {
        eprintln!("ready: {}", deployed.workloads.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

async fn run_delete(cmd: DeleteCmd) -> Result<()> {
    use crate::cluster::{apply, deploy};
    let files = read_all_manifests(&cmd.files)?;
    let docs = deploy::raw_docs(&files)?;
    let cluster = connect_cluster(&cmd.kube).await?;
    for d in apply::delete(&cluster, &docs).await? {
        match d {
            apply::Deleted::Deleted(o) => eprintln!("deleted {o}"),
            apply::Deleted::Absent(o) => eprintln!("{o} was not there"),
        }
    }
    Ok(())
}

/// Writes data to stdout; a closed pipe (`gohot build | head`) is not an error.
fn print_stdout(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "gohot=info",
        1 => "gohot=debug",
        _ => "gohot=trace,oci_client=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GOHOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Prints an error for people: compiler output verbatim first, then the
/// error and its causes.
pub fn report(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    if let Some(out) = compiler_output(err) {
        let _ = stderr.write_all(out.as_bytes());
    }
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !err.to_string().contains(&text) {
            let _ = writeln!(stderr, "  caused by: {text}");
        }
    }
}

/// The compiler's own output, if the error is a failed `go build`.
pub fn compiler_output(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|cause| {
        let go = cause.downcast_ref::<GoError>().or_else(|| match cause.downcast_ref::<BuildError>() {
            Some(BuildError::Go(g)) => Some(g),
            _ => None,
        });
        match go {
            Some(GoError::Build { stderr, .. }) => Some(stderr.as_str()),
            _ => None,
        }
    })
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli.command) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match result {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            report(&e);
            ExitCode::FAILURE
        }
        None => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
    }
}

/// Runs one command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Build(c) => run_build(c).await,
        Command::Resolve(c) => run_resolve(c).await,
        Command::Apply(c) => run_apply(c).await,
        Command::Delete(c) => run_delete(c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("3m").unwrap().as_secs(), 180);
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        assert!(parse_duration("3 days").is_err());
    }
}
