//! The command line: clap definitions, normalisation into checked settings,
//! and rendering errors for people. Handlers here validate, call the library,
//! print — no work of their own.
//!
//! Exit codes: 0 success; 1 the command failed (build, publish, resolve…);
//! 2 usage error (bad flags or arguments); 130 interrupted (Ctrl-C, SIGINT);
//! 143 terminated (SIGTERM). `gohot dev` cleans up before exiting 130/143.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::build::base::BaseStore;
use crate::build::go::{GoError, GoToolchain};
use crate::build::{Build, BuildError, BuildOptions, GoBuilder};
use crate::config::ko::KoConfig;
use crate::oci::client::Registry;
use crate::publish::select::{publisher, Destinations};
use crate::publish::Naming;

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
    /// Run the app and hot-reload it on every save: rebuild only the binary,
    /// copy it into the running container, watchexec restarts it.
    Dev(DevCmd),
    /// Copy files from a running container back into a local directory,
    /// transferring only what changed.
    Syncback(SyncbackCmd),
    /// Skaffold integration: gohot as a custom builder (`build`) and its
    /// dependency list (`deps`).
    #[command(subcommand)]
    Skaffold(SkaffoldCmd),
    /// Print the sync map inferred from a Dockerfile as JSON: context file →
    /// every absolute path it is copied to.
    Syncmap(SyncmapCmd),
    /// Resolve manifests, server-side apply them to the cluster, and wait
    /// for the rollout.
    Apply(ApplyCmd),
    /// Delete what manifests name from the cluster (no build needed).
    Delete(DeleteCmd),
}

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
}

