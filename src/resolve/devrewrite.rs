//! Dev-mode pod spec rewrite: run the app under watchexec so a synced binary restarts it.
//!
//! This module owns one pure transformation (a YAML value in, a "changed" flag out,
//! no I/O): in `gohot resolve/apply/dev --dev`, every container that runs this app's
//! image gets
//!
//! ```text
//! command: [/var/run/ko/watchexec, <watchexec_args(name)>..., --, <original command, or /ko-app/<name>>]
//! args:    <unchanged>
//! ```
//!
//! Kubernetes appends `args` to `command`, so the app sees exactly the argv it had
//! before, now supervised by watchexec, which restarts it when gohot renames a new
//! binary over `/ko-app/<name>`. The Docker target uses the same command
//! ([`dev_command`]) as its entrypoint.
//!
//! Under `--debug` ([`DevRewrite::debug`], ko's meaning), watchexec runs delve,
//! and delve runs the app ([`debug_command`]):
//!
//! ```text
//! command: [/var/run/ko/watchexec, <flags>..., --, /var/run/gohot/dlv, exec, --headless,
//!           --accept-multiclient, --continue, --api-version=2, --listen=:40000,
//!           --only-same-user=false, /ko-app/<name>, --, <original command's arguments>]
//! args:    <unchanged>
//! ```
//!
//! The final `--` makes `args` (and the original command's own arguments) the
//! app's, not delve's. A restart stops delve, which ends the process it runs.
//! delve traces its own child, which needs no capability under Docker's and
//! Kubernetes' default seccomp profiles; `--only-same-user=false` because a
//! port-forward reaches the pod's loopback as another user than the app's.
//!
//! Decisions worth knowing:
//!
//! * **Dev image layout** (fixed): app binary `/ko-app/<name>` in a directory of mode
//!   0777 (any uid, e.g. ko's default 65532, can rename a new binary in);
//!   watchexec in kodata at `/var/run/ko/watchexec`; the way-in helper at
//!   `/var/run/gohot/helper`.
//! * **Init containers are never rewritten**, even when they run the app image: an
//!   init container must exit for the pod to start, and watchexec never exits on its
//!   own, so wrapping it would hang the pod in `Init`. A user init container that runs
//!   the app image (a migration, say) runs the binary the image was built with.
//! * **Idempotent**: a command that already starts with the watchexec path is taken
//!   apart at its `--` and rebuilt with the current flags, so rewriting twice changes
//!   nothing, and a manifest rewritten by an older gohot gets today's flags.
//! * **`readOnlyRootFilesystem: true`** (a container-level field; the pod-level
//!   security context has none): the image's `/ko-app` cannot be written, so an
//!   `emptyDir` volume `gohot-app` is mounted at `/ko-app` in that container, and an
//!   init container `gohot-seed-<name>` running the same image (and the same
//!   `securityContext`, `resources` and `imagePullPolicy`, so admission policies that
//!   admitted the app admit it too) copies the image's own `/ko-app/<name>` into the
//!   volume with `/var/run/gohot/helper seed /ko-app/<name> /gohot-seed/<name>`.
//!   The root filesystem stays read-only; only the one directory becomes writable,
//!   and only in dev mode.
//! * Kinds: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
//!   Job, CronJob (`jobTemplate.spec.template`), PodTemplate, and `List`/`*List`
//!   (`items`). Other documents (including `kind: Deployment` of non-core API groups)
//!   are left alone.

use serde_yaml_ng::{Mapping, Value};

use crate::layout::{APP_DIR, DELVE_PATH, DELVE_PORT, HELPER_PATH, KODATA_PATH as KODATA_DIR, WATCHEXEC_PATH};

/// Name of the `emptyDir` volume mounted at [`APP_DIR`] under a read-only root.
pub const APP_VOLUME: &str = "gohot-app";
/// Where the seed init container mounts [`APP_VOLUME`].
pub const SEED_MOUNT: &str = "/gohot-seed";
/// Prefix of the seed init container's name (`gohot-seed-<name>`).
pub const SEED_CONTAINER_PREFIX: &str = "gohot-seed";

/// How long watchexec waits after SIGTERM before SIGKILL (well under Kubernetes'
/// default 30 s termination grace period, short enough to keep reloads quick).
pub const STOP_TIMEOUT: &str = "2s";

/// What to rewrite containers into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevRewrite {
    /// The app binary's name: the image runs `/ko-app/<app_name>`.
    pub app_name: String,
    /// `--debug`: the app runs under delve.
    pub debug: bool,
}

impl DevRewrite {
    /// Rewrite for the app whose binary is `/ko-app/<app_name>`.
    pub fn new(app_name: impl Into<String>) -> Self {
        DevRewrite { app_name: app_name.into(), debug: false }
    }

