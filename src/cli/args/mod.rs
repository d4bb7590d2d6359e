//! The command line as clap sees it: one struct per command, flag groups
//! shared between commands ([`BuildFlags`], [`PublishFlags`],
//! [`KubeFlags`]), each in the file of its concern and normalised once into
//! the settings the library takes (as watchexec's `cli/src/args/`).

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod build;
mod dev;
mod kube;
mod publish;
mod skaffold;
mod syncback;
mod values;

pub use build::{BuildCmd, BuildFlags, ResolveCmd};
pub use dev::{DevCmd, DevSettings, TargetKind};
pub use kube::{ApplyCmd, DeleteCmd, KubeFlags};
pub use publish::{PublishFlags, Sbom};
pub use skaffold::{SkaffoldBuildCmd, SkaffoldCmd, SkaffoldDepsCmd, SkaffoldSyncCmd, SyncmapCmd};
pub use syncback::SyncbackCmd;
pub use values::parse_duration;

use clap::{Args, Parser, Subcommand};

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
  GOHOT_DELVE_SRC       delve's source (a directory or .tar.gz with vendor/) for gohot dev --debug (--delve-src)
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

#[cfg(test)]
mod tests {
    use super::values::parse_interval;
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