/// `gohot skaffold build`.
#[derive(Debug, Args)]
pub struct SkaffoldBuildCmd {
    /// Go main package, relative to $BUILD_CONTEXT.
    #[arg(long, default_value = ".")]
    pub package: String,
    /// Build settings ($PLATFORMS wins over --platform).
    #[command(flatten)]
    pub build: BuildFlags,
    /// Also copy the built binary (host platform, else the first) to
    /// DIR/<name>, DIR relative to $BUILD_CONTEXT, for a sync.manual rule.
    #[arg(long, value_name = "DIR")]
    pub sync_binary: Option<PathBuf>,
    /// Registries to reach over plain HTTP (loopback ones always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
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
    /// Binary-sync mode, to pair with `skaffold build --sync-binary DIR`:
    /// list DIR/<name> instead of the Go sources, so that a new binary there
    /// is synced by Skaffold rather than a Go edit forcing an image rebuild.
    #[arg(long, value_name = "DIR")]
    pub sync_binary: Option<PathBuf>,
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

/// `gohot dev`.
#[derive(Debug, Args)]
pub struct DevCmd {
    /// Build settings.
    #[command(flatten)]
    pub build: BuildFlags,
    /// Go main package to develop (./cmd/app).
    pub package: String,
    /// Kubernetes manifests to deploy (files or directories); the app's
    /// container must use `image: ko://<its import path>`.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Where the app runs (default: kube with -f, else docker).
    #[arg(long, value_enum)]
    pub target: Option<TargetKind>,
    /// Destination for the dev image on a cluster (default on kind-*: kind.local).
    #[command(flatten)]
    pub publish: PublishFlags,
    /// Cluster.
    #[command(flatten)]
    pub kube: KubeFlags,
    /// Publish a container port: [IP:]HOST:CONTAINER (IP defaults to 127.0.0.1).
    #[arg(short = 'p', long = "publish")]
    pub ports: Vec<String>,
    /// Environment for the app: KEY=VALUE.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Container name (default gohot-<name>).
    #[arg(long)]
    pub name: Option<String>,
    /// How to know the new process serves: an http:// URL, tcp:PORT, or
    /// `none` (only that it started). Default: HTTP on the first -p port.
    #[arg(long)]
    pub probe: Option<String>,
    /// Quiet time after a change before building, in milliseconds.
    #[arg(long, default_value_t = 15)]
    pub debounce_ms: u64,
    /// One JSON event per line on stdout instead of status lines on stderr.
    #[arg(long)]
    pub json: bool,
    /// Keep the container when gohot stops.
    #[arg(long)]
    pub keep: bool,
    /// Kubernetes: forward LOCAL:POD_PORT from 127.0.0.1 to a pod of the app
    /// (and probe the app there after each reload).
    #[arg(long, value_name = "LOCAL:POD_PORT")]
    pub port_forward: Option<String>,
    /// Arguments for the app (after --).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Where `gohot dev` runs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// The local Docker engine.
    Docker,
    /// A Kubernetes cluster.
    Kube,
}

/// Flags shared by commands that build.
#[derive(Debug, Args, Clone)]
pub struct BuildFlags {
    /// Platforms to build, comma-separated (linux/amd64,linux/arm64); more
    /// than one publishes an image index. Default: .ko.yaml defaultPlatforms, else the host's.
    #[arg(long, value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Base image (overrides .ko.yaml and KO_DEFAULTBASEIMAGE). Built in:
    /// `static` (the default: CA certificates, tzdata, runs as 65532) and
    /// `scratch` (empty).
    #[arg(long)]
    pub base: Option<String>,
    /// Re-resolve base image tags against the registry instead of the cache.
    #[arg(long)]
    pub pull: bool,
    /// Build the dev-mode variant (watchexec and the way-in helper inside,
    /// writable /ko-app, linked with -s -w).
    #[arg(long)]
    pub dev: bool,
    /// Dev mode: use this local watchexec binary instead of downloading one.
    #[arg(long, env = "GOHOT_WATCHEXEC")]
    pub watchexec: Option<PathBuf>,
    /// Dev mode: watchexec version to download.
    #[arg(long)]
    pub watchexec_version: Option<String>,
    /// Dev mode: base URL of watchexec release files (a mirror); `{version}` is substituted.
    #[arg(long, env = "GOHOT_WATCHEXEC_URL")]
    pub watchexec_url: Option<String>,
    /// Dev mode: keep DWARF so a debugger can attach (bigger binaries, slower reloads).
    #[arg(long)]
    pub debug: bool,
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

/// `gohot syncback`.
///
/// Exit codes: 0 the local directory matches the container (excluded and
/// refused entries aside); 1 an error, or conflicts were left (local
/// changes kept; `--force` overwrites them).
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 in sync (excluded and refused entries aside); 1 error, or conflicts left \
(local changes kept; --force overwrites them); 2 usage error.")]
pub struct SyncbackCmd {
    /// TARGET:REMOTE_DIR — a Docker container (`NAME` or `docker:NAME`),
    /// `pod/NAME` or `deploy/NAME`, then the absolute directory in it.
    pub source: String,
    /// Local directory to bring the files into (created if missing).
    pub local_dir: PathBuf,
    /// For pods: the container to read from (default: the pod's first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Cluster (for pod/NAME and deploy/NAME).
    #[command(flatten)]
    pub kube: KubeFlags,
    /// Delete local files the container no longer has (only files syncback
    /// wrote and nobody changed since, unless --force).
    #[arg(long)]
    pub delete: bool,
    /// Overwrite (or delete) local changes instead of reporting conflicts.
    #[arg(long)]
    pub force: bool,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep going: sync again whenever the container's files change.
    #[arg(long)]
    pub watch: bool,
    /// How often --watch looks at the container (e.g. 2s, 500ms, 1m).
    #[arg(long, default_value = "2s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Exclude paths (gitignore syntax), repeatable; LOCAL_DIR/.gohotignore
    /// is read too.
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
}

/// `2s`, `500ms`, `1m`, or plain seconds.
fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid interval {s:?}: use e.g. 2s, 500ms or 1m");
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(0.05..=86_400.0).contains(&secs) {
        return Err(format!("interval {s:?} out of range (50ms to 24h)"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

async fn run_syncback(cmd: SyncbackCmd) -> Result<()> {
    use crate::syncback::{plan::state_path, Options, SourceSpec, Syncback, TargetRef};
    let spec: SourceSpec = cmd.source.parse()?;
    let mut excludes = cmd.exclude.clone();
    let ignore_file = cmd.local_dir.join(".gohotignore");
    if let Ok(text) = std::fs::read_to_string(&ignore_file) {
        // The ignore file is the developer's, never the container's to replace or delete.
        excludes.push("/.gohotignore".into());
        excludes.extend(text.lines().map(str::to_string));
    }
    let target: Box<dyn crate::target::Target> = match (&spec.target, spec.target.named()) {
        (_, Some(named)) => {
            let cluster = connect_cluster(&cmd.kube).await?;
            let namespace = cmd.kube.namespace.clone().unwrap_or_else(|| cluster.context.namespace.clone());
            Box::new(crate::target::kube::KubeTarget::one_pod(cluster, namespace, named, cmd.container.clone()))
        }
        (TargetRef::Docker(name), None) | (TargetRef::Pod(name) | TargetRef::Deployment(name), None) => {
            let docker = crate::docker::connect().await?;
            Box::new(crate::target::docker::ExistingContainer::new(docker, name))
        }
    };
    if !cmd.dry_run {
        std::fs::create_dir_all(&cmd.local_dir)
            .with_context(|| format!("cannot create {}", cmd.local_dir.display()))?;
    }
    let local = std::fs::canonicalize(&cmd.local_dir)
        .or_else(|_| std::path::absolute(&cmd.local_dir))
        .with_context(|| format!("cannot resolve {}", cmd.local_dir.display()))?;
    let opts = Options {
        delete: cmd.delete,
        force: cmd.force,
        dry_run: cmd.dry_run,
        excludes,
        source: spec.target.to_string(),
        ..Default::default()
    };
    let state = state_path(&crate::cache::root(), &local);
    let mut sb = Syncback::new(target.as_ref(), &spec.remote_dir, &local, state, opts)?;
    let verbose = tracing::enabled!(tracing::Level::DEBUG);
    let print = |r: &crate::syncback::Report| {
        if r.dry_run || verbose {
            for line in r.details() {
                eprintln!("  {line}");
            }
        }
        eprintln!("syncback {}:{} → {}: {r}", r.replica, spec.remote_dir, cmd.local_dir.display());
    };
    if cmd.watch {
        eprintln!("watching {}:{} every {:?} (Ctrl-C to stop)", spec.target, spec.remote_dir, cmd.interval);
        sb.watch(cmd.interval, |outcome| {
            match outcome {
                Ok(r) => print(r),
                Err(e) => eprintln!("syncback: {e}"),
            }
            std::ops::ControlFlow::Continue(())
        })
        .await?;
        return Ok(());
    }
    let replica = sb.replica().await?;
    let report = sb.round(&replica).await?;
    print(&report);
    if report.has_conflicts() {
        let n = report.conflicts.len();
        anyhow::bail!("{n} conflict{} left (local changes kept; --force to overwrite)", if n == 1 { "" } else { "s" });
    }
    Ok(())
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
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let platforms =
        if flags.platform.is_empty() { Vec::new() } else { crate::platform::parse_list(&flags.platform.join(","))? };
    builder_in(flags, registry, workdir, platforms)
}

/// The Go builder for packages relative to `workdir`, for `platforms`
/// (empty: `.ko.yaml`'s, else the host's).
fn builder_in(
    flags: &BuildFlags,
    registry: &Registry,
    workdir: PathBuf,
    platforms: Vec<crate::platform::Platform>,
) -> Result<GoBuilder> {
    let go = GoToolchain::find()?;
    let config = KoConfig::load(&workdir)?;
    let cache_root = crate::cache::root();
    let bases = BaseStore::new(crate::cache::base_dir(&cache_root), registry.clone(), flags.pull);
    let dev_tools = crate::devimage::DevTools {
        watchexec: flags.watchexec.clone(),
        watchexec_version: flags.watchexec_version.clone(),
        watchexec_base_url: flags.watchexec_url.clone(),
        debug: flags.debug,
    };
    Ok(GoBuilder::new(
        go,
        config,
        bases,
        BuildOptions { workdir, platforms, base: flags.base.clone(), dev: flags.dev, dev_tools, cache_root },
    ))
}

async fn run_dev(cmd: DevCmd) -> Result<()> {
    use crate::devloop::{docker, events::DevEvent, LoopOptions, Probe};
    use crate::target::docker::PortMapping;
    let target = cmd.target.unwrap_or(if cmd.files.is_empty() { TargetKind::Docker } else { TargetKind::Kube });
    if target == TargetKind::Docker && !cmd.files.is_empty() {
        anyhow::bail!("-f manifests are for --target kube; the Docker target runs the package itself");
    }
    let ports: Vec<PortMapping> =
        cmd.ports.iter().map(|p| p.parse::<PortMapping>().map_err(anyhow::Error::msg)).collect::<Result<_>>()?;
    let probe = match cmd.probe.as_deref() {
        Some("none") => Probe::Started,
        Some(p) if p.starts_with("http://") || p.starts_with("https://") => Probe::Http(p.into()),
        Some(p) => match p.strip_prefix("tcp:").and_then(|port| port.parse::<u16>().ok()) {
            Some(port) => Probe::Tcp(([127, 0, 0, 1], port).into()),
            None => anyhow::bail!("invalid --probe {p:?}: use an http:// URL, tcp:PORT or none"),
        },
        None => match ports.first() {
            Some(p) if target == TargetKind::Docker => Probe::Http(format!("http://127.0.0.1:{}/", p.host_port)),
            _ => Probe::Started,
        },
    };
    let json = cmd.json;
    let events = docker::sink(move |e: DevEvent| {
        // With --json everything is an event, the app's log lines included.
        if json {
            let _ = print_stdout(&format!("{}\n", serde_json::to_string(&e).unwrap_or_default()));
        } else if let Some(line) = e.human() {
            eprintln!("{line}");
        }
    });
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let config = crate::config::gohot::GohotConfig::load(&workdir)?;
    let infer = match config.rules.infer {
        Some(patterns) => {
            let infer = crate::devloop::InferSync {
                patterns,
                dockerfile: config.rules.dockerfile,
                context: config.dir.clone(),
                build_args: config.rules.build_args,
            };
            // A Dockerfile that cannot be read is a mistake to report now, not at the first save.
            crate::sync::infer::sync_map_of_dir(&infer.dockerfile, &infer.context, &infer.build_args)
                .context("gohot.yaml: sync.infer infers destinations from the Dockerfile (sync.dockerfile)")?;
            Some(std::sync::Arc::new(infer))
        }
        None => None,
    };
    let rules = (!config.rules.manual.is_empty()).then(|| std::sync::Arc::new(config.rules.manual));
    // Files syncback brought back into the package are not edits.
    let cache_root = crate::cache::root();
    let ignore = crate::devloop::IgnoreFn(std::sync::Arc::new(move |p: &std::path::Path| {
        crate::syncback::written_by_syncback(&cache_root, p)
    }));
    let opts = LoopOptions {
        debounce: std::time::Duration::from_millis(cmd.debounce_ms),
        probe,
        rules,
        infer,
        ignore: Some(ignore),
        ..Default::default()
    };
    // Registered now, so Ctrl-C is honoured during start-up too.
    let stop = futures::FutureExt::shared(Box::pin(interrupted()));
    if target == TargetKind::Kube {
        // Start-up on a cluster (build, push, apply, rollout) is abandoned on
        // Ctrl-C; once the loop runs, it stops it the usual way.
        let looping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, inner) = (looping.clone(), events.clone());
        let events = docker::sink(move |e: DevEvent| {
            if matches!(e, DevEvent::Started { .. }) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            inner(e)
        });
        let early = {
            let stop = stop.clone();
            async move {
                stop.await;
                if looping.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            }
        };
        return tokio::select! {
            r = run_dev_kube(cmd, opts, events, stop) => r,
            _ = early => Ok(()),
        };
    }
    let mut flags = cmd.build.clone();
    flags.dev = true;
    let registry = Registry::new(&[])?;
    let builder = make_builder(&flags, &registry)?;
    let dev = docker::DockerDev {
        package: cmd.package.clone(),
        name: cmd.name.clone(),
        ports,
        env: cmd.env.clone(),
        args: cmd.args.clone(),
        keep: cmd.keep,
    };
    docker::run(&builder, dev, opts, events, stop).await?;
    Ok(())
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
    let rendered = if cmd.build.dev {
        crate::resolve::render(&files, &images, &crate::resolve::dev_edit(&refs))?
    } else {
        crate::resolve::render(&files, &images, &|_| Ok(false))?
    };
    print_stdout(&rendered)?;
    Ok(())
}

/// The signal that stopped gohot (0: none yet), for the exit code.
static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so long-running commands can
/// clean up, and records which one for the exit code (130 or 143). The
/// handlers are installed when this is called, not when it is first awaited.
fn interrupted() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let record = |sig: i32| STOPPED_BY.store(sig, std::sync::atomic::Ordering::SeqCst);
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => record(2),
                _ = term.recv() => record(15),
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                record(2);
            }
        }
    }
}

