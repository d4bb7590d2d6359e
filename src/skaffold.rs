//! gohot as a Skaffold custom builder, and the file lists Skaffold asks for.
//!
//! Many Go teams already run `skaffold dev`; this module lets them keep it and
//! swap the image build for gohot's. It owns three answers:
//!
//! * **The build contract** ([`BuildRequest`]): Skaffold runs
//!   `custom.buildCommand` with `IMAGE` (the full tag it wants),
//!   `PUSH_IMAGE` (`true`: the tag must exist in a registry; `false`: in the
//!   local Docker engine), `BUILD_CONTEXT` (absolute path of the artifact's
//!   context) and `PLATFORMS` (comma-separated). [`BuildRequest::from_env`]
//!   checks those values once, naming the variable that is wrong, and
//!   [`BuildRequest::destinations`] picks the one destination: the registry at
//!   exactly `$IMAGE`, or the engine under exactly that tag. The engine holds
//!   one platform per tag, so several platforms with `PUSH_IMAGE=false` keep
//!   only the host's, and are refused when none is the host's.
//! * **The dependency list** ([`dependencies`]): for
//!   `custom.dependencies.command`, the files the image is made of — the
//!   sources of the non-standard packages the binary imports (`go list
//!   -deps`), `go.mod`/`go.sum` and the `kodata` files — as a JSON array of
//!   paths relative to the directory Skaffold runs the command in (the
//!   context).
//! * **The inferred sync map** ([`sync_map_of_dir`], from
//!   [`crate::sync::infer`], which `gohot dev` uses for `sync.infer` too), so
//!   `gohot syncmap` can show Skaffold users what their `infer` rules would do.
//!
//! * **The sync hook** ([`hook`]): `gohot skaffold sync`, run by Skaffold
//!   before each sync of Go sources, rebuilds the binary on the host and
//!   puts it into every container running the artifact through the way in.
//!
//! How the pieces meet in `skaffold dev` (and what Skaffold's sync can and
//! cannot do with a custom builder) is explained in `docs/skaffold.md`.

pub mod hook;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::builder::go::{GoError, GoToolchain};
use crate::platform::Platform;
use crate::publish::registry::split_tag;
use crate::publish::select::Destinations;