    /// The same, with the app under delve (`--debug`) or not.
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }
}

/// A manifest that cannot be rewritten safely (the document is left exactly as it was).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The binary name cannot be a file name in `/ko-app`.
    #[error("invalid app binary name {name:?}: expected a plain file name like \"app\"")]
    InvalidAppName {
        /// The name given.
        name: String,
    },
    /// A field has the wrong shape.
    #[error("{resource}: {path} must be {expected}; fix the manifest and run again")]
    InvalidField {
        /// `Kind/name` of the document (with its place in a List).
        resource: String,
        /// Dotted path of the field.
        path: String,
        /// What the field should be.
        expected: &'static str,
    },
    /// `--debug` runs the app binary under delve; this container runs something else.
    #[error(
        "{resource}: {path} starts with {first:?}, but --debug runs the app binary {binary} under delve: \
         make {binary} the command (or leave the command out) in dev mode"
    )]
    NotDebuggable {
        /// `Kind/name` of the document.
        resource: String,
        /// Dotted path of the command.
        path: String,
        /// What the command starts with.
        first: String,
        /// The app binary.
        binary: String,
    },
    /// The manifest already uses a name or path gohot needs.
    #[error(
        "{resource}: {path} {what}, which gohot needs for hot reload under \
         readOnlyRootFilesystem; rename or remove it in dev mode"
    )]
    Conflict {
        /// `Kind/name` of the document.
        resource: String,
        /// Dotted path of the conflicting field.
        path: String,
        /// What is in the way.
        what: String,
    },
}

type Result<T, E = RewriteError> = std::result::Result<T, E>;

/// watchexec's flags for supervising `/ko-app/<name>` (everything between the
/// watchexec path and `--`). Shared by the Kubernetes rewrite and the Docker target.
pub fn watchexec_args(name: &str) -> Vec<String> {
    args_for(APP_DIR, KODATA_DIR, name)
}

/// The full dev-mode command: watchexec, its flags, `--`, then `original`, or the app
/// entrypoint `/ko-app/<name>` when `original` is empty.
pub fn dev_command(name: &str, original: &[String]) -> Vec<String> {
    let mut cmd = vec![WATCHEXEC_PATH.to_owned()];
    cmd.extend(watchexec_args(name));
    cmd.push("--".to_owned());
    if original.is_empty() {
        cmd.push(format!("{APP_DIR}/{name}"));
    } else {
        cmd.extend(original.iter().cloned());
    }
    cmd
}

/// delve's command line for running `program` as ko's `--debug` does, up to
/// the `--` after which the app's own arguments follow.
pub fn delve_argv(program: &str) -> Vec<String> {
    let listen = format!("--listen=:{DELVE_PORT}");
    [DELVE_PATH, "exec", "--headless", "--accept-multiclient", "--continue", "--api-version=2", &listen]
        .into_iter()
        .chain(["--only-same-user=false", program, "--"])
        .map(str::to_owned)
        .collect()
}

/// The dev-mode command under `--debug`: watchexec, its flags, `--`, delve
/// running the app binary, `--`, the rest of `original`. `None` when
/// `original` starts with something other than the app binary (delve
/// debugs a Go program it starts itself, not a wrapper).
pub fn debug_command(name: &str, original: &[String]) -> Option<Vec<String>> {
    let binary = format!("{APP_DIR}/{name}");
    let rest = match original.split_first() {
        None => &[][..],
        Some((first, rest)) if *first == binary || first == name => rest,
        Some(_) => return None,
    };
    let mut cmd = vec![WATCHEXEC_PATH.to_owned()];
    cmd.extend(watchexec_args(name));
    cmd.push("--".to_owned());
    cmd.extend(delve_argv(&binary));
    cmd.extend(rest.iter().cloned());
    Some(cmd)
}

/// A command as the user wrote it, from one gohot rewrote (for watchexec,
/// and for delve under `--debug`): rewriting again, with or without
/// `--debug`, starts from it.
pub fn original_command(command: &[String]) -> Vec<String> {
    let mut cmd = command.to_vec();
    if cmd.first().is_some_and(|c| c == WATCHEXEC_PATH) {
        if let Some(sep) = cmd.iter().position(|a| a == "--") {
            cmd = cmd[sep + 1..].to_vec();
        }
    }
    if cmd.first().is_some_and(|c| c == DELVE_PATH) {
        // dlv exec [flags] PROGRAM -- ARGS
        let program = cmd.iter().skip(2).position(|a| !a.starts_with('-')).map(|i| i + 2);
        if let Some(p) = program {
            let args = match cmd.get(p + 1) {
                Some(sep) if sep == "--" => cmd[p + 2..].to_vec(),
                _ => cmd[p + 1..].to_vec(),
            };
            cmd = std::iter::once(cmd[p].clone()).chain(args).collect();
        }
    }
    cmd
}

