//! What the dev loop reports. The library never prints: it sends
//! [`DevEvent`]s to a sink; the CLI renders them as one human line each on
//! stderr, or as JSON lines on stdout with `--json` (for editors and tools),
//! each in the envelope [`DevEvent::json_line`] writes: `version`, `time`,
//! `event`, then the event's fields — the schema `docs/events.md` documents
//! and a test here holds it to.

use serde::Serialize;

use crate::progress::human_bytes;

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

/// How one service of a save ended ([`DevEvent::ReloadedAll`]).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ServiceResult {
    /// The service (app name).
    pub app: String,
    /// `reloaded`, `unchanged` (the build made the binary it runs) or
    /// `failed` (compile error, or a replica or the probe failed: it keeps
    /// its old process).
    pub outcome: String,
    /// Seconds from the save until it answered or failed.
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
    /// The app's first process answered its probe (in one replica): the
    /// session's time to the first served request.
    Serving {
        /// Seconds since `gohot dev` started (build, push and rollout included).
        seconds: f64,
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
    /// One save reloaded several services: which, how each ended, and when
    /// the last one answered. Sent once per save that touched two services
    /// or more, after each of them has its own `reloaded` (or failure).
    ReloadedAll {
        /// The changed build inputs of the save.
        files: Vec<String>,
        /// First change until the last service answered (or failed).
        total: f64,
        /// Each service the save touched, in session order.
        services: Vec<ServiceResult>,
    },
    /// `--debug`: gohot listens for editors and delve clients.
    DebugListening {
        /// The address to attach to (`127.0.0.1:40000`).
        address: String,
    },
    /// `--debug`: an editor attached; its session goes to this replica's delve.
    DebugAttached {
        /// The replica debugged.
        replica: String,
    },
    /// `--debug`: after a reload the editor's session moved to the new
    /// process and its breakpoints were set again (before `reloaded`).
    DebugReattached {
        /// The replica debugged.
        replica: String,
        /// Breakpoints set again (line, function and exception breakpoints).
        breakpoints: usize,
        /// Of those, verified in the new process.
        verified: usize,
        /// Requests of the replay delve refused, with its message.
        errors: Vec<String>,
        /// Seconds from the new process answering until the replay was done.
        seconds: f64,
    },
    /// `--debug`: the editor ended its session.
    DebugDetached,
    /// gohot is stopping.
    Stopped {
        /// Whether the app's container was kept.
        kept: bool,
    },
    /// gohot stops on an error (the last event before a non-zero exit).
    Error {
        /// The error and its causes, as printed on stderr.
        message: String,
    },
}

/// The version of the `--json` event schema (docs/events.md): fields may be
/// added within a version; a field removed, renamed or retyped changes it.
pub const EVENTS_VERSION: u32 = 1;

