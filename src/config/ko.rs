//! `.ko.yaml`: the build configuration ko users already have.
//!
//! Honoured keys: `defaultBaseImage`, `baseImageOverrides`, `defaultPlatforms`,
//! `defaultFlags`, `defaultLdflags`, `defaultEnv` and `builds[]` (`id`, `dir`,
//! `main`, `env`, `flags`, `ldflags`). Templates in flags and ldflags support
//! `{{.Env.NAME}}`; anything else is reported rather than silently passed on.
//! `KO_DEFAULTBASEIMAGE` overrides `defaultBaseImage`, as in ko.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors reading `.ko.yaml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid `.ko.yaml`.
    #[error("{path}:{line}:{column}: {message} (fix the YAML; see https://ko.build/configuration/)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A template the config uses that gohot does not support.
    #[error("{path}: unsupported template {template:?} in {field}: gohot expands only {{{{.Env.NAME}}}}")]
    Template {
        /// The file.
        path: PathBuf,
        /// The field holding it.
        field: String,
        /// The template text.
        template: String,
    },
}

/// One `builds[]` entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildConfig {
    /// Identifier (unused by gohot but accepted).
    #[serde(default)]
    pub id: Option<String>,
    /// Directory to run `go build` in, relative to the config file.
    #[serde(default)]
    pub dir: Option<String>,
    /// The main package (`./cmd/app` or an import path).
    #[serde(default)]
    pub main: Option<String>,
    /// Extra environment (`KEY=VALUE`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Extra `go build` flags.
    #[serde(default)]
    pub flags: Vec<String>,
    /// `-ldflags` parts.
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// ko's `goos`, `goarch`, `goarm` and `mod_timestamp` are accepted and ignored.
    #[serde(default, rename = "goos")]
    pub _goos: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, rename = "goarch")]
    pub _goarch: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, rename = "goarm")]
    pub _goarm: Option<serde_yaml_ng::Value>,
    /// Accepted and ignored.
    #[serde(default, rename = "mod_timestamp")]
    pub _mod_timestamp: Option<serde_yaml_ng::Value>,
}

/// The contents of `.ko.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KoConfig {
    /// Base image for every package.
    #[serde(default)]
    pub default_base_image: Option<String>,
    /// Base image per import path.
    #[serde(default)]
    pub base_image_overrides: BTreeMap<String, String>,
    /// Platforms to build when none is given.
    #[serde(default)]
    pub default_platforms: Vec<String>,
    /// Flags for every build.
    #[serde(default)]
    pub default_flags: Vec<String>,
    /// Ldflags for every build.
    #[serde(default)]
    pub default_ldflags: Vec<String>,
    /// Environment for every build.
    #[serde(default)]
    pub default_env: Vec<String>,
    /// Per-package settings.
    #[serde(default)]
    pub builds: Vec<BuildConfig>,
    /// Directory the file was read from (paths in `builds[].dir` are relative to it).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The file it was read from, for messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl KoConfig {
    /// Loads `.ko.yaml` from `KO_CONFIG_PATH` (a file or a directory) or `dir`.
    /// A missing file is an empty config. `KO_DEFAULTBASEIMAGE`, when set,
    /// overrides `defaultBaseImage` (ko reads its config through viper with
    /// the `KO` environment prefix, where the environment wins over the file).
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let mut cfg = Self::load_file(dir)?;
        if let Some(base) = std::env::var("KO_DEFAULTBASEIMAGE").ok().filter(|b| !b.trim().is_empty()) {
            cfg.default_base_image = Some(base.trim().to_string());
        }
        Ok(cfg)
    }

    fn load_file(dir: &Path) -> Result<Self, ConfigError> {
        let path = match std::env::var_os("KO_CONFIG_PATH").map(PathBuf::from) {
            Some(p) if p.is_dir() => p.join(".ko.yaml"),
            Some(p) => p,
            None => dir.join(".ko.yaml"),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KoConfig { dir: dir.to_path_buf(), ..Default::default() })
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let mut cfg = Self::parse(&text, &path)?;
        cfg.dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
        cfg.path = Some(path);
        Ok(cfg)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(KoConfig::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            let loc = e.location();
            ConfigError::Parse {
                path: path.to_path_buf(),
                line: loc.as_ref().map_or(0, |l| l.line()),
                column: loc.as_ref().map_or(0, |l| l.column()),
                message: e.to_string(),
            }
        })
    }

    /// The `builds[]` entry for a package, matched by import path or by
    /// its path relative to the config directory (`./cmd/app`).
    pub fn build_for(&self, import_path: &str, rel_dir: Option<&str>) -> Option<&BuildConfig> {
        self.builds.iter().find(|b| {
            let Some(main) = b.main.as_deref() else { return false };
            if main == import_path {
                return true;
            }
            let joined = match b.dir.as_deref() {
                Some(d) if !d.is_empty() && d != "." => format!("{}/{}", clean(d), clean(main)),
                _ => clean(main),
            };
            rel_dir.is_some_and(|r| clean(r) == joined)
        })
    }

    /// The base image for a package, if configured.
    pub fn base_for(&self, import_path: &str) -> Option<&str> {
        self.base_image_overrides.get(import_path).or(self.default_base_image.as_ref()).map(String::as_str)
    }

    /// Expands `{{.Env.NAME}}` in a flag; other templates are errors.
    pub fn expand(&self, field: &str, value: &str) -> Result<String, ConfigError> {
        expand_env_template(value).map_err(|template| ConfigError::Template {
            path: self.path.clone().unwrap_or_else(|| PathBuf::from(".ko.yaml")),
            field: field.into(),
            template,
        })
    }
}

