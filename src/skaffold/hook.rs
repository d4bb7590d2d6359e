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
use crate::hosting::{Replica, Target};
use crate::wayin::{self, PutStatus, RemoteFile};

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
/// `target` in parallel; `previous` is the binary gohot built before, the
/// base of a delta for replicas that hold it. Errors name the replica; no
/// replica at all is an empty report.
pub async fn put_binary(
    target: &dyn Target,
    dest: &str,
    binary: Bytes,
    previous: Option<Bytes>,
    restart_timeout: Duration,
) -> Result<HookReport, SkaffoldError> {
    let replicas = target.replicas().await?;
    if replicas.is_empty() {
        return Ok(HookReport::default());
    }
    let new_sha = wayin::sha256_hex(&binary);
    let old_sha = previous.as_ref().map(|p| wayin::sha256_hex(p));
    let delta = match &previous {
        Some(p) if old_sha.as_deref() != Some(new_sha.as_str()) => Some(Bytes::from(wayin::encode_delta(p, &binary))),
        _ => None,
    };
    let results = futures::future::join_all(replicas.iter().map(|r| {
        let (binary, delta, new_sha) = (binary.clone(), delta.clone(), new_sha.clone());
        async move { put_one(target, r, dest, &new_sha, &binary, delta, restart_timeout).await }
    }))
    .await;
    let mut report = HookReport::default();
    let mut errors = Vec::new();
    for (r, res) in replicas.iter().zip(results) {
        match res {
            Ok(None) => report.unchanged.push(r.name.clone()),
            Ok(Some((sent, sync, restart))) => {
                report.updated.push(r.name.clone());
                report.bytes_sent += sent;
                report.sync = report.sync.max(sync);
                report.restart = report.restart.max(restart);
            }
            Err(e) => errors.push(format!("{}: {e}", r.name)),
        }
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(SkaffoldError::Put(errors))
    }
}

/// One replica: `None` when it already holds the binary, else the bytes
/// sent, the put's duration and the restart's.
#[allow(clippy::too_many_arguments)]
async fn put_one(
    target: &dyn Target,
    r: &Replica,
    dest: &str,
    new_sha: &str,
    binary: &Bytes,
    delta: Option<Bytes>,
    restart_timeout: Duration,
) -> Result<Option<(u64, Duration, Duration)>, String> {
    let start = Instant::now();
    // A delta goes straight out (the helper checks its base and answers a
    // mismatch); without one — no earlier build, or the same binary again —
    // the replica is asked what it holds first.
    let mut payload = match delta {
        Some(d) => d,
        None => {
            let out = target.exec(r, &wayin::hash_argv(dest), Bytes::new()).await.map_err(|e| e.to_string())?;
            if let RemoteFile::Present { sha256, .. } =
                wayin::parse_hash_status(&out.stdout).map_err(|e| e.to_string())?
            {
                if sha256 == new_sha {
                    return Ok(None);
                }
            }
            Bytes::from(wayin::encode_full(binary))
        }
    };
    let argv = wayin::put_wait_argv(dest, 0o755, restart_timeout);
    let mut sent = 0;
    for attempt in 0..2 {
        sent += payload.len() as u64;
        let out = target.exec(r, &argv, payload.clone()).await.map_err(|e| e.to_string())?;
        match wayin::parse_put_status(&out.stdout) {
            Ok(PutStatus::Written { pid: Some(_), restart_ms, .. }) => {
                let restart = Duration::from_millis(restart_ms.unwrap_or_default());
                return Ok(Some((sent, start.elapsed().saturating_sub(restart), restart)));
            }
            Ok(PutStatus::Written { .. }) => {
                return Err(format!(
                    "the binary is in place, but watchexec did not start it within {restart_timeout:?} \
                     (is the container's command watchexec? see examples/skaffold/k8s)"
                ))
            }
            Ok(PutStatus::BaseMismatch { .. }) if attempt == 0 => payload = Bytes::from(wayin::encode_full(binary)),
            Ok(other) => return Err(format!("unexpected helper answer {other:?}")),
            Err(e) => return Err(format!("{e} {}", String::from_utf8_lossy(&out.stderr).trim())),
        }
    }
    Err("the helper kept refusing the payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosting::{ExecOutput, TargetError};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Replicas holding files, answering `hash` and `put` as the helper does
    /// (payloads applied by the reference decoder).
    struct FakeReplicas(Mutex<BTreeMap<String, Vec<u8>>>, Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl Target for FakeReplicas {
        async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
            let held = self.0.lock().unwrap();
            Ok(held.keys().map(|k| Replica { name: k.clone(), instance: k.clone(), handle: k.clone() }).collect())
        }
        async fn exec(&self, r: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
            let mut held = self.0.lock().unwrap();
            let current = held.get(&r.handle).cloned().unwrap_or_default();
            self.1.lock().unwrap().push(format!("{} {}", r.name, argv[1]));
            let line = match argv[1].as_str() {
                "hash" => format!(r#"{{"sha256":"{}","size":{}}}"#, wayin::sha256_hex(&current), current.len()),
                "put" => match wayin::decode_payload(Some(&current), &stdin, 1 << 30) {
                    Ok(new) => {
                        let line = format!(
                            r#"{{"ok":true,"kind":"full","bytes":{},"sha256":"{}","pid":7,"restart_ms":5}}"#,
                            new.len(),
                            wayin::sha256_hex(&new)
                        );
                        held.insert(r.handle.clone(), new);
                        line
                    }
                    Err(wayin::WayInError::BaseMismatch(m)) => {
                        format!(r#"{{"ok":false,"error":"base-mismatch","message":"{m}"}}"#)
                    }
                    Err(e) => panic!("{e}"),
                },
                other => panic!("unexpected {other}"),
            };
            Ok(ExecOutput { stdout: line.into_bytes(), stderr: Vec::new(), exit_code: 0 })
        }
    }

    /// Three replicas: one holds the previous build (a delta goes straight
    /// out), one holds something else (the delta is refused, the whole
    /// binary follows), one already holds the new build only after that.
    #[tokio::test]
    async fn puts_a_delta_where_the_base_is_held_and_the_whole_binary_elsewhere() {
        let previous = crate::wayin::noise(200_000, 1);
        let mut new = previous.clone();
        new[1000..1010].copy_from_slice(b"0123456789");
        let fake = FakeReplicas(
            Mutex::new(BTreeMap::from([
                ("a".to_string(), previous.clone()),
                ("b".to_string(), b"the image's own binary".to_vec()),
            ])),
            Mutex::default(),
        );
        let report = put_binary(
            &fake,
            "/ko-app/hello",
            Bytes::from(new.clone()),
            Some(Bytes::from(previous.clone())),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(report.updated, ["a", "b"]);
        assert!(fake.0.lock().unwrap().values().all(|held| *held == new));
        // a: one put (the delta, small); b: the refused delta, then the whole file.
        assert_eq!(*fake.1.lock().unwrap(), ["a put", "b put", "b put"]);
        assert!(report.bytes_sent < new.len() as u64 + 10_000, "{report:?}");
        // Again with the same binary: nothing to send, each replica is asked.
        fake.1.lock().unwrap().clear();
        let again = put_binary(
            &fake,
            "/ko-app/hello",
            Bytes::from(new.clone()),
            Some(Bytes::from(new)),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!((again.updated.len(), again.unchanged.len(), again.bytes_sent), (0, 2, 0));
        assert_eq!(*fake.1.lock().unwrap(), ["a hash", "b hash"]);
    }

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
