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
    /// Skaffold integration: gohot as a custom builder (`build`) and its
    /// dependency list (`deps`).
    #[command(subcommand)]
    Skaffold(SkaffoldCmd),
    /// Print the sync map inferred from a Dockerfile as JSON: context file →
    /// every absolute path it is copied to.
    Syncmap(SyncmapCmd),
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
    /// Base image (overrides .ko.yaml); `scratch` is the built-in empty base.
    #[arg(long)]
    pub base: Option<String>,
    /// Re-resolve base image tags against the registry instead of the cache.
    #[arg(long)]
    pub pull: bool,
    /// Build the dev-mode variant (writable /ko-app for hot reload).
    #[arg(long)]
    pub dev: bool,
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

/// The Go builder for `gohot skaffold build`: like [`make_builder`], but in
/// `workdir` ($BUILD_CONTEXT) with the platforms from $PLATFORMS.
fn make_builder_in(
    cmd: &SkaffoldBuildCmd,
    registry: &Registry,
    workdir: PathBuf,
    platforms: Vec<crate::platform::Platform>,
) -> Result<GoBuilder> {
    let go = GoToolchain::find()?;
    let config = KoConfig::load(&workdir)?;
    let cache_root = crate::cache::root();
    let bases = BaseStore::new(crate::cache::base_dir(&cache_root), registry.clone(), cmd.pull);
    Ok(GoBuilder::new(
        go,
        config,
        bases,
        BuildOptions { workdir, platforms, base: cmd.base.clone(), dev: cmd.dev, cache_root },
    ))
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
        Command::Skaffold(c) => run_skaffold(c).await,
        Command::Syncmap(c) => run_syncmap(c).await,
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
}
