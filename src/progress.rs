//! Progress bars on stderr: shown on a terminal, hidden otherwise (CI logs,
//! pipes, `--json`), so they never mix with data on stdout.

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `512 B`, `12.3 kB`, `1.9 MB`, `2.1 GB`: sizes in every message for people.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// Set by `--json`: no bars at all, even on a terminal.
static HIDDEN: AtomicBool = AtomicBool::new(false);

/// Hides every bar from now on (`gohot dev --json`).
pub fn hide_all() {
    HIDDEN.store(true, Ordering::SeqCst);
}

/// stderr, unless bars are hidden; indicatif draws nothing when it is not a terminal.
fn target() -> ProgressDrawTarget {
    if HIDDEN.load(Ordering::SeqCst) {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A spinner with the time spent, for steps whose size is unknown (a base
/// pull, loading into the engine, KinD or minikube, a rollout); hidden
/// when stderr is not a TTY. Finish it with `finish_and_clear`.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.into());
    if !bar.is_hidden() {
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    bar
}

/// A byte-counting bar with a message and the time left at the rate so far
/// (a push over a slow link takes minutes); hidden when stderr is not a TTY.
pub fn bytes(len: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}

/// A status line for a wait whose reason changes (a rollout): on a
/// terminal, a spinner showing the latest reason, made at the first one (so
/// it never overlaps the build's bars); otherwise each new reason is logged.
#[derive(Default)]
pub struct Status(std::sync::OnceLock<ProgressBar>);

impl Status {
    /// A status with nothing shown yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Shows the latest reason.
    pub fn update(&self, reason: &str) {
        let bar = self.0.get_or_init(|| spinner(""));
        if bar.is_hidden() {
            tracing::info!("waiting: {reason}");
        } else {
            bar.set_message(format!("waiting: {reason}"));
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        if let Some(bar) = self.0.get() {
            bar.finish_and_clear();
        }
    }
}
