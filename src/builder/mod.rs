//! Build: a Go main package in, an OCI image (or index) out.
//!
//! [`Build`] is the seam (ko's `build.Interface`): resolve and deploy
//! depend on it, never on how the build is done. [`GoBuilder`] is the real
//! one: `go build` per platform, then [`image::assemble`] on top of a base
//! from [`base::BaseStore`]. A variant of the image (the dev image) is a
//! wrapper around it that hands [`GoBuilder::build_variant`] a [`Variant`]
//! — extra linker flags and layers — as ko's caching builder wraps another
//! builder; see `crate::devimage::DevBuilder`.

pub mod base;
pub mod go;
pub mod image;
pub mod inputs;
pub mod kodata;
pub mod layer;
pub mod sbom;
pub mod staticbase;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::ko::{ConfigError, KoConfig};
use crate::oci::Artifact;
use crate::platform::Platform;
use base::{BaseError, BaseStore};
use go::{BuildSettings, GoError, GoToolchain, Package};

/// Errors building an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Go toolchain failed.
    #[error(transparent)]
    Go(#[from] GoError),
    /// `.ko.yaml` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The base image could not be had.
    #[error(transparent)]
    Base(#[from] BaseError),
    /// What an image variant adds (the dev image's tools) could not be prepared.
    #[error(transparent)]
    Variant(Box<dyn std::error::Error + Send + Sync>),
    /// kodata could not be read, or a symlink in it is refused.
    #[error(transparent)]
    Kodata(#[from] kodata::KodataError),
    /// Reading the binary failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BuildError {
    /// The compiler's output, verbatim, when `go build` failed.
    pub fn compiler_output(&self) -> Option<&str> {
        match self {
            BuildError::Go(GoError::Build { stderr, .. }) => Some(stderr),
            _ => None,
        }
    }
}

/// A built package.
#[derive(Clone, Debug)]
pub struct Built {
    /// What `go list` said about it.
    pub package: Package,
    /// The image or index.
    pub artifact: Artifact,
    /// `go version -m` of each platform's binary, for SBOMs ([`sbom`]).
    pub build_info: Vec<(crate::platform::Platform, String)>,
}

/// Anything that turns a package into an image.
#[async_trait]
pub trait Build: Send + Sync {
    /// Builds `package` (a path like `./cmd/app` or an import path).
    async fn build(&self, package: &str) -> Result<Built, BuildError>;
}

/// Options for [`GoBuilder`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Directory the user ran gohot in (packages are relative to it).
    pub workdir: PathBuf,
    /// Platforms to build; empty means `.ko.yaml`'s `defaultPlatforms`, else the host's.
    pub platforms: Vec<Platform>,
    /// Base image overriding `.ko.yaml`.
    pub base: Option<String>,
    /// Root of the cache (binaries, base images).
    pub cache_root: PathBuf,
    /// Labels added to the image config (ko's `--image-label`).
    pub labels: Vec<(String, String)>,
    /// The user the image runs as, replacing the base's (ko's `--image-user`).
    pub user: Option<String>,
    /// `--platform=all`: every platform of each package's base.
    pub all_platforms: bool,
}

/// What a variant of the image adds to the production build.
#[derive(Clone, Debug, Default)]
pub struct Variant {
    /// `go build` flags after `.ko.yaml`'s.
    pub flags: Vec<String>,
    /// Linker flags after `.ko.yaml`'s.
    pub ldflags: Vec<String>,
    /// Layers between the base and kodata.
    pub layers: Vec<Vec<layer::Entry>>,
    /// The variant is a dev image: `/ko-app` and kodata's directories
    /// writable by any uid, and the files gohot placed in kodata for it
    /// ([`kodata::production_kodata`]) kept.
    pub dev: bool,
}

/// The real builder: Go toolchain + base store + `.ko.yaml`.
pub struct GoBuilder {
    go: GoToolchain,
    config: KoConfig,
    bases: BaseStore,
    opts: BuildOptions,
}

/// ko's default base image is not reachable offline; gohot defaults to its
/// built-in equivalent ([`staticbase`]: CA certificates, tzdata, nonroot).
pub const DEFAULT_BASE: &str = staticbase::NAME;

impl GoBuilder {
    /// A builder.
    pub fn new(go: GoToolchain, config: KoConfig, bases: BaseStore, opts: BuildOptions) -> Self {
        GoBuilder { go, config, bases, opts }
    }

    /// The platforms a build produces.
    pub fn platforms(&self) -> Result<Vec<Platform>, BuildError> {
        if !self.opts.platforms.is_empty() {
            return Ok(self.opts.platforms.clone());
        }
        if !self.config.default_platforms.is_empty() {
            return crate::platform::parse_list(&self.config.default_platforms.join(",")).map_err(|e| {
                BuildError::Config(ConfigError::Parse {
                    path: self.config.path.clone().unwrap_or_default(),
                    line: 0,
                    column: 0,
                    message: format!("defaultPlatforms: {e}"),
                })
            });
        }
        Ok(vec![Platform::host_linux()])
    }

    /// The cache root (binaries, base images, helpers).
    pub fn cache_root(&self) -> std::path::PathBuf {
        self.opts.cache_root.clone()
    }

    /// The Go toolchain in use.
    pub fn go(&self) -> &GoToolchain {
        &self.go
    }

    /// Build settings for a package from `.ko.yaml`, plus the variant's flags.
    fn settings(&self, pkg: &Package, requested: &str, variant: &Variant) -> Result<BuildSettings, BuildError> {
        let rel = pkg.dir.strip_prefix(&self.config.dir).ok().map(|p| p.to_string_lossy().into_owned());
        let rel = rel.or_else(|| Some(requested.to_string()));
        let entry = self.config.build_for(&pkg.import_path, rel.as_deref()).cloned().unwrap_or_default();
        let dir = match entry.dir.as_deref() {
            Some(d) if !d.is_empty() => self.config.dir.join(d),
            _ => self.opts.workdir.clone(),
        };
        let mut env = Vec::new();
        for kv in self.config.default_env.iter().chain(&entry.env) {
            let kv = self.config.expand("env", kv)?;
            match kv.split_once('=') {
                Some((k, v)) => env.push((k.to_string(), v.to_string())),
                None => {
                    return Err(BuildError::Config(ConfigError::Parse {
                        path: self.config.path.clone().unwrap_or_default(),
                        line: 0,
                        column: 0,
                        message: format!("env entry {kv:?} is not KEY=VALUE"),
                    }))
                }
            }
        }
        let flags = if entry.flags.is_empty() { &self.config.default_flags } else { &entry.flags };
        let ldflags = if entry.ldflags.is_empty() { &self.config.default_ldflags } else { &entry.ldflags };
        let mut ldflags: Vec<String> =
            ldflags.iter().map(|f| self.config.expand("ldflags", f)).collect::<Result<_, _>>()?;
        ldflags.extend(variant.ldflags.iter().cloned());
        let mut flags: Vec<String> = flags.iter().map(|f| self.config.expand("flags", f)).collect::<Result<_, _>>()?;
        flags.extend(variant.flags.iter().cloned());
        Ok(BuildSettings { dir, env, flags, ldflags })
    }

    /// Resolves a package and checks it is a main package.
    pub async fn package(&self, package: &str) -> Result<Package, BuildError> {
        Ok(self.go.main_package(&self.opts.workdir, package).await?)
    }

    /// Lists the packages the binary of `pkg` is built from, as its build
    /// sees them (`.ko.yaml` env and flags applied; see [`GoToolchain::list_deps`]).
    pub async fn list_deps(
        &self,
        pkg: &Package,
        requested: &str,
        platform: &Platform,
    ) -> Result<Vec<go::ListedPackage>, BuildError> {
        let settings = self.settings(pkg, requested, &Variant::default())?;
        Ok(self.go.list_deps_with(&settings, &pkg.import_path, platform).await?)
    }

    /// Compiles the binary for one platform into ko's cache location and
    /// returns its path; the variant's flags come after `.ko.yaml`'s.
    pub async fn compile(
        &self,
        pkg: &Package,
        requested: &str,
        platform: &Platform,
        variant: &Variant,
    ) -> Result<PathBuf, BuildError> {
        let settings = self.settings(pkg, requested, variant)?;
        let out = crate::cache::binary_path(&self.opts.cache_root, &pkg.import_path, platform);
        tracing::debug!("go build {} for {platform} → {}", pkg.import_path, out.display());
        self.go.build(pkg, platform, &settings, &out).await?;
        Ok(out)
    }

    fn base_for(&self, pkg: &Package) -> String {
        self.opts
            .base
            .clone()
            .or_else(|| self.config.base_for(&pkg.import_path).map(String::from))
            .unwrap_or_else(|| DEFAULT_BASE.into())
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io { path: path.to_path_buf(), source }
}

impl GoBuilder {
    /// Builds the image of `pkg` (named `requested` by the user) with what
    /// `variant` adds.
    pub async fn build_variant(&self, pkg: Package, requested: &str, variant: &Variant) -> Result<Built, BuildError> {
        let base_ref = self.base_for(&pkg);
        let kodata_dir = pkg.dir.join("kodata");
        let mut build_info = Vec::new();
        let platforms =
            if self.opts.all_platforms { self.bases.platforms(&base_ref).await? } else { self.platforms()? };
        let module_root = pkg.module.as_ref().and_then(|m| m.dir.as_deref()).unwrap_or(&pkg.dir);
        let kodata = kodata::read_kodata(&kodata_dir, &kodata::KodataBounds::from_env(module_root))?;
        // What gohot placed in kodata for dev images (watchexec, its record,
        // its .gitignore lines) never reaches a production image.
        let kodata = if variant.dev { kodata } else { kodata::production_kodata(kodata) };
        let mut images = Vec::new();
        for platform in platforms {
            let base = self.bases.get(&base_ref, &platform).await?;
            let out = self.compile(&pkg, requested, &platform, variant).await?;
            let binary = Bytes::from(std::fs::read(&out).map_err(io_err(&out))?);
            let img = image::assemble(image::ImageInputs {
                base: &base,
                platform: &platform,
                name: &pkg.binary_name(),
                binary,
                kodata: kodata.clone(),
                extra_layers: variant.layers.clone(),
                dev: variant.dev,
                import_path: &pkg.import_path,
                labels: &self.opts.labels,
                user: self.opts.user.as_deref(),
            })
            .map_err(io_err(&out))?;
            build_info.push((platform.clone(), self.go.version_m(&out).await?));
            images.push(img);
        }
        Ok(Built { package: pkg, artifact: Artifact::from_images(images), build_info })
    }
}

#[async_trait]
impl Build for GoBuilder {
    async fn build(&self, package: &str) -> Result<Built, BuildError> {
        let pkg = self.package(package).await?;
        self.build_variant(pkg, package, &Variant::default()).await
    }
}