/// The flags, for a layout rooted elsewhere (tests run the real watchexec in temp dirs).
fn args_for(app_dir: &str, kodata: &str, name: &str) -> Vec<String> {
    [
        // Run the app directly (execvp), argv passed verbatim: ko's bases have no shell,
        // and a shell would re-split arguments and sit between the app and its signals.
        "--shell=none".to_owned(),
        // A change while the app runs stops it and starts the new binary: exactly one
        // copy at a time (never two holding the same port). A crash is not retried: the
        // next synced binary starts it again, rather than a restart loop of a broken one.
        "--restart".to_owned(),
        // Stop (on restart, and when the pod is terminated) with SIGTERM, the signal
        // Kubernetes and Go servers use for graceful shutdown...
        "--stop-signal=SIGTERM".to_owned(),
        // ...then SIGKILL if it is still running after this long (< the 30 s grace period).
        format!("--stop-timeout={STOP_TIMEOUT}"),
        // Kill the app's whole process group on stop, so children it spawned go too.
        "--wrap-process=group".to_owned(),
        // gohot's helper replaces the binary with one rename, a single event: no
        // batching window is needed, and watchexec's default (50 ms) would be
        // most of a reload's own cost. 5 ms still folds the events of one
        // kodata sync together.
        "--debounce=5ms".to_owned(),
        // Leave the app's environment and stdin alone, and write no temp event files
        // (which would fail under a read-only root).
        "--emit-events-to=none".to_owned(),
        // Load no VCS, project or global ignore files (none matter in an image), and don't
        // search upwards for a project: the filters below say exactly what counts.
        "--no-discover-ignore".to_owned(),
        // Absolute filter patterns below are anchored at `/`.
        "--project-origin=/".to_owned(),
        // Watch the binary's directory only, not recursively...
        format!("--watch-non-recursive={app_dir}"),
        // ...and kodata, so an app that reads templates/config at startup sees synced files.
        format!("--watch={kodata}"),
        // Only the binary itself counts in its directory: the helper's temp file there is
        // not a reason to restart, only the rename over the binary is.
        format!("--filter={app_dir}/{name}"),
        format!("--filter={kodata}/**"),
        // Hidden files in kodata (temp files of an atomic sync) do not restart the app.
        format!("--ignore={kodata}/**/.*"),
        // Content changes only: a chmod/touch or a delete of the binary is not a new binary.
        "--fs-events=create,rename,modify".to_owned(),
        // No desktop notifications: watchexec sends none unless --notify is given, so none
        // is. SIGINT/SIGTERM to watchexec stop the app as above and exit watchexec; other
        // signals (HUP, USR1, USR2, ...) are forwarded to the app as they are.
    ]
    .into()
}

/// Rewrite one manifest document for dev mode; `Ok(true)` if anything changed.
///
/// `is_app_image` says whether a container's `image` is this app's (resolved) image.
/// Documents of other kinds, empty documents and non-mappings are left alone.
pub fn rewrite_document(doc: &mut Value, is_app_image: &dyn Fn(&str) -> bool, opts: &DevRewrite) -> Result<bool> {
    check_name(&opts.app_name)?;
    // Work on a copy so that an error half way leaves the document untouched.
    let mut work = doc.clone();
    let changed = rewrite_value(&mut work, is_app_image, opts, "")?;
    if changed {
        *doc = work;
    }
    Ok(changed)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']) && name.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(RewriteError::InvalidAppName { name: name.to_owned() })
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn rewrite_value(doc: &mut Value, is_app_image: &dyn Fn(&str) -> bool, opts: &DevRewrite, place: &str) -> Result<bool> {
    if !doc.is_mapping() {
        return Ok(false);
    }
    let kind = str_field(doc, "kind").unwrap_or_default().to_owned();
    let resource =
        format!("{place}{kind}/{}", doc.get("metadata").and_then(|m| str_field(m, "name")).unwrap_or("<unnamed>"));
    if kind == "List" || (kind.ends_with("List") && doc.get("items").is_some()) {
        let Some(items) = doc.get_mut("items") else {
            return Ok(false);
        };
        let Some(items) = items.as_sequence_mut() else {
            return Err(invalid(&resource, "items", "a list"));
        };
        let mut changed = false;
        for (i, item) in items.iter_mut().enumerate() {
            changed |= rewrite_value(item, is_app_image, opts, &format!("{resource} items[{i}]: "))?;
        }
        return Ok(changed);
    }
    let group = str_field(doc, "apiVersion").and_then(|v| v.rsplit_once('/')).map(|(g, _)| g);
    let core_group = matches!(group, None | Some("apps" | "batch" | "extensions"));
    let path: &[&str] = match kind.as_str() {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return Ok(false),
    };
    if !core_group {
        return Ok(false);
    }
    let mut spec = &mut *doc;
    for key in path {
        match spec.get_mut(*key) {
            Some(next) if next.is_mapping() => spec = next,
            Some(Value::Null) | None => return Ok(false),
            Some(_) => return Err(invalid(&resource, &path.join("."), "a mapping")),
        }
    }
    PodSpec { resource: &resource, prefix: path.join("."), opts }.rewrite(spec, is_app_image)
}

fn invalid(resource: &str, path: &str, expected: &'static str) -> RewriteError {
    RewriteError::InvalidField { resource: resource.to_owned(), path: path.to_owned(), expected }
}

struct PodSpec<'a> {
    resource: &'a str,
    prefix: String,
    opts: &'a DevRewrite,
}