/// Errors of the Skaffold integration. Variable errors name the variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkaffoldError {
    /// A variable of the custom-build contract is not set.
    #[error("${name} is not set: {hint}")]
    MissingVar {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// A variable of the custom-build contract has an unusable value.
    #[error("${name}={value:?} is not usable: {reason}")]
    BadVar {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Several platforms were asked for an image that must go into the
    /// local engine, and none of them is the host's.
    #[error(
        "$PLATFORMS={platforms} with $PUSH_IMAGE=false: the Docker engine holds one platform per tag and none \
         of these is the host's ({host}); build one platform, or push to a registry (skaffold's \
         build.local.push: true or a default repo)"
    )]
    EngineMultiPlatform {
        /// The platforms asked for.
        platforms: String,
        /// The host platform.
        host: String,
    },
    /// The Go toolchain failed.
    #[error(transparent)]
    Go(#[from] GoError),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The Dockerfile, `.dockerignore` or context could not be read or
    /// turned into a sync map.
    #[error(transparent)]
    Infer(#[from] crate::sync::infer::InferError),
    /// The dev build of the sync hook failed (other than a compile error,
    /// which the hook reports and survives).
    #[error(transparent)]
    Build(#[from] crate::builder::BuildError),
    /// The cluster could not list or reach the artifact's containers.
    #[error(transparent)]
    Target(#[from] crate::hosting::TargetError),
    /// No running container runs the image Skaffold named.
    #[error("no running container in namespace(s) {namespaces} runs {image} (is the deployment up?)")]
    NoReplica {
        /// `$SKAFFOLD_IMAGE`.
        image: String,
        /// Where Skaffold deployed.
        namespaces: String,
    },
    /// The binary could not be put into some containers: one message per
    /// container, naming it.
    #[error("hot reload failed: {}", .0.join("; "))]
    Put(Vec<String>),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SkaffoldError + '_ {
    move |source| SkaffoldError::Io { path: path.to_path_buf(), source }
}

/// Where Skaffold wants the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Push to the registry, repository and tag of `$IMAGE`.
    Registry,
    /// Load into the local Docker engine under exactly `$IMAGE`.
    Engine,
}

/// A checked custom-build request: the contract's variables, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildRequest {
    /// `$IMAGE`, as given.
    pub image: String,
    /// From `$PUSH_IMAGE`.
    pub destination: Destination,
    /// `$BUILD_CONTEXT` (the working directory when unset).
    pub context: PathBuf,
    /// From `$PLATFORMS`; empty means the builder's default
    /// (`.ko.yaml`'s `defaultPlatforms`, else the host's).
    pub platforms: Vec<Platform>,
}

impl BuildRequest {
    /// Reads the contract from `lookup` (the process environment in the
    /// CLI). `cwd` stands in for an unset `BUILD_CONTEXT`; `host` is the
    /// platform of the local engine.
    ///
    /// `PUSH_IMAGE` unset means `false` (Skaffold always sets it; a person
    /// trying the command by hand most likely wants the local engine).
    pub fn from_env(
        lookup: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
        host: &Platform,
    ) -> Result<Self, SkaffoldError> {
        let image = lookup("IMAGE").filter(|v| !v.trim().is_empty()).ok_or(SkaffoldError::MissingVar {
            name: "IMAGE",
            hint: "Skaffold sets it to the full image tag to build (e.g. 127.0.0.1:5000/app:v1); \
                   run `gohot skaffold build` as a Skaffold custom.buildCommand, or set IMAGE yourself",
        })?;
        let bad = |name: &'static str, value: &str, reason: String| SkaffoldError::BadVar {
            name,
            value: value.to_string(),
            reason,
        };
        split_tag(image.trim()).map_err(|e| bad("IMAGE", &image, e.to_string()))?;
        let image = image.trim().to_string();

        let destination = match lookup("PUSH_IMAGE").as_deref().map(str::trim) {
            None | Some("") => Destination::Engine,
            Some(v) if v.eq_ignore_ascii_case("true") => Destination::Registry,
            Some(v) if v.eq_ignore_ascii_case("false") => Destination::Engine,
            Some(v) => return Err(bad("PUSH_IMAGE", v, "expected `true` or `false`".into())),
        };

        let context = match lookup("BUILD_CONTEXT").filter(|v| !v.is_empty()) {
            None => cwd.to_path_buf(),
            Some(v) => {
                let p = cwd.join(&v);
                if !p.is_dir() {
                    return Err(bad("BUILD_CONTEXT", &v, "not a directory".into()));
                }
                p
            }
        };

        let mut platforms = match lookup("PLATFORMS").filter(|v| !v.trim().is_empty()) {
            None => Vec::new(),
            Some(v) => crate::platform::parse_list(&v).map_err(|e| bad("PLATFORMS", &v, e.to_string()))?,
        };
        if destination == Destination::Engine && platforms.len() > 1 {
            match platforms.iter().find(|p| p.os == host.os && p.arch == host.arch) {
                Some(p) => {
                    tracing::info!(
                        "PUSH_IMAGE=false: loading only the host platform {p} into the Docker engine \
                         (it holds one platform per tag)"
                    );
                    platforms = vec![p.clone()];
                }
                None => {
                    return Err(SkaffoldError::EngineMultiPlatform {
                        platforms: platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                        host: host.to_string(),
                    })
                }
            }
        }
        Ok(BuildRequest { image, destination, context, platforms })
    }

    /// Where the image goes, for the one publisher factory
    /// ([`crate::publish::select::publisher`]): exactly `$IMAGE`.
    pub fn destinations(&self, insecure: bool) -> Destinations {
        Destinations {
            exact: Some(self.image.clone()),
            push: self.destination == Destination::Registry,
            insecure,
            ..Default::default()
        }
    }
}

/// The files the image of `package` (resolved in `dir`) is built from,
/// relative to `dir`, sorted: Go sources of its non-standard dependencies in
/// local modules, the main module's `go.mod` and `go.sum`, and every file
/// under the package's `kodata`.
pub async fn dependencies(
    go: &GoToolchain,
    dir: &Path,
    package: &str,
    platform: &Platform,
) -> Result<Vec<String>, SkaffoldError> {
    let pkg = go.main_package(dir, package).await?;
    let mut files: Vec<PathBuf> = go.dependency_files(dir, &pkg.import_path, platform).await?;
    files.extend(module_and_kodata_files(&pkg)?);
    let base = dir.canonicalize().map_err(io_err(dir))?;
    Ok(relative_sorted(files, &base))
}

fn module_and_kodata_files(pkg: &crate::builder::go::Package) -> Result<Vec<PathBuf>, SkaffoldError> {
    let mut files = Vec::new();
    if let Some(root) = pkg.module.as_ref().and_then(|m| m.dir.as_ref()) {
        for name in ["go.mod", "go.sum"] {
            let f = root.join(name);
            if f.is_file() {
                files.push(f);
            }
        }
    }
    let kodata = pkg.dir.join("kodata");
    if kodata.is_dir() {
        let mut rels = Vec::new();
        walk_files(&kodata, &kodata, &mut rels)?;
        // watchexec and its record are gohot's own, not inputs of the image.
        rels.retain(|r| !crate::builder::kodata::is_gohot_owned_kodata(r));
        files.extend(rels.into_iter().map(|r| kodata.join(r)));
    }
    Ok(files)
}

