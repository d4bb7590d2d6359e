//! The command line as clap sees it: one struct per command, flag groups
//! shared between commands ([`BuildFlags`], [`PublishFlags`],
//! [`KubeFlags`]), each normalised once into the settings the library takes.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::publish::select::Destinations;
use crate::publish::Naming;

/// The environment variables gohot reads, for `--help`.
pub const ENVIRONMENT: &str = "\
Environment:
  KO_DOCKER_REPO        where images go (a registry repository, ko.local, kind.local, minikube.local)
  KO_DEFAULTBASEIMAGE   the base image when .ko.yaml names none for the package (default: built-in static)
  KO_DEFAULTPLATFORMS   the default of --platform
  KO_CONFIG_PATH        the .ko.yaml to read (a file or a directory)
  KOCACHE               where binaries are cached (default ~/.cache/gohot)
  SOURCE_DATE_EPOCH     the layers' timestamps (default: the epoch)
  KO_DATA_PATH_ALLOWED_ROOT
                        where kodata symlinks may also lead, besides the module's directory
  GOHOT_GO              the Go toolchain (default: go on PATH)
  GOHOT_WATCHEXEC       a local watchexec binary for dev images (--watchexec)
  GOHOT_WATCHEXEC_URL   a mirror of watchexec's release files (--watchexec-url)
  GOHOT_LOG             a tracing filter for gohot's log (e.g. gohot=debug)
  DOCKER_HOST           the Docker engine (unix:///path, tcp://HOST:PORT), after --docker-host
  DOCKER_TLS_VERIFY     TLS to a tcp:// engine, its certificate checked (DOCKER_TLS: not checked)
  DOCKER_CERT_PATH      ca.pem, cert.pem, key.pem for that TLS (default: the Docker config directory)
  DOCKER_CONTEXT        the Docker context to use (after DOCKER_HOST; before config.json's currentContext)
  DOCKER_CONFIG         the Docker config directory: config.json (credentials, currentContext), contexts/
  KUBECONFIG            the kubeconfig files (default ~/.kube/config)
  KIND_CLUSTER_NAME     the KinD cluster for kind.local (default kind)
  MINIKUBE_PROFILE      the minikube profile for minikube.local (default minikube)
  IMAGE, PUSH_IMAGE, BUILD_CONTEXT, PLATFORMS
                        Skaffold's custom-build contract (gohot skaffold build)
  SKAFFOLD_IMAGE, SKAFFOLD_BUILD_CONTEXT, SKAFFOLD_FILES_ADDED_OR_MODIFIED, SKAFFOLD_FILES_DELETED,
  SKAFFOLD_KUBE_CONTEXT, SKAFFOLD_NAMESPACES
                        Skaffold's sync hook variables (gohot skaffold sync)";

/// gohot: build Go images the way ko does, and hot-reload them in dev mode.
#[derive(Debug, Parser)]
#[command(name = "gohot", version, about, propagate_version = true, after_help = ENVIRONMENT)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). GOHOT_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The Docker engine to use (unix:///path or tcp://HOST:PORT), as
    /// Docker's -H: wins over DOCKER_HOST, DOCKER_CONTEXT and the current
    /// context of $DOCKER_CONFIG/config.json.
    #[arg(long, global = true, value_name = "HOST")]
    pub docker_host: Option<String>,
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
    /// Print a shell completion script: `gohot completion bash > /etc/bash_completion.d/gohot`,
    /// `gohot completion zsh > "${fpath[1]}/_gohot"`, `gohot completion fish > ~/.config/fish/completions/gohot.fish`.
    Completion(CompletionCmd),
}

/// `gohot completion`.
#[derive(Debug, Args)]
pub struct CompletionCmd {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Read the directories given with -f recursively (as ko and kubectl).
    #[arg(short = 'R', long)]
    pub recursive: bool,
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
    /// Container name (default gohot-<name>). A container of that name
    /// that gohot did not make, or that another running session owns, is
    /// refused, never replaced.
    #[arg(long)]
    pub name: Option<String>,
    /// How to know the new process serves, from the host: an http:// URL,
    /// tcp:PORT, or `none` (only that it started). Default: HTTP on the
    /// app's port, asked inside the container by gohot's helper (the first
    /// -p's container port; on a cluster --port-forward's pod port, else the
    /// container's first declared port).
    #[arg(long)]
    pub probe: Option<String>,
    /// Quiet time after a change before building, in milliseconds. 0: build
    /// on the first change, and let a newer one cancel and restart it.
    #[arg(long, default_value_t = 0)]
    pub debounce_ms: u64,
    /// One JSON event per line on stdout instead of status lines on stderr.
    #[arg(long)]
    pub json: bool,
    /// Keep the container when gohot stops.
    #[arg(long)]
    pub keep: bool,
    /// Kubernetes: forward LOCAL:POD_PORT from 127.0.0.1 to a pod of the app
    /// (POD_PORT is also the port probed inside each pod after a reload).
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
    /// than one publishes an image index; `all`: every platform of the base.
    /// Default: $KO_DEFAULTPLATFORMS, then .ko.yaml defaultPlatforms, else the host's.
    #[arg(long, value_delimiter = ',', env = "KO_DEFAULTPLATFORMS")]
    pub platform: Vec<String>,
    /// Base image (overrides .ko.yaml and KO_DEFAULTBASEIMAGE). Built in:
    /// `static` (the default: CA certificates, tzdata, runs as 65532) and
    /// `scratch` (empty).
    #[arg(long)]
    pub base: Option<String>,
    /// Re-resolve base image tags against the registry instead of the cache.
    #[arg(long)]
    pub pull: bool,
    /// Labels to add to the image, KEY=VALUE, comma-separated or repeated (ko's --image-label).
    #[arg(long = "image-label", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = parse_label)]
    pub image_label: Vec<(String, String)>,
    /// The user the image runs as (ko's --image-user), e.g. 65532 or 1000:1000;
    /// default: the base's (65532 on the built-in static base).
    #[arg(long, value_name = "USER")]
    pub image_user: Option<String>,
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
    pub dwarf: bool,
    /// Refused: ko's --debug puts a debugger (delve) into the image, which
    /// gohot does not do; --dwarf keeps debug information for your own.
    #[arg(long, hide = true, num_args = 0, default_missing_value = "true", value_parser = refuse_debug)]
    pub debug: Option<bool>,
}

/// `--debug` always fails (a usage error, exit 2): in ko it means a
/// debugger in the image, which gohot does not add.
fn refuse_debug(_: &str) -> std::result::Result<bool, String> {
    Err("ko's --debug adds the delve debugger to the image, which gohot does not do. To keep DWARF debug \
         information in dev builds (for a debugger you attach yourself), use --dwarf"
        .into())
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

/// `gohot build`.
#[derive(Debug, Args)]
pub struct BuildCmd {
    /// Build settings.
    #[command(flatten)]
    pub build: BuildFlags,
    /// Destination.
    #[command(flatten)]
    pub publish: PublishFlags,
    /// Go main packages (./cmd/app or import paths; a ko:// prefix is
    /// accepted). Default: `.`, as in ko.
    #[arg(default_value = ".")]
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
    /// YAML or JSON files or directories (`-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Read the directories given with -f recursively (as ko and kubectl).
    #[arg(short = 'R', long)]
    pub recursive: bool,
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
#[command(after_help = "Never synced back, in either direction: version-control metadata (.git, .hg, .svn, .jj, \
at any depth, whatever their case), as Mutagen's VCS ignore does; no --exclude pattern re-includes it. A local file \
changed while a round runs is a conflict, left alone. Names with a backslash or a control character are skipped and \
reported. Caps (past them the round fails and writes nothing from the refused part): a listing of 50,000 entries or \
64 MiB, a file of 1 GiB, 8 GiB of files per round.

Exit codes: 0 in sync (excluded and refused entries aside); 1 error, or conflicts left \
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
    /// wrote and nobody changed since, unless --force), and the directories
    /// syncback created once they are empty.
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
}

/// `500ms`, `2s`, `1.5m`, `1h` or plain seconds: one parser for every duration flag.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 500ms, 2s, 5m or 1h");
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs > 366.0 * 86_400.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

impl BuildFlags {
    /// `--platform=all`: every platform the base offers, as in ko.
    pub fn all_platforms(&self) -> bool {
        self.platform.iter().any(|p| p == "all")
    }
}

/// `KEY=VALUE` for `--image-label`.
fn parse_label(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("--image-label {s:?}: write KEY=VALUE, e.g. org.opencontainers.image.source=https://…")),
    }
}

/// `--insecure-registry[=BOOL]`: ko's switch. A host after it is the old
/// gohot form (a list of hosts), refused with the way to write it now.
fn parse_insecure(s: &str) -> std::result::Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!(
            "--insecure-registry is a switch, as in ko (for the destination registry), and takes no registry: \
             write `--insecure-registry` (or `--insecure-registry=true`) without {other:?}; loopback registries \
             need no flag. To build a package right after it, write `--insecure-registry=true PKG`"
        )),
    }
}

/// A polling interval: a duration from 50ms to 24h.
fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if !(0.05..=86_400.0).contains(&d.as_secs_f64()) {
        return Err(format!("interval {s:?} out of range (50ms to 24h)"));
    }
    Ok(d)
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
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("1.5m").unwrap().as_secs(), 90);
        assert!(parse_duration("3 days").is_err());
        assert!(parse_interval("10ms").is_err());
        assert_eq!(parse_interval("2s").unwrap().as_secs(), 2);
    }
}