/// `2026-12-01T00:10:00.123Z` for a time since the Unix epoch.
pub fn rfc3339_utc(since_epoch: std::time::Duration) -> String {
    chrono::DateTime::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where one service's events go (already tagged with its app).
pub type EventSink = std::sync::Arc<dyn Fn(DevEvent) + Send + Sync>;

/// Where a session's events go: with the app they concern, or None for
/// the session as a whole.
pub type SessionSink = std::sync::Arc<dyn Fn(Option<&str>, DevEvent) + Send + Sync>;

/// The sink of one service: its events carry its app.
pub fn for_app(sink: &SessionSink, app: &str) -> EventSink {
    let (sink, app) = (sink.clone(), app.to_string());
    std::sync::Arc::new(move |e| sink(Some(&app), e))
}

impl DevEvent {
    /// The event as one line of JSON in its envelope (`version`, `time`,
    /// `event`, `app` when it concerns one service, then its fields), at
    /// `now`; no newline.
    pub fn json_line(&self, app: Option<&str>, now: std::time::SystemTime) -> String {
        let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut line = format!(r#"{{"version":{EVENTS_VERSION},"time":"{}","#, rfc3339_utc(since));
        // The event's own object, `event` first, without its opening brace.
        let body = serde_json::to_string(self).unwrap_or_else(|_| r#"{"event":"error"}"#.into());
        let body = body.strip_prefix('{').unwrap_or(&body);
        // `reloaded` names its app itself.
        match app.filter(|_| !matches!(self, DevEvent::Reloaded { .. })) {
            Some(app) => match body.split_once(',') {
                Some((event, rest)) => {
                    line.push_str(&format!("{event},\"app\":{},{rest}", serde_json::Value::from(app)))
                }
                None => {
                    line.push_str(&format!("{},\"app\":{}}}", body.trim_end_matches('}'), serde_json::Value::from(app)))
                }
            },
            None => line.push_str(body),
        }
        line
    }

    /// The one line a person sees for this event (None: nothing to print).
    pub fn human(&self) -> Option<String> {
        Some(match self {
            DevEvent::Started { image, replicas } => format!("running {} ({image})", replicas.join(", ")),
            DevEvent::Serving { seconds } => format!("serving, {seconds:.1}s after start"),
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
            DevEvent::ReloadedAll { total, services, .. } => {
                let reloaded = services.iter().filter(|s| s.outcome != "failed").count();
                let each: Vec<String> = services
                    .iter()
                    .map(|s| match s.outcome.as_str() {
                        "failed" => format!("{} failed", s.app),
                        "unchanged" => format!("{} unchanged", s.app),
                        _ => format!("{} {:.2}", s.app, s.total),
                    })
                    .collect();
                let count = if reloaded == services.len() {
                    format!("{} services", services.len())
                } else {
                    format!("{reloaded} of {} services", services.len())
                };
                format!("{count} reloaded in {total:.2}s ({})", each.join(" · "))
            }
            DevEvent::DebugListening { address } => format!("debugger: attach your editor to {address}"),
            DevEvent::DebugAttached { replica } => format!("debugger: editor attached to {replica}"),
            DevEvent::DebugReattached { replica, breakpoints, verified, errors, seconds } => {
                let refused = if errors.is_empty() { String::new() } else { format!("; {}", errors.join("; ")) };
                format!(
                    "debugger: reattached to {replica}, {verified}/{breakpoints} {} set again in {seconds:.2}s{refused}",
                    if *breakpoints == 1 { "breakpoint" } else { "breakpoints" }
                )
            }
            DevEvent::DebugDetached => "debugger: editor detached".into(),
            DevEvent::Stopped { kept } => {
                if *kept {
                    "stopped (container kept)".into()
                } else {
                    "stopped; removed the container".into()
                }
            }
            // The CLI prints the error itself, with its causes.
            DevEvent::Error { .. } => return None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// One of every event, with every field filled in. The match below has
    /// no wildcard: a new event does not compile until it is added here
    /// (and so checked against the doc).
    fn every_event() -> Vec<DevEvent> {
        let s = || "x".to_string();
        let all = vec![
            DevEvent::Started { image: s(), replicas: vec![s()] },
            DevEvent::Serving { seconds: 0.5 },
            DevEvent::BuildStarted { files: vec![s()] },
            DevEvent::BuildCancelled,
            DevEvent::BuildFailed { output: s() },
            DevEvent::Unchanged,
            DevEvent::Reloaded {
                app: s(),
                files: vec![s()],
                timings: Timings::default(),
                bytes_sent: 1,
                binary_bytes: 2,
                replicas: 1,
                replicas_total: 1,
            },
            DevEvent::KodataSynced { files: vec![s()], bytes_sent: 1 },
            DevEvent::RulesSynced { copied: vec![s()], deleted: vec![s()], bytes_sent: 1 },
            DevEvent::Recovered { replica: s(), reason: s() },
            DevEvent::SyncFailed { errors: vec![s()] },
            DevEvent::Log { replica: s(), line: s() },
            DevEvent::Warning { message: s() },
            DevEvent::Forwarding { local: s(), remote: 8080, workloads: vec![s()] },
            DevEvent::ReloadedAll {
                files: vec![s()],
                total: 0.5,
                services: vec![ServiceResult { app: s(), outcome: s(), total: 0.5 }],
            },
            DevEvent::DebugListening { address: s() },
            DevEvent::DebugAttached { replica: s() },
            DevEvent::DebugReattached { replica: s(), breakpoints: 1, verified: 1, errors: vec![s()], seconds: 0.5 },
            DevEvent::DebugDetached,
            DevEvent::Stopped { kept: false },
            DevEvent::Error { message: s() },
        ];
        for e in &all {
            match e {
                DevEvent::Started { .. }
                | DevEvent::Serving { .. }
                | DevEvent::BuildStarted { .. }
                | DevEvent::BuildCancelled
                | DevEvent::BuildFailed { .. }
                | DevEvent::Unchanged
                | DevEvent::Reloaded { .. }
                | DevEvent::KodataSynced { .. }
                | DevEvent::RulesSynced { .. }
                | DevEvent::Recovered { .. }
                | DevEvent::SyncFailed { .. }
                | DevEvent::Log { .. }
                | DevEvent::Warning { .. }
                | DevEvent::Forwarding { .. }
                | DevEvent::ReloadedAll { .. }
                | DevEvent::DebugListening { .. }
                | DevEvent::DebugAttached { .. }
                | DevEvent::DebugReattached { .. }
                | DevEvent::DebugDetached
                | DevEvent::Stopped { .. }
                | DevEvent::Error { .. } => {}
            }
        }
        all
    }

    /// docs/events.md: `### \`name\`` headings, each with a table of
    /// `| \`field\` | type | meaning |` rows; the envelope's rows come
    /// before the first heading. Nested fields are written `parent.child`.
    fn documented() -> (BTreeMap<String, String>, BTreeMap<String, BTreeMap<String, String>>) {
        let doc = include_str!("../../docs/events.md");
        let mut envelope = BTreeMap::new();
        let mut events: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in doc.lines() {
            if let Some(name) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
                current = Some(name.to_string());
                events.entry(name.to_string()).or_default();
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[1].starts_with('`') {
                continue;
            }
            let (field, ty) = (cells[1].trim_matches('`').to_string(), cells[2].to_string());
            match &current {
                None => envelope.insert(field, ty),
                Some(e) => events.get_mut(e).expect("event").insert(field, ty),
            };
        }
        (envelope, events)
    }

    fn json_type(v: &serde_json::Value) -> &'static str {
        match v {
            serde_json::Value::String(_) => "string",
            serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Array(a) if a.first().is_some_and(|v| v.is_object()) => "array of objects",
            serde_json::Value::Array(_) => "array of strings",
            serde_json::Value::Object(_) => "object",
            serde_json::Value::Null => "null",
        }
    }

    /// Every event kind, parsed from the JSON gohot writes, matches the
    /// documented schema field for field and type for type — and the doc
    /// documents no event or field gohot does not write.
    #[test]
    fn every_event_matches_docs_events_md() {
        let (envelope, events) = documented();
        let mut seen = Vec::new();
        for event in every_event() {
            let line = event.json_line(Some("api"), std::time::SystemTime::now());
            let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
            let object = value.as_object().expect("an object");
            let name = object["event"].as_str().expect("event").to_string();
            let fields = events.get(&name).unwrap_or_else(|| panic!("event {name} is not in docs/events.md"));
            let mut written = BTreeMap::new();
            for (key, v) in object {
                if let serde_json::Value::Object(inner) = v {
                    for (k, iv) in inner {
                        written.insert(format!("{key}.{k}"), json_type(iv));
                    }
                }
                if let Some(serde_json::Value::Object(inner)) = v.as_array().and_then(|a| a.first()) {
                    for (k, iv) in inner {
                        written.insert(format!("{key}[].{k}"), json_type(iv));
                    }
                }
                written.insert(key.clone(), json_type(v));
            }
            for (key, ty) in &written {
                let doc_ty = envelope.get(key).or(fields.get(key));
                let doc_ty = doc_ty.unwrap_or_else(|| panic!("{name}.{key} is not in docs/events.md"));
                // Integers are numbers too: a documented `number` may be written as 0.
                let ok = doc_ty == ty || (doc_ty == "number" && *ty == "integer");
                assert!(ok, "{name}.{key}: docs/events.md says {doc_ty}, gohot writes {ty}");
            }
            for key in envelope.keys().chain(fields.keys()) {
                assert!(written.contains_key(key), "docs/events.md documents {name}.{key}, which gohot does not write");
            }
            seen.push(name);
        }
        let documented: Vec<&String> = events.keys().collect();
        for name in documented {
            assert!(seen.contains(name), "docs/events.md documents {name}, which gohot does not send");
        }
        assert_eq!(envelope.get("version").map(String::as_str), Some("integer"));
    }

    #[test]
    fn envelope_version_and_time() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_547_800_123);
        let line = DevEvent::Unchanged.json_line(None, t);
        assert_eq!(line, r#"{"version":1,"time":"2025-12-01T00:10:00.123Z","event":"unchanged"}"#);
        // The app a service's event concerns comes right after `event`; `reloaded` names it itself.
        let line = DevEvent::Unchanged.json_line(Some("api"), t);
        assert_eq!(line, r#"{"version":1,"time":"2025-12-01T00:10:00.123Z","event":"unchanged","app":"api"}"#);
        let line = DevEvent::BuildStarted { files: vec!["a.go".into()] }.json_line(Some("a\"b"), t);
        assert!(line.ends_with(r#""event":"build_started","app":"a\"b","files":["a.go"]}"#), "{line}");
        let reloaded = DevEvent::Reloaded {
            app: "api".into(),
            files: vec![],
            timings: Timings::default(),
            bytes_sent: 0,
            binary_bytes: 0,
            replicas: 1,
            replicas_total: 1,
        };
        let value: serde_json::Value = serde_json::from_str(&reloaded.json_line(Some("api"), t)).unwrap();
        assert_eq!(value["app"], "api");
        assert_eq!(rfc3339_utc(std::time::Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(std::time::Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