fn relative_sorted(files: Vec<PathBuf>, base: &Path) -> Vec<String> {
    let mut out = BTreeSet::new();
    for f in files {
        let abs = f.canonicalize().unwrap_or(f);
        out.insert(relative_to(&abs, base));
    }
    out.into_iter().collect()
}

/// `path` relative to `base` (both absolute and clean), `/`-separated, with
/// `..` where `path` is outside `base`.
pub fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), b.len() - common).collect();
    parts.extend(p[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

pub use crate::sync::infer::{sync_map_of_dir, walk_files};

/// Parses `K=V` build arguments; a bare `K` takes its value from `lookup`
/// (as `docker build --build-arg K` does) and is dropped when unset there.
pub fn parse_build_args(
    args: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some(("", _)) => return Err(format!("--build-arg {a:?}: the name is empty")),
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if a.is_empty() => return Err("--build-arg \"\": expected NAME=VALUE".into()),
            None => {
                if let Some(v) = lookup(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn req(vars: &[(&str, &str)]) -> Result<BuildRequest, SkaffoldError> {
        BuildRequest::from_env(&env(vars), Path::new("/"), &Platform::linux("amd64"))
    }

    #[test]
    fn reads_the_contract() {
        let r = req(&[
            ("IMAGE", "127.0.0.1:5000/app:v1-abc"),
            ("PUSH_IMAGE", "true"),
            ("BUILD_CONTEXT", "/tmp"),
            ("PLATFORMS", "linux/amd64,linux/arm64"),
        ])
        .unwrap();
        assert_eq!(r.destination, Destination::Registry);
        assert_eq!(r.platforms.len(), 2);
        assert_eq!(r.context, Path::new("/tmp"));
        let r = req(&[("IMAGE", "app:dirty")]).unwrap();
        assert_eq!((r.destination, r.platforms.len()), (Destination::Engine, 0));
    }

    #[test]
    fn errors_name_the_variable() {
        let msg = |vars: &[(&str, &str)]| req(vars).unwrap_err().to_string();
        assert!(msg(&[]).starts_with("$IMAGE is not set"), "{}", msg(&[]));
        assert!(msg(&[("IMAGE", "a@sha256:00")]).starts_with("$IMAGE="));
        assert!(msg(&[("IMAGE", "UPPER/Case")]).starts_with("$IMAGE="));
        assert!(msg(&[("IMAGE", "a:b"), ("PUSH_IMAGE", "yes")]).starts_with("$PUSH_IMAGE=\"yes\""));
        assert!(msg(&[("IMAGE", "a:b"), ("PLATFORMS", "linux")]).starts_with("$PLATFORMS="));
        assert!(msg(&[("IMAGE", "a:b"), ("BUILD_CONTEXT", "/nonexistent/x")]).starts_with("$BUILD_CONTEXT="));
    }

    #[test]
    fn engine_keeps_only_the_host_platform() {
        let r = req(&[("IMAGE", "a:b"), ("PUSH_IMAGE", "false"), ("PLATFORMS", "linux/arm64,linux/amd64")]).unwrap();
        assert_eq!(r.platforms, vec![Platform::linux("amd64")]);
        let e = req(&[("IMAGE", "a:b"), ("PLATFORMS", "linux/arm64,linux/s390x")]).unwrap_err();
        assert!(matches!(e, SkaffoldError::EngineMultiPlatform { .. }), "{e}");
        // One foreign platform is fine: the engine can hold it.
        let r = req(&[("IMAGE", "a:b"), ("PLATFORMS", "linux/arm64")]).unwrap();
        assert_eq!(r.platforms, vec![Platform::linux("arm64")]);
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_to(Path::new("/a/b/c.go"), Path::new("/a")), "b/c.go");
        assert_eq!(relative_to(Path::new("/x/lib/l.go"), Path::new("/x/app")), "../lib/l.go");
        assert_eq!(relative_to(Path::new("/a"), Path::new("/a")), ".");
    }

    #[test]
    fn build_args() {
        let look = env(&[("FROM_ENV", "e")]);
        let a = parse_build_args(&["A=1".into(), "B==2".into(), "FROM_ENV".into(), "UNSET".into()], &look).unwrap();
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(a.get("B").map(String::as_str), Some("=2"));
        assert_eq!(a.get("FROM_ENV").map(String::as_str), Some("e"));
        assert!(!a.contains_key("UNSET"));
        assert!(parse_build_args(&["=x".into()], &look).is_err());
    }
}
