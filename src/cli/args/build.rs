//! Flags that choose how Go packages become images, and the commands
//! that only build: `gohot build`, `gohot resolve`.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use super::publish::PublishFlags;
use super::values::parse_label;

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
}

/// ko's `--debug` where gohot makes no dev image: refused, naming `gohot
/// dev --debug` (and `apply`/`resolve --dev --debug`) and `--dwarf`.
#[derive(Debug, Args, Clone)]
pub struct DebugRefused {
    /// Refused here: ko's --debug puts a debugger (delve) into the image;
    /// gohot does that in `gohot dev --debug`. --dwarf keeps debug information.
    #[arg(long, hide = true, num_args = 0, default_missing_value = "true", value_parser = refuse_debug)]
    pub debug: Option<bool>,
}

/// `--debug` where no dev image is made fails (a usage error, exit 2): in
/// ko it means a debugger in the image, which gohot adds to dev images.
fn refuse_debug(_: &str) -> std::result::Result<bool, String> {
    Err("ko's --debug adds the delve debugger to the image; gohot does that for dev images: \
         `gohot dev --debug ./cmd/app` runs the app under delve and keeps your editor's debug session across \
         reloads (`gohot apply --dev --debug` and `gohot resolve --dev --debug` deploy it under delve as ko does). \
         To keep DWARF debug information in dev builds (for a debugger you attach yourself), use --dwarf"
        .into())
}

/// ko's `--debug` for `resolve --dev` and `apply --dev`: delve in the dev
/// image and the app run under it (`gohot dev --debug` also keeps an
/// editor's session across reloads).
#[derive(Debug, Args, Clone, Default)]
pub struct DevDebug {
    /// With --dev, as ko's --debug: delve in the dev image and the app run
    /// under it (`dlv exec --headless --continue --accept-multiclient
    /// --listen=:40000`), built for debugging (`-N -l`, DWARF kept).
    /// Editors attach through a port-forward to port 40000, and again after
    /// a reload; `gohot dev --debug` keeps their session across reloads.
    #[arg(long)]
    pub debug: bool,
    /// With --debug: a delve binary for the container's platform, instead
    /// of the one gohot builds with your Go (once, cached).
    #[arg(long, value_name = "PATH")]
    pub delve: Option<PathBuf>,
    /// With --debug: build delve from this copy of its source (a directory
    /// or .tar.gz with vendor/), offline.
    #[arg(long, value_name = "DIR|FILE.tar.gz", env = "GOHOT_DELVE_SRC")]
    pub delve_src: Option<PathBuf>,
}

impl DevDebug {
    /// The delve to put into the dev image (None: no --debug), or why the
    /// flags do not go together; `dev`: whether --dev was given.
    pub fn delve(&self, dev: bool) -> Result<Option<crate::devimage::delve::DelveSource>, String> {
        use crate::devimage::delve::DelveSource;
        match (self.debug, dev, &self.delve) {
            (true, true, _) => Ok(Some(DelveSource::from_settings(self.delve.clone(), self.delve_src.clone()))),
            (true, false, _) => Err("--debug puts delve into the dev image: add --dev, or run `gohot dev --debug`, \
                                     which also keeps your editor's debug session across reloads"
                .into()),
            (false, _, Some(d)) => Err(format!("--delve {} is for --debug: add --dev --debug", d.display())),
            (false, _, None) => Ok(None),
        }
    }
}

impl BuildFlags {
    /// `--platform=all`: every platform the base offers, as in ko.
    pub fn all_platforms(&self) -> bool {
        self.platform.iter().any(|p| p == "all")
    }
}

/// `gohot build`.
#[derive(Debug, Args)]
pub struct BuildCmd {
    /// Build settings.
    #[command(flatten)]
    pub build: BuildFlags,
    /// ko's --debug, refused here.
    #[command(flatten)]
    pub ko_debug: DebugRefused,
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
    /// ko's --debug (with --dev).
    #[command(flatten)]
    pub debug: DevDebug,
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