impl PodSpec<'_> {
    fn invalid(&self, field: &str, expected: &'static str) -> RewriteError {
        invalid(self.resource, &format!("{}.{field}", self.prefix), expected)
    }

    fn conflict(&self, field: &str, what: String) -> RewriteError {
        RewriteError::Conflict { resource: self.resource.to_owned(), path: format!("{}.{field}", self.prefix), what }
    }

    fn rewrite(&self, spec: &mut Value, is_app_image: &dyn Fn(&str) -> bool) -> Result<bool> {
        let name = self.opts.app_name.as_str();
        let mut changed = false;
        // Images of read-only-root app containers, with what the seed container copies.
        let mut seeds: Vec<Value> = Vec::new();
        match spec.get_mut("containers") {
            None | Some(Value::Null) => return Ok(false),
            Some(Value::Sequence(containers)) => {
                for (i, c) in containers.iter_mut().enumerate() {
                    let field = format!("containers[{i}]");
                    let Some(image) = c.get("image").and_then(Value::as_str) else {
                        continue;
                    };
                    if !is_app_image(image) {
                        continue;
                    }
                    let image = image.to_owned();
                    let Some(c) = c.as_mapping_mut() else {
                        return Err(self.invalid(&field, "a mapping"));
                    };
                    changed |= self.rewrite_command(c, &field)?;
                    if read_only_root(c) {
                        changed |= self.mount_app_volume(c, &field)?;
                        if !seeds.iter().any(|s| s.get("image").and_then(Value::as_str) == Some(&image)) {
                            seeds.push(seed_container(name, &image, c));
                        }
                    }
                }
            }
            Some(_) => return Err(self.invalid("containers", "a list")),
        }
        if !seeds.is_empty() {
            let Some(spec) = spec.as_mapping_mut() else {
                return Ok(changed);
            };
            changed |= self.add_volume(spec)?;
            changed |= self.add_seeds(spec, seeds)?;
        }
        Ok(changed)
    }

    /// `command: [watchexec, flags.., --, original or /ko-app/<name>]`, placed before `args`
    /// (or after `image`) when it is new.
    fn rewrite_command(&self, c: &mut Mapping, field: &str) -> Result<bool> {
        let name = self.opts.app_name.as_str();
        let original: Vec<String> = match c.get("command") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| self.invalid(&format!("{field}.command"), "a list of strings"))?,
            Some(_) => return Err(self.invalid(&format!("{field}.command"), "a list of strings")),
        };
        // Already rewritten (by this or an older gohot, with or without --debug): start from the user's.
        let original = original_command(&original);
        let command = if self.opts.debug {
            debug_command(name, &original).ok_or_else(|| RewriteError::NotDebuggable {
                resource: self.resource.to_owned(),
                path: format!("{}.{field}.command", self.prefix),
                first: original.first().cloned().unwrap_or_default(),
                binary: format!("{APP_DIR}/{name}"),
            })?
        } else {
            dev_command(name, &original)
        };
        let new = Value::Sequence(command.into_iter().map(Value::String).collect());
        if c.get("command") == Some(&new) {
            return Ok(false);
        }
        if c.contains_key("command") {
            c.insert("command".into(), new);
        } else {
            let has_args = c.contains_key("args");
            let old = std::mem::take(c);
            let mut new = Some(new);
            for (k, v) in old {
                let at_args = has_args && k.as_str() == Some("args");
                if at_args {
                    if let Some(cmd) = new.take() {
                        c.insert("command".into(), cmd);
                    }
                }
                let after_image = !has_args && k.as_str() == Some("image");
                c.insert(k, v);
                if after_image {
                    if let Some(cmd) = new.take() {
                        c.insert("command".into(), cmd);
                    }
                }
            }
            if let Some(cmd) = new {
                c.insert("command".into(), cmd);
            }
        }
        Ok(true)
    }

    /// Mount `gohot-app` at `/ko-app` in a read-only-root app container.
    fn mount_app_volume(&self, c: &mut Mapping, field: &str) -> Result<bool> {
        let mounts = c.entry("volumeMounts".into()).or_insert_with(|| Value::Sequence(Vec::new()));
        if mounts.is_null() {
            *mounts = Value::Sequence(Vec::new());
        }
        let Some(mounts) = mounts.as_sequence_mut() else {
            return Err(self.invalid(&format!("{field}.volumeMounts"), "a list"));
        };
        for (i, m) in mounts.iter().enumerate() {
            let path = str_field(m, "mountPath").map(|p| p.trim_end_matches('/'));
            let vol = str_field(m, "name");
            match (path == Some(APP_DIR), vol == Some(APP_VOLUME)) {
                (true, true) => return Ok(false),
                (false, false) => {}
                (true, false) => {
                    return Err(self.conflict(
                        &format!("{field}.volumeMounts[{i}]"),
                        format!("mounts volume {:?} at {APP_DIR}", vol.unwrap_or_default()),
                    ));
                }
                (false, true) => {
                    return Err(self.conflict(
                        &format!("{field}.volumeMounts[{i}]"),
                        format!("mounts a volume named {APP_VOLUME} at {:?}", path.unwrap_or_default()),
                    ));
                }
            }
        }
        mounts.push(mapping([("name", APP_VOLUME.into()), ("mountPath", APP_DIR.into())]));
        Ok(true)
    }

    /// Add the `gohot-app` emptyDir to the pod.
    fn add_volume(&self, spec: &mut Mapping) -> Result<bool> {
        let volumes = spec.entry("volumes".into()).or_insert_with(|| Value::Sequence(Vec::new()));
        if volumes.is_null() {
            *volumes = Value::Sequence(Vec::new());
        }
        let Some(volumes) = volumes.as_sequence_mut() else {
            return Err(self.invalid("volumes", "a list"));
        };
        for (i, v) in volumes.iter().enumerate() {
            if str_field(v, "name") == Some(APP_VOLUME) {
                if v.get("emptyDir").is_some() {
                    return Ok(false);
                }
                return Err(self.conflict(
                    &format!("volumes[{i}]"),
                    format!("is a volume named {APP_VOLUME} that is not an emptyDir"),
                ));
            }
        }
        volumes.push(mapping([("name", APP_VOLUME.into()), ("emptyDir", Value::Mapping(Mapping::new()))]));
        Ok(true)
    }

    /// Put the seed init containers first (replacing stale ones of the same name).
    fn add_seeds(&self, spec: &mut Mapping, seeds: Vec<Value>) -> Result<bool> {
        let inits = spec.entry("initContainers".into()).or_insert_with(|| Value::Sequence(Vec::new()));
        if inits.is_null() {
            *inits = Value::Sequence(Vec::new());
        }
        let Some(inits) = inits.as_sequence_mut() else {
            return Err(self.invalid("initContainers", "a list"));
        };
        let mut changed = false;
        for (n, seed) in seeds.into_iter().enumerate() {
            let name = str_field(&seed, "name");
            match inits.iter().position(|c| str_field(c, "name") == name) {
                Some(i) if inits[i] == seed => {}
                Some(i) => {
                    inits[i] = seed;
                    changed = true;
                }
                None => {
                    inits.insert(n.min(inits.len()), seed);
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}

fn mapping<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(pairs.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

fn read_only_root(c: &Mapping) -> bool {
    c.get("securityContext").and_then(|s| s.get("readOnlyRootFilesystem")).and_then(Value::as_bool) == Some(true)
}

/// The init container that copies the image's `/ko-app/<name>` into the `gohot-app` volume.
fn seed_container(name: &str, image: &str, app: &Mapping) -> Value {
    let mut seed = Mapping::new();
    seed.insert("name".into(), seed_container_name(name).into());
    seed.insert("image".into(), image.into());
    if let Some(policy) = app.get("imagePullPolicy") {
        seed.insert("imagePullPolicy".into(), policy.clone());
    }
    seed.insert(
        "command".into(),
        Value::Sequence(
            [HELPER_PATH, "seed", &format!("{APP_DIR}/{name}"), &format!("{SEED_MOUNT}/{name}")]
                .into_iter()
                .map(Value::from)
                .collect(),
        ),
    );
    seed.insert(
        "volumeMounts".into(),
        Value::Sequence(vec![mapping([("name", APP_VOLUME.into()), ("mountPath", SEED_MOUNT.into())])]),
    );
    for key in ["securityContext", "resources"] {
        if let Some(v) = app.get(key) {
            seed.insert(key.into(), v.clone());
        }
    }
    Value::Mapping(seed)
}

/// `gohot-seed-<name>` made a valid container name (DNS-1123 label, at most 63 chars).
fn seed_container_name(name: &str) -> String {
    let mut label: String = format!("{SEED_CONTAINER_PREFIX}-{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    label.truncate(63);
    label.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn is_app(img: &str) -> bool {
        img.starts_with("registry.local/app@sha256:")
    }

    fn opts() -> DevRewrite {
        DevRewrite::new("app")
    }

    /// Split a multi-document stream (empty documents dropped, as the main repo does).
    fn docs(text: &str) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect()
    }

    fn render(docs: &[Value]) -> String {
        docs.iter().map(|d| serde_yaml_ng::to_string(d).unwrap()).collect::<Vec<_>>().join("---\n")
    }

    fn rewrite_all(docs: &mut [Value], opts: &DevRewrite) -> bool {
        let mut changed = false;
        for d in docs {
            changed |= rewrite_document(d, &is_app, opts).unwrap();
        }
        changed
    }

    #[test]
    fn golden() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/devrewrite");
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 10, "golden pairs missing in {}", dir.display());
        // GOLDEN_BLESS rewrites the expectations from today's output (and
        // passes): for a person reviewing the diff, never for CI.
        let bless = std::env::var_os("GOLDEN_BLESS").is_some();
        assert!(
            !(bless && std::env::var("CI").as_deref() == Ok("true")),
            "GOLDEN_BLESS is set under CI=true: CI checks the goldens, it never rewrites them"
        );
        let mut failures = Vec::new();
        for input in inputs {
            let out_path = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.yaml"));
            let mut got = docs(&std::fs::read_to_string(&input).unwrap());
            // `NN-debug-…` pairs are rewritten under --debug.
            let name = input.file_name().unwrap().to_string_lossy().into_owned();
            let opts = opts().with_debug(name.split('-').nth(1) == Some("debug"));
            let changed = rewrite_all(&mut got, &opts);
            let rendered = render(&got);
            if bless {
                std::fs::write(&out_path, &rendered).unwrap();
            }
            let want = render(&docs(&std::fs::read_to_string(&out_path).unwrap()));
            if rendered != want {
                failures.push(format!("{}:\n--- want\n{want}\n--- got\n{rendered}", input.display()));
                continue;
            }
            let unchanged = input.to_string_lossy().contains("unchanged");
            assert_eq!(changed, !unchanged, "{}: changed flag", input.display());
            // Idempotent: rewriting the output changes nothing.
            let mut again = got.clone();
            assert!(!rewrite_all(&mut again, &opts), "{}: second rewrite changed something", input.display());
            assert_eq!(again, got, "{}", input.display());
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn dev_command_shape() {
        let cmd = dev_command("app", &[]);
        assert_eq!(cmd[0], WATCHEXEC_PATH);
        let sep = cmd.iter().position(|a| a == "--").unwrap();
        assert_eq!(&cmd[sep + 1..], ["/ko-app/app"]);
        assert_eq!(&cmd[1..sep], watchexec_args("app").as_slice());
        for flag in [
            "--shell=none",
            "--restart",
            "--stop-signal=SIGTERM",
            "--watch-non-recursive=/ko-app",
            "--filter=/ko-app/app",
        ] {
            assert!(cmd.iter().any(|a| a == flag), "{flag} missing: {cmd:?}");
        }
        let cmd = dev_command("app", &["/ko-app/app".into(), "serve".into()]);
        assert_eq!(&cmd[cmd.len() - 3..], ["--", "/ko-app/app", "serve"]);
    }

    #[test]
    fn debug_command_shape() {
        let cmd = debug_command("app", &[]).unwrap();
        let sep = cmd.iter().position(|a| a == "--").unwrap();
        assert_eq!(&cmd[..sep], dev_command("app", &[]).split(|a| a == "--").next().unwrap());
        assert_eq!(
            &cmd[sep + 1..],
            [
                "/var/run/gohot/dlv",
                "exec",
                "--headless",
                "--accept-multiclient",
                "--continue",
                "--api-version=2",
                "--listen=:40000",
                "--only-same-user=false",
                "/ko-app/app",
                "--"
            ]
        );
        let cmd = debug_command("app", &["/ko-app/app".into(), "serve".into()]).unwrap();
        assert_eq!(&cmd[cmd.len() - 3..], ["/ko-app/app", "--", "serve"]);
        assert_eq!(original_command(&cmd), ["/ko-app/app", "serve"]);
        assert_eq!(original_command(&dev_command("app", &[])), ["/ko-app/app"]);
        assert!(debug_command("app", &["/bin/sh".into(), "-c".into(), "exec /ko-app/app".into()]).is_none());

        let mut doc: Value = serde_yaml_ng::from_str(
            "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: registry.local/app@sha256:1\n    command: [/bin/sh, -c, exec /ko-app/app]\n",
        )
        .unwrap();
        let before = doc.clone();
        let err = rewrite_document(&mut doc, &is_app, &opts().with_debug(true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Pod/p: spec.containers[0].command starts with \"/bin/sh\", but --debug runs the app binary /ko-app/app \
             under delve: make /ko-app/app the command (or leave the command out) in dev mode"
        );
        assert_eq!(doc, before, "nothing changed");
    }

    #[test]
    fn errors_name_the_field() {
        let mut doc: Value = serde_yaml_ng::from_str(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: registry.local/app@sha256:1\n        command: /ko-app/app\n",
        )
        .unwrap();
        let err = rewrite_document(&mut doc, &is_app, &opts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deployment/web: spec.template.spec.containers[0].command must be a list of strings; fix the manifest and run again"
        );
        let err = rewrite_document(&mut doc, &is_app, &DevRewrite::new("../x")).unwrap_err();
        assert!(matches!(err, RewriteError::InvalidAppName { .. }));

        let mut doc: Value = serde_yaml_ng::from_str(
            "kind: Pod\nmetadata: {name: p}\nspec:\n  volumes: [{name: gohot-app, configMap: {name: x}}]\n  containers:\n  - name: a\n    image: registry.local/app@sha256:1\n    securityContext: {readOnlyRootFilesystem: true}\n",
        )
        .unwrap();
        let err = rewrite_document(&mut doc, &is_app, &opts()).unwrap_err();
        assert!(matches!(err, RewriteError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("spec.volumes[0]"), "{err}");
    }

    #[test]
    fn other_documents_are_untouched() {
        for text in [
            "",
            "kind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n",
            "apiVersion: example.com/v1\nkind: Deployment\nspec: {template: {spec: {containers: [{name: a, image: 'registry.local/app@sha256:1'}]}}}\n",
            "kind: Deployment\nspec: {}\n",
            "- a\n- b\n",
        ] {
            let mut doc: Value = serde_yaml_ng::from_str(text).unwrap_or(Value::Null);
            let before = doc.clone();
            assert!(!rewrite_document(&mut doc, &is_app, &opts()).unwrap(), "{text}");
            assert_eq!(doc, before);
        }
    }

    #[test]
    fn seed_names_are_valid_container_names() {
        assert_eq!(seed_container_name("app"), "gohot-seed-app");
        assert_eq!(seed_container_name("My_App.v2"), "gohot-seed-my-app-v2");
        let long = seed_container_name(&"x".repeat(100));
        assert_eq!(long.len(), 63);
    }

    // ---------- the flags, with the real watchexec ----------

    /// A supervised "app": logs its start, pid, argv and the signals it gets.
    const APP: &str = r#"#!/bin/sh
echo "start $$ $1|$2" >> "$LOG"
trap 'echo "term $$" >> "$LOG"; exit 7' TERM
trap 'echo "hup $$" >> "$LOG"' HUP
while :; do sleep 0.05; done
"#;

    struct Supervised {
        child: std::process::Child,
        log: PathBuf,
        /// watchexec's stderr, where `--print-events` names the events it acted on.
        stderr: PathBuf,
    }

    impl Drop for Supervised {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Supervised {
        fn log(&self) -> Vec<String> {
            std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
        }

        /// Wait until the log has a line for which `want` holds at index `from` or
        /// later; panic after a deadline.
        fn wait_line(&self, what: &str, from: usize, want: impl Fn(&str) -> bool) -> Vec<String> {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let log = self.log();
                if log.iter().skip(from).any(|l| want(l)) {
                    return log;
                }
                assert!(std::time::Instant::now() < deadline, "waited for {what}; the app's log: {log:?}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }

        /// The file events watchexec acted on so far, as `--print-events` names them.
        fn acted_on(&self) -> Vec<String> {
            let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            text.lines()
                .filter(|l| l.starts_with("[EVENT") && l.contains("source=Filesystem"))
                .map(str::to_owned)
                .collect()
        }

        fn signal(&self, sig: &str) {
            let ok = std::process::Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
            assert!(ok.success());
        }
    }

    /// Where a test is in the app's log and in watchexec's acted-on events.
    struct Seen {
        lines: usize,
        acted: usize,
    }

    impl Seen {
        /// The change `what` restarted the app exactly once, into a process
        /// that logs `label`, and watchexec acted on renames onto `path` only.
        fn restarted(&mut self, sup: &Supervised, what: &str, label: &str, path: &Path) {
            let started = |l: &str| l.starts_with(&format!("{label} "));
            let log = sup.wait_line(&format!("{label:?} to start after {what}"), self.lines + 1, started);
            let new = &log[self.lines..];
            assert!(
                new.len() == 2 && new[0].starts_with("term ") && started(&new[1]),
                "{what}: want exactly one restart (the old process stopped, {label:?} started), got {new:?}"
            );
            let acted = sup.acted_on();
            let rename_onto = format!("path={} ", path.display());
            let new_events = &acted[self.acted..];
            assert!(
                !new_events.is_empty()
                    && new_events.iter().all(|e| e.contains("kind=Modify(Name(") && e.contains(&rename_onto)),
                "{what}: watchexec acted on events other than renames onto {}: {new_events:#?}",
                path.display()
            );
            *self = Seen { lines: log.len(), acted: acted.len() };
        }
    }

    #[test]
    fn real_watchexec_restarts_only_on_a_new_binary() {
        use std::os::unix::fs::PermissionsExt;
        let wx = crate::devimage::watchexec::tests::real_watchexec();
        let root = tempfile::Builder::new().prefix("gohot-flags-").tempdir().unwrap();
        let app_dir = root.path().join("ko-app");
        let kodata = root.path().join("kodata");
        std::fs::create_dir_all(&app_dir).unwrap();
        std::fs::create_dir_all(&kodata).unwrap();
        std::fs::write(kodata.join("index.html"), "v1").unwrap();
        let write_app_text = |path: &Path, text: &str| {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let bin = app_dir.join("app");
        write_app_text(&bin, APP);
        let log = root.path().join("log");
        let stderr = root.path().join("watchexec.stderr");

        let mut cmd = std::process::Command::new(wx);
        cmd.args(args_for(app_dir.to_str().unwrap(), kodata.to_str().unwrap(), "app"))
            // Only prints: the events each restart was for, read by Seen::restarted.
            .arg("--print-events")
            .arg("--")
            .arg(&bin)
            .args(["two words", "$(NOT_EXPANDED)"])
            .env("LOG", &log)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let sup = Supervised { child: cmd.spawn().unwrap(), log, stderr };
        let l = sup.wait_line("the app to start", 0, |_| true);
        assert!(l[0].ends_with("two words|$(NOT_EXPANDED)"), "argv passed verbatim, no shell: {l:?}");
        let mut seen = Seen { lines: 1, acted: 0 };

        // Each change that must not restart the app is followed by a new binary,
        // written as the helper writes it (a temp file beside it, renamed over it),
        // whose process logs a label of its own. watchexec handles events in
        // order, so once that process has started, the earlier change has been
        // handled: a wrong restart for it would be a restart more in the log, or,
        // had it fallen into the rename's batch, an event watchexec acted on.
        let tmp = app_dir.join(".app.gohot-tmp");
        let new_binary = |label: &str| {
            write_app_text(&tmp, &APP.replace("echo \"start", &format!("echo \"{label}")));
            std::fs::rename(&tmp, &bin).unwrap();
        };
        // The helper's temp file appears (no restart), then is renamed over the
        // binary (one restart: SIGTERM to the old process, then a new one).
        new_binary("new-1");
        seen.restarted(&sup, "a new binary", "new-1", &bin);
        std::fs::write(app_dir.join("other"), "x").unwrap();
        new_binary("new-2");
        seen.restarted(&sup, "another file in /ko-app", "new-2", &bin);
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o775)).unwrap();
        new_binary("new-3");
        seen.restarted(&sup, "a chmod of the binary", "new-3", &bin);
        let hidden = kodata.join(".index.html.tmp");
        std::fs::write(&hidden, "v2").unwrap();
        new_binary("new-4");
        seen.restarted(&sup, "a hidden kodata temp file", "new-4", &bin);
        // A kodata file renamed into place restarts the app (the same binary)
        // exactly once: a second restart would come before the next binary's.
        std::fs::rename(&hidden, kodata.join("index.html")).unwrap();
        seen.restarted(&sup, "a kodata file renamed into place", "new-4", &kodata.join("index.html"));
        new_binary("new-5");
        seen.restarted(&sup, "a new binary after kodata", "new-5", &bin);

        // Other signals reach the app; SIGTERM stops it (SIGTERM) and watchexec exits.
        let n = seen.lines;
        sup.signal("-HUP");
        let l = sup.wait_line("the app to get SIGHUP", n, |l| l.starts_with("hup "));
        assert_eq!(l.len(), n + 1, "{l:?}");
        sup.signal("-TERM");
        sup.wait_line("the app to get SIGTERM", n + 1, |l| l.starts_with("term "));
        let mut sup = sup;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sup.child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "watchexec did not exit after SIGTERM");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
