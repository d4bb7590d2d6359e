//! `gohot syncback`.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use super::kube::KubeFlags;
use super::values::parse_interval;

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
