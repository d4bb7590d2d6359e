//! `gohot skaffold sync`: gohot's hot reload as a Skaffold sync hook.
//!
//! # Theory of operation
//!
//! Skaffold decides, per save, between a sync and a rebuild: when every
//! changed file of an artifact matches one of its `sync.manual` rules it
//! syncs, running the artifact's `sync.hooks` (`before` the copy, then
//! `after`) with the hook environment of `pkg/skaffold/hooks/sync.go`; any
//! other change rebuilds. A rule `src: '**/*.go'` whose `dest` is
//! [`crate::layout::DISCARD_DIR`] therefore turns a Go save into a sync
//! whose copy the dev image's `tar` drops, and a `before` host hook running
//! `gohot skaffold sync` does the real work:
//!
//! 1. [`SyncHookEnv::from_env`] reads what Skaffold passes: `SKAFFOLD_IMAGE`
//!    (the tag its pods run), `SKAFFOLD_BUILD_CONTEXT`,
//!    `SKAFFOLD_FILES_ADDED_OR_MODIFIED` and `SKAFFOLD_FILES_DELETED`
//!    (`;`-separated), `SKAFFOLD_KUBE_CONTEXT` and `SKAFFOLD_NAMESPACES`
//!    (`,`-separated);
//! 2. when a changed file is not kodata ([`SyncHookEnv::needs_build`]), the
//!    dev binary is compiled on the host (the same `go build` as the dev
//!    image's, into the same cache file);
//! 3. every running container in those namespaces whose image is
//!    `SKAFFOLD_IMAGE` — Skaffold's own rule in `sync.Perform` — gets it
//!    through the way-in helper ([`put_binary`]): a delta against the binary
//!    it holds when that is the one gohot built before, else the whole file,
//!    written to a temporary file and renamed over
//!    `/ko-app/<name>`; the helper waits until watchexec has started the new
//!    process.
//!
//! No image is built and no pod is replaced; `go.mod`, `go.sum` and files
//! no rule covers still go through Skaffold's rebuild.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::SkaffoldError;
use crate::cluster::workload::{AppImage, PodSelector, Workload};
use crate::cluster::Cluster;
use crate::devimage::DevBuilder;
use crate::hosting::kube::KubeTarget;
use crate::hosting::Target;
use crate::reload::{Binary, Probe, ReloadOptions, Reloader, ReplicaOutcome};

/// What Skaffold tells a sync hook (`hooks.SyncEnvOpts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncHookEnv {
    /// `SKAFFOLD_IMAGE`: the image reference the artifact's pods run.
    pub image: String,
    /// `SKAFFOLD_BUILD_CONTEXT`: the artifact's context, absolute.
    pub build_context: std::path::PathBuf,
    /// `SKAFFOLD_FILES_ADDED_OR_MODIFIED`, split on `;`.
    pub changed: Vec<String>,
    /// `SKAFFOLD_FILES_DELETED`, split on `;`.
    pub deleted: Vec<String>,
    /// `SKAFFOLD_KUBE_CONTEXT` (empty: the kubeconfig's current context).
    pub kube_context: Option<String>,
    /// `SKAFFOLD_NAMESPACES`, split on `,` (empty: the context's namespace).
    pub namespaces: Vec<String>,
}