/// `./cmd/app/` → `cmd/app`.
fn clean(p: &str) -> String {
    p.split('/').filter(|s| !s.is_empty() && *s != ".").collect::<Vec<_>>().join("/")
}

/// Expands `{{.Env.NAME}}` (spaces allowed); returns the first unsupported template.
fn expand_env_template(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { return Err(rest[start..].to_string()) };
        let inner = rest[start + 2..start + end].trim();
        match inner.strip_prefix(".Env.") {
            Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                out.push_str(&std::env::var(name).unwrap_or_default());
            }
            _ => return Err(rest[start..start + end + 2].to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
defaultBaseImage: registry.local/base:1
baseImageOverrides:
  example.com/app/cmd/other: scratch
defaultPlatforms: [linux/arm64]
defaultFlags: [-tags, netgo]
defaultLdflags: ["-s", "-X main.v={{ .Env.GOHOT_TEST_V }}"]
defaultEnv: [GOFLAGS=-mod=mod]
builds:
- id: app
  dir: .
  main: ./cmd/app
  env: [FOO=1]
  flags: [-v]
  ldflags: [-w]
"#;

    #[test]
    fn parses_ko_yaml() {
        let c = KoConfig::parse(SAMPLE, Path::new(".ko.yaml")).unwrap();
        assert_eq!(c.base_for("example.com/app/cmd/app"), Some("registry.local/base:1"));
        assert_eq!(c.base_for("example.com/app/cmd/other"), Some("scratch"));
        assert_eq!(c.default_platforms, ["linux/arm64"]);
        let b = c.build_for("example.com/app/cmd/app", Some("./cmd/app")).unwrap();
        assert_eq!(b.flags, ["-v"]);
        assert!(c.build_for("example.com/app/cmd/other", Some("cmd/other")).is_none());
    }

    #[test]
    fn expands_env_templates_only() {
        std::env::set_var("GOHOT_TEST_V", "1.2.3");
        let c = KoConfig::default();
        assert_eq!(c.expand("ldflags", "-X main.v={{ .Env.GOHOT_TEST_V }}").unwrap(), "-X main.v=1.2.3");
        let e = c.expand("ldflags", "-X main.c={{.Git.ShortCommit}}").unwrap_err();
        assert!(e.to_string().contains(".Git.ShortCommit"), "{e}");
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let e = KoConfig::parse("defaultFlags: [a\nbuilds: {", Path::new("x/.ko.yaml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("x/.ko.yaml:"), "{s}");
    }
}