/// The exit code for a command stopped by a signal: 128 + its number.
fn signal_exit_code() -> Option<ExitCode> {
    match STOPPED_BY.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(ExitCode::from(128 + sig as u8)),
    }
}

/// The Go builder for `gohot skaffold build`: like [`make_builder`], but in
/// `workdir` ($BUILD_CONTEXT) with the platforms from $PLATFORMS.
fn make_builder_in(
    cmd: &SkaffoldBuildCmd,
    registry: &Registry,
    workdir: PathBuf,
    platforms: Vec<crate::platform::Platform>,
) -> Result<GoBuilder> {
    builder_in(&cmd.build, registry, workdir, platforms)
}

async fn run_skaffold(cmd: SkaffoldCmd) -> Result<()> {
    match cmd {
        SkaffoldCmd::Build(c) => run_skaffold_build(c).await,
        SkaffoldCmd::Deps(c) => run_skaffold_deps(c).await,
    }
}

async fn run_skaffold_build(cmd: SkaffoldBuildCmd) -> Result<()> {
    use crate::skaffold::BuildRequest;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let host = crate::platform::Platform::host_linux();
    let request = BuildRequest::from_env(&|k| std::env::var(k).ok(), &cwd, &host)?;
    let registry = Registry::new(&cmd.insecure_registry)?;
    let builder = make_builder_in(&cmd, &registry, request.context.clone(), request.platforms.clone())?;
    let publisher = request.publisher(&registry)?;
    let pkg = cmd.package.strip_prefix(crate::resolve::KO_PREFIX).unwrap_or(&cmd.package);
    let built = builder.build(pkg).await?;
    let reference = publisher.publish(&built).await?;
    if let Some(dir) = &cmd.sync_binary {
        let platforms = builder.platforms()?;
        let platform = platforms
            .iter()
            .find(|p| p.os == host.os && p.arch == host.arch)
            .or(platforms.first())
            .context("no platform was built")?;
        let binary = crate::cache::binary_path(&crate::cache::root(), &built.package.import_path, platform);
        let dest = request.context.join(dir).join(built.package.binary_name());
        crate::skaffold::copy_binary(&binary, &dest)?;
        tracing::info!("copied the {platform} binary to {}", dest.display());
    }
    print_stdout(&format!("{reference}\n"))?;
    Ok(())
}