fn split(v: Option<String>, sep: char) -> Vec<String> {
    v.unwrap_or_default().split(sep).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

impl SyncHookEnv {
    /// Reads the hook environment from `lookup`, naming a missing variable.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SkaffoldError> {
        let need = |name: &'static str| {
            lookup(name).filter(|v| !v.trim().is_empty()).ok_or(SkaffoldError::MissingVar {
                name,
                hint: "Skaffold sets it for sync hooks; run `gohot skaffold sync` as a `sync.hooks.before` host \
                       hook of the artifact (see docs/skaffold.md)",
            })
        };
        let image = need("SKAFFOLD_IMAGE")?.trim().to_string();
        let build_context = std::path::PathBuf::from(need("SKAFFOLD_BUILD_CONTEXT")?);
        if !build_context.is_dir() {
            return Err(SkaffoldError::BadVar {
                name: "SKAFFOLD_BUILD_CONTEXT",
                value: build_context.display().to_string(),
                reason: "not a directory".into(),
            });
        }
        Ok(SyncHookEnv {
            image,
            build_context,
            changed: split(lookup("SKAFFOLD_FILES_ADDED_OR_MODIFIED"), ';'),
            deleted: split(lookup("SKAFFOLD_FILES_DELETED"), ';'),
            kube_context: lookup("SKAFFOLD_KUBE_CONTEXT").filter(|c| !c.trim().is_empty()),
            namespaces: split(lookup("SKAFFOLD_NAMESPACES"), ','),
        })
    }

    /// Whether the binary must be rebuilt: some changed or deleted file is
    /// not under `kodata` (Skaffold copies kodata itself, by its rule).
    /// Paths are absolute, or relative to the build context.
    pub fn needs_build(&self, kodata: &std::path::Path) -> bool {
        self.changed.iter().chain(&self.deleted).any(|f| {
            let p = self.build_context.join(f);
            !p.starts_with(kodata)
        })
    }
}

/// What a hook run came to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookOutcome {
    /// Only kodata changed: Skaffold's own copy (by its kodata rule) covers it.
    NothingToBuild,
    /// The sources do not compile (the compiler's output): the old binary
    /// keeps running.
    CompileFailed(String),
    /// The new binary runs in every container of the artifact.
    Reloaded {
        /// The binary's name.
        name: String,
        /// `go build`.
        build: Duration,
        /// Its size.
        binary_bytes: u64,
        /// What the puts did.
        report: HookReport,
    },
}

/// One hook run: builds `package` (relative to the build context, which
/// is `builder`'s working directory) when a changed file needs it, and puts
/// the binary into every running container in `env`'s namespaces (else the
/// context's) whose image is `SKAFFOLD_IMAGE`.
pub async fn run_hook(
    builder: &DevBuilder,
    cluster: Cluster,
    env: &SyncHookEnv,
    package: &str,
    restart_timeout: Duration,
) -> Result<HookOutcome, SkaffoldError> {
    let pkg = builder.inner().package(package).await?;
    if !env.needs_build(&pkg.dir.join("kodata")) {
        return Ok(HookOutcome::NothingToBuild);
    }
    let platform = builder.platform()?;
    let cached = crate::cache::binary_path(&builder.inner().cache_root(), &pkg.import_path, &platform);
    let previous = std::fs::read(&cached).ok().map(Bytes::from);
    let started = Instant::now();
    let built = match builder.compile(&pkg, package, &platform).await {
        Ok(path) => path,
        Err(e) => match e.compiler_output() {
            Some(out) => return Ok(HookOutcome::CompileFailed(out.to_string())),
            None => return Err(e.into()),
        },
    };
    let build = started.elapsed();
    let binary = Bytes::from(std::fs::read(&built).map_err(|source| SkaffoldError::Io { path: built, source })?);
    let namespaces =
        if env.namespaces.is_empty() { vec![cluster.context.namespace.clone()] } else { env.namespaces.clone() };
    let workloads = namespaces
        .iter()
        .cloned()
        .map(|ns| Workload { kind: "Namespace".into(), name: ns.clone(), namespace: ns, selector: PodSelector::All })
        .collect();
    let target = KubeTarget::new(
        cluster,
        workloads,
        AppImage::new(&env.image),
        vec![platform],
        // Other pods of the namespace are none of this hook's business.
        Box::new(|m: &str| tracing::debug!("{m}")),
    );
    let name = pkg.binary_name();
    let dest = crate::layout::app_binary(&name);
    let binary_bytes = binary.len() as u64;
    let report = put_binary(&target, &dest, binary, previous, restart_timeout).await?;
    if report.updated.is_empty() && report.unchanged.is_empty() {
        return Err(SkaffoldError::NoReplica { image: env.image.clone(), namespaces: namespaces.join(",") });
    }
    Ok(HookOutcome::Reloaded { name, build, binary_bytes, report })
}

