//! What the dev loop reports. The library never prints: it sends
//! [`DevEvent`]s to a sink; the CLI renders them as one human line each on
//! stderr, or as JSON lines on stdout with `--json` (for editors and tools).

use serde::Serialize;

/// Time each step of one reload took, in seconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Timings {
    /// First file event to build start (debounce included).
    pub detect: f64,
    /// `go build`.
    pub build: f64,
    /// Encoding and sending the binary, up to the atomic rename.
    pub sync: f64,
    /// Of `sync`: waiting for the payload to be encoded after the build.
    pub encode: f64,
    /// Of `sync`: the helper receiving, decoding and writing the binary up to
    /// its rename (the slowest replica); the rest of `sync` is the transport.
    pub write: f64,
    /// Rename until watchexec has started the new process.
    pub restart: f64,
    /// New process started until it answered the probe.
    pub answer: f64,
    /// First file event until ready.
    pub total: f64,
}

/// One thing that happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DevEvent {
    /// The app is running.
    Started {
        /// Image it runs.
        image: String,
        /// Replicas.
        replicas: Vec<String>,
    },
    /// A build began.
    BuildStarted {
        /// Build inputs whose change triggered it (module-relative; never an
        /// editor's temporary file).
        files: Vec<String>,
    },
    /// A newer save made the running build stale; it was stopped.
    BuildCancelled,
    /// The compiler failed; `output` is verbatim. The old process keeps serving.
    BuildFailed {
        /// The compiler's output.
        output: String,
    },
    /// The build produced the same binary as before: nothing to sync.
    Unchanged,
    /// The new binary is in every replica and answers.
    Reloaded {
        /// The app.
        app: String,
        /// Changed files.
        files: Vec<String>,
        /// Step timings.
        timings: Timings,
        /// Payload bytes sent, all replicas.
        bytes_sent: u64,
        /// Size of the binary.
        binary_bytes: u64,
        /// Replicas updated.
        replicas: usize,
        /// Replicas in total.
        replicas_total: usize,
    },
    /// kodata files were synced (no rebuild).
    KodataSynced {
        /// Files, relative to kodata.
        files: Vec<String>,
        /// Bytes sent.
        bytes_sent: u64,
    },
    /// Files covered by `gohot.yaml` sync rules (`manual` or `infer`) were
    /// copied or deleted (no rebuild, except a deletion under `infer`).
    RulesSynced {
        /// Copied files (module-relative).
        copied: Vec<String>,
        /// Deleted files (module-relative), removed at every destination.
        deleted: Vec<String>,
        /// Bytes sent.
        bytes_sent: u64,
    },
    /// A replica restarted or was replaced and got the current binary again.
    Recovered {
        /// The replica.
        replica: String,
        /// What happened.
        reason: String,
    },
    /// A reload could not be completed everywhere.
    SyncFailed {
        /// What went wrong, per replica.
        errors: Vec<String>,
    },
    /// A line the app printed.
    Log {
        /// The replica.
        replica: String,
        /// The line.
        line: String,
    },
    /// Something worth knowing that is not an error.
    Warning {
        /// The message.
        message: String,
    },
    /// A local port forwards to the app (`--port-forward`), following its pods.
    Forwarding {
        /// The local address (`127.0.0.1:8080`).
        local: String,
        /// The port in the pods.
        remote: u16,
        /// The workloads whose pods it reaches (`namespace/name`).
        workloads: Vec<String>,
    },
    /// gohot is stopping.
    Stopped {
        /// Whether the app's container was kept.
        kept: bool,
    },
}

/// Where events go.
pub type EventSink = std::sync::Arc<dyn Fn(DevEvent) + Send + Sync>;

/// `1.9 MB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    crate::publish::registry::human_bytes(n)
}

impl DevEvent {
    /// The one line a person sees for this event (None: nothing to print).
    pub fn human(&self) -> Option<String> {
        Some(match self {
            DevEvent::Started { image, replicas } => format!("running {} ({image})", replicas.join(", ")),
            DevEvent::BuildStarted { files } => format!("change in {}: building…", short_list(files)),
            DevEvent::BuildCancelled => "newer change: restarting the build".into(),
            DevEvent::BuildFailed { output } => format!("{}build failed: the previous version keeps running", output),
            DevEvent::Unchanged => "binary unchanged: nothing to reload".into(),
            DevEvent::Reloaded { app, timings: t, bytes_sent, replicas, replicas_total, .. } => format!(
                "reloaded {app} in {:.2}s (build {:.2} · sync {:.2} · restart {:.2} · answer {:.2}) · {} sent · {replicas}/{replicas_total} {}",
                t.total,
                t.build,
                t.sync,
                t.restart,
                t.answer,
                human_bytes(*bytes_sent),
                if *replicas_total == 1 { "container" } else { "containers" }
            ),
            DevEvent::KodataSynced { files, bytes_sent } => {
                format!("synced kodata {} ({} sent)", short_list(files), human_bytes(*bytes_sent))
            }
            DevEvent::RulesSynced { copied, deleted, bytes_sent } => format!(
                "synced {} by sync rules{} ({} sent)",
                short_list(copied),
                if deleted.is_empty() { String::new() } else { format!(", deleted {}", short_list(deleted)) },
                human_bytes(*bytes_sent)
            ),
            DevEvent::Recovered { replica, reason } => format!("{replica}: {reason}"),
            DevEvent::SyncFailed { errors } => format!("reload failed: {}", errors.join("; ")),
            DevEvent::Log { replica, line } => format!("[{replica}] {line}"),
            DevEvent::Warning { message } => format!("warning: {message}"),
            DevEvent::Forwarding { local, remote, workloads } => {
                format!("forwarding http://{local} → port {remote} of {}", workloads.join(", "))
            }
            DevEvent::Stopped { kept } => {
                if *kept {
                    "stopped (container kept)".into()
                } else {
                    "stopped; removed the container".into()
                }
            }
        })
    }
}

fn short_list(files: &[String]) -> String {
    match files.len() {
        0 => "sources".into(),
        1..=3 => files.join(", "),
        n => format!("{}, … ({n} files)", files[..2].join(", ")),
    }
}
