//! Where things live inside gohot's images: ko's layout (the binary in
//! `/ko-app`, kodata at `/var/run/ko`) plus what the dev image adds. One
//! home, so that the image builder, the pod-spec rewrite, the dev loop and
//! the way in agree by construction.

/// Directory of the app binary (`/ko-app/<name>`; mode 0777 in dev images,
/// so a non-root app can receive a new binary).
pub const APP_DIR: &str = "/ko-app";
/// Where kodata lands (ko's `KO_DATA_PATH`).
pub const KODATA_PATH: &str = "/var/run/ko";
/// watchexec in the dev image (shipped in kodata, as the Skaffold ko proposal has it).
pub const WATCHEXEC_PATH: &str = "/var/run/ko/watchexec";
/// The way-in helper in the dev image.
pub const HELPER_PATH: &str = "/var/run/gohot/helper";
/// Debug dev images only (`--debug`): delve, which runs the app.
pub const DELVE_PATH: &str = "/var/run/gohot/dlv";
/// The port delve listens on in debug dev images (ko's).
pub const DELVE_PORT: u16 = 40000;
/// Dev images only: `tar` and `rm` here are links to the helper, which
/// answers Skaffold's and Tilt's file syncs under those names (see
/// `tar.go` in the helper); the directory comes first on the image's `PATH`.
pub const DEV_BIN_DIR: &str = "/var/run/gohot/bin";
/// The names the helper answers to in [`DEV_BIN_DIR`].
pub const DEV_BIN_NAMES: &[&str] = &["rm", "tar"];
/// Files a Skaffold sync rule sends here are read and dropped by the
/// helper's `tar`: the rule that routes Go sources to gohot's sync hook
/// (`gohot skaffold sync`) instead of an image rebuild points here.
pub const DISCARD_DIR: &str = "/var/run/gohot/discard";

/// The path of the binary named `name`.
pub fn app_binary(name: &str) -> String {
    format!("{APP_DIR}/{name}")
}