async fn run_skaffold_deps(cmd: SkaffoldDepsCmd) -> Result<()> {
    let go = GoToolchain::find()?;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let dir = cwd.join(&cmd.context);
    let platform = crate::platform::Platform::host_linux();
    let files = match &cmd.sync_binary {
        None => crate::skaffold::dependencies(&go, &dir, &cmd.package, &platform).await?,
        Some(bin) => crate::skaffold::binary_dependencies(&go, &dir, &cmd.package, bin).await?,
    };
    print_stdout(&format!("{}\n", serde_json::to_string(&files)?))?;
    Ok(())
}

async fn run_syncmap(cmd: SyncmapCmd) -> Result<()> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let context = cmd.context.map(|c| cwd.join(c)).unwrap_or(cwd);
    let args =
        crate::skaffold::parse_build_args(&cmd.build_args, &|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    let map = crate::skaffold::sync_map_of_dir(&cmd.dockerfile, &context, &args)?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&map)?))?;
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
    opts.allow_contexts.extend(crate::config::gohot::GohotConfig::load(&workdir)?.allow_contexts);
    let cluster = crate::cluster::connect(&opts).await?;
    let version = cluster.ping().await?;
    tracing::info!("context {} ({}, Kubernetes {version})", cluster.context.name, cluster.context.server);
    Ok(cluster)
}