/// What one hook run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookReport {
    /// Replicas that now run the new binary (restart confirmed).
    pub updated: Vec<String>,
    /// Replicas that already held it.
    pub unchanged: Vec<String>,
    /// Bytes sent over all replicas.
    pub bytes_sent: u64,
    /// Longest put (encoding, transfer, rename), per replica.
    pub sync: Duration,
    /// Longest restart (rename → new process), per replica.
    pub restart: Duration,
}

/// Sends `binary` (at `dest` in the container) to every replica of
/// `target` in parallel, through the reload layer with one exec per
/// request (a hook run is short-lived); `previous` is the binary gohot
/// built before, the base of a delta for replicas that hold it. Errors name
/// the replica; no replica at all is an empty report.
pub async fn put_binary(
    target: &dyn Target,
    dest: &str,
    binary: Bytes,
    previous: Option<Bytes>,
    restart_timeout: Duration,
) -> Result<HookReport, SkaffoldError> {
    let opts = ReloadOptions {
        app: dest.rsplit('/').next().unwrap_or(dest).to_string(),
        dest: dest.to_string(),
        restart_timeout,
        probe: Probe::Started,
        one_shot: true,
    };
    let mut reloader = Reloader::new(target, opts, previous.map(Binary::new));
    let pushed = reloader.push_binary(Binary::new(binary)).await;
    let failures = pushed.failures();
    if !failures.is_empty() {
        return Err(SkaffoldError::Put(failures));
    }
    let mut report =
        HookReport { bytes_sent: pushed.bytes_sent, sync: pushed.sync, restart: pushed.restart, ..Default::default() };
    for (r, outcome) in pushed.replicas {
        match outcome {
            ReplicaOutcome::Updated { .. } => report.updated.push(r.name),
            ReplicaOutcome::Unchanged => report.unchanged.push(r.name),
            ReplicaOutcome::Failed(_) => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_skaffolds_hook_environment() {
        let dir = std::env::temp_dir();
        let ctx = dir.display().to_string();
        let e = SyncHookEnv::from_env(&env(&[
            ("SKAFFOLD_IMAGE", "127.0.0.1:5000/hello:v1@sha256:ab"),
            ("SKAFFOLD_BUILD_CONTEXT", &ctx),
            ("SKAFFOLD_FILES_ADDED_OR_MODIFIED", &format!("{ctx}/main.go;{ctx}/lib/l.go")),
            ("SKAFFOLD_FILES_DELETED", ""),
            ("SKAFFOLD_KUBE_CONTEXT", "realkube"),
            ("SKAFFOLD_NAMESPACES", "default,dev"),
        ]))
        .unwrap();
        assert_eq!(e.changed.len(), 2);
        assert!(e.deleted.is_empty());
        assert_eq!(e.namespaces, ["default", "dev"]);
        assert_eq!(e.kube_context.as_deref(), Some("realkube"));
        assert!(e.needs_build(&dir.join("kodata")));
        let kodata_only =
            SyncHookEnv { changed: vec![format!("{ctx}/kodata/index.html")], deleted: vec![], ..e.clone() };
        assert!(!kodata_only.needs_build(&dir.join("kodata")));
        let deleted_go = SyncHookEnv { changed: vec![], deleted: vec!["old.go".into()], ..e };
        assert!(deleted_go.needs_build(&dir.join("kodata")));

        let msg = SyncHookEnv::from_env(&env(&[])).unwrap_err().to_string();
        assert!(msg.starts_with("$SKAFFOLD_IMAGE is not set"), "{msg}");
        let msg =
            SyncHookEnv::from_env(&env(&[("SKAFFOLD_IMAGE", "a:b"), ("SKAFFOLD_BUILD_CONTEXT", "/nonexistent/x")]))
                .unwrap_err()
                .to_string();
        assert!(msg.starts_with("$SKAFFOLD_BUILD_CONTEXT="), "{msg}");
    }
}