/// Where images go for a cluster: as given, else loaded straight into the
/// nodes on KinD (kind.local) and minikube (minikube.local).
fn cluster_destinations(cluster: &crate::cluster::Cluster, mut dest: Destinations) -> Destinations {
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

/// `gohot dev PKG -f manifests`: deploy the dev image to the cluster, then
/// hot-reload into every pod that runs it.
async fn run_dev_kube(
    cmd: DevCmd,
    opts: crate::devloop::LoopOptions,
    events: crate::devloop::events::EventSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    use crate::cluster::nodes;
    use crate::deploy::{self, rollout};
    use crate::devloop::events::DevEvent;
    let files = read_all_manifests(&cmd.files)?;
    let cluster = connect_cluster(&cmd.kube).await?;
    let mut flags = cmd.build.clone();
    flags.dev = true;
    if flags.platform.is_empty() {
        let found = nodes::build_platforms(&nodes::list(&cluster).await?, &Default::default());
        if found.len() > 1 {
            let list: Vec<String> = found.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "the cluster's nodes run {}; a dev image holds one binary: pass --platform with the one the app's pods land on",
                list.join(", ")
            );
        }
        flags.platform = found.iter().map(ToString::to_string).collect();
    }
    let dest = cluster_destinations(&cluster, cmd.publish.destinations());
    let registry = Registry::new(&dest.insecure)?;
    let builder = make_builder(&flags, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let package = builder.package(&cmd.package).await?;
    let platform = builder.platforms()?.remove(0);
    let reference = format!("{}{}", crate::resolve::KO_PREFIX, package.import_path);
    if !deploy::ko_refs(&files).contains(&reference) {
        anyhow::bail!(
            "no container in the manifests uses `image: {reference}`: gohot dev reloads the containers that run the app's image (see examples/hello/manifests)"
        );
    }
    let app = crate::devloop::DevApp { package, requested: cmd.package.clone(), platform: platform.clone() };
    let watching = crate::devloop::watch(&builder, &app, &opts).await?;
    let deploy_opts = deploy::DeployOptions {
        dev: true,
        jobs: 2,
        wait: Some(rollout::WaitOptions { timeout: std::time::Duration::from_secs(180), ..Default::default() }),
    };
    let progress = |m: &str| tracing::info!("waiting: {m}");
    let deployed = deploy::deploy(&cluster, &files, &builder, publisher.as_ref(), &deploy_opts, &progress).await?;
    let image = deployed.app_image(&reference).context("the app's image was not built")?;
    let image_for_logs = image.clone();
    let binary_path = crate::cache::binary_path(&builder.cache_root(), &app.package.import_path, &platform);
    let initial = bytes::Bytes::from(std::fs::read(&binary_path).with_context(|| binary_path.display().to_string())?);
    let warn_events = events.clone();
    let target = crate::target::kube::KubeTarget::new(
        cluster.clone(),
        deployed.workloads.clone(),
        image,
        vec![platform],
        Box::new(move |m: &str| warn_events(DevEvent::Warning { message: m.to_string() })),
    );
    // App logs, prefixed with pod/container, and an optional port-forward;
    // both follow the workloads as pods are replaced.
    let found = crate::target::kube::pods::discover(&cluster, &deployed.workloads, &image_for_logs).await?;
    let log_events = events.clone();
    let line: crate::target::kube::logs::LineFn = std::sync::Arc::new(move |replica: &str, text: &str| {
        log_events(DevEvent::Log { replica: replica.to_string(), line: text.to_string() })
    });
    let logs = crate::target::kube::logs::follow_logs(
        &cluster,
        deployed.workloads.clone(),
        image_for_logs.clone(),
        opts.health_interval,
        line,
    );
    let mut opts = opts;
    let mut forward = None;
    if let Some(spec) = &cmd.port_forward {
        let (local, remote) = spec
            .split_once(':')
            .and_then(|(l, r)| Some((l.parse::<u16>().ok()?, r.parse::<u16>().ok()?)))
            .with_context(|| format!("invalid --port-forward {spec:?}: use LOCAL:POD_PORT, e.g. 8080:8080"))?;
        let (addr, task) = crate::target::kube::logs::port_forward(
            &cluster,
            deployed.workloads.clone(),
            image_for_logs.clone(),
            local,
            remote,
        )
        .await?;
        let names: Vec<String> = deployed.workloads.iter().map(|w| format!("{}/{}", w.namespace, w.name)).collect();
        eprintln!("forwarding http://{addr} → port {remote} of {}", names.join(", "));
        if matches!(opts.probe, crate::devloop::Probe::Started) {
            opts.probe = crate::devloop::Probe::Http(format!("http://{addr}/"));
        }
        forward = Some(task);
    }
    events(DevEvent::Started {
        image: deployed.refs.get(&reference).map(|r| r.image.clone()).unwrap_or_default(),
        replicas: found.containers.iter().map(|c| format!("{}/{}", c.pod, c.container)).collect(),
    });
    let result = crate::devloop::run(&builder, &target, app, watching, initial, opts, events.clone(), shutdown).await;
    logs.abort();
    if let Some(t) = forward {
        t.abort();
    }
    result?;
    events(DevEvent::Warning {
        message: format!(
            "the workloads stay deployed; remove them with `gohot delete -f {}`",
            cmd.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" -f ")
        ),
    });
    Ok(())
}

async fn run_apply(mut cmd: ApplyCmd) -> Result<()> {
    use crate::cluster::nodes;
    use crate::deploy::{self, rollout};
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
    let dest = cluster_destinations(&cluster, cmd.publish.destinations());
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
    use crate::deploy::{self, apply};
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

/// The compiler's own output, if the error is a failed `go build` (however
/// deep: `gohot build`, `gohot dev` start-up, `resolve`).
pub fn compiler_output(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|cause| {
        if let Some(GoError::Build { stderr, .. }) = cause.downcast_ref::<GoError>() {
            return Some(stderr.as_str());
        }
        if let Some(b) = cause.downcast_ref::<BuildError>() {
            return b.compiler_output();
        }
        if let Some(d) = cause.downcast_ref::<crate::devloop::docker::DockerDevError>() {
            return d.compiler_output();
        }
        match cause.downcast_ref::<crate::devloop::DevError>() {
            Some(crate::devloop::DevError::Build(b)) => b.compiler_output(),
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
    // `dev` handles Ctrl-C itself (it cleans up first); other commands just stop.
    let handles_interrupt = matches!(cli.command, Command::Dev(_));
    let result = runtime.block_on(async {
        if handles_interrupt {
            return run(cli.command).await;
        }
        let stop = interrupted();
        // On a task of its own, so a command blocked in a read (`resolve -f -`
        // waiting on stdin) cannot keep the signal from being seen.
        let command = tokio::spawn(run(cli.command));
        tokio::select! {
            r = command => r.unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}"))),
            _ = stop => Ok(()),
        }
    });
    // Interrupted (Ctrl-C: 130, SIGTERM: 143) wins over how the command ended.
    if let Some(code) = signal_exit_code() {
        eprintln!("interrupted");
        // A command may still be blocked in a read: do not wait for it.
        runtime.shutdown_background();
        return code;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Build(c) => run_build(c).await,
        Command::Resolve(c) => run_resolve(c).await,
        Command::Dev(c) => run_dev(c).await,
        Command::Syncback(c) => run_syncback(c).await,
        Command::Skaffold(c) => run_skaffold(c).await,
        Command::Syncmap(c) => run_syncmap(c).await,
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
