//! `gohot.yaml`: gohot's own settings, beside ko's `.ko.yaml`. This module is
//! its one parser and its one schema: every part of gohot that reads the file
//! (the dev loop's sync rules, the cluster safety rule's allow list) reads it
//! through [`GohotConfig::load`], so no two readers can disagree about it.
//!
//! `.ko.yaml` says how to build; `gohot.yaml` says which clusters gohot may
//! hot-patch and what the dev loop may sync instead of rebuilding, written
//! the way Skaffold users already write it:
//!
//! ```yaml
//! allowContexts: [staging-eu]  # non-local Kubernetes contexts gohot may use
//! sync:
//!   manual:
//!   - src: "static/**/*.html"
//!     dest: /home/nonroot/www  # writable by the container's user
//!     strip: static/
//!   infer: ["**/*.css"]       # destinations inferred from the Dockerfile
//!   dockerfile: Dockerfile    # for infer; relative to gohot.yaml (default: Dockerfile)
//!   buildArgs: {VERSION: "1"} # ARG values used when inferring
//! ```
//!
//! Everything is checked when the file is loaded, so a mistake surfaces at
//! start-up with the file, the rule and what is wrong, never as a file
//! landing in an odd place later. Unknown keys are errors that name the key
//! and list the valid ones (a typo such as `manaul` must not silently disable
//! syncing). An empty file, or none, is an empty config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sync::rules::{CompiledRules, InferPatterns, ManualRule, RuleError};

/// The file name looked for.
pub const FILE_NAME: &str = "gohot.yaml";

/// Errors loading `gohot.yaml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not have gohot.yaml's shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A sync rule is wrong; the message names the rule (`sync.manual[1]
    /// (src ...)`) and what is wrong with it.
    #[error("{path}: {source}")]
    Rule {
        /// The file.
        path: PathBuf,
        /// The rule and what is wrong.
        source: RuleError,
    },
}

/// The `sync` section as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    /// Manual rules (`src` glob, `dest`, optional `strip`).
    #[serde(default)]
    pub manual: Vec<ManualRule>,
    /// Globs of files that may be synced to destinations inferred from the Dockerfile.
    #[serde(default)]
    pub infer: Vec<String>,
    /// The Dockerfile for `infer`, relative to the config file's directory.
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// `ARG` values used when inferring.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
}

/// The whole file as written: the schema. Every key gohot reads is here.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default, deserialize_with = "null_is_default")]
    sync: SyncConfig,
    #[serde(default, deserialize_with = "context_names")]
    allow_contexts: Vec<String>,
}

/// `sync:` with nothing after it is an empty section.
fn null_is_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SyncConfig, D::Error> {
    Ok(Option::<SyncConfig>::deserialize(d)?.unwrap_or_default())
}

/// `allowContexts` is a list of context names; anything else gets a message
/// saying so (serde's own would only name a Rust type).
fn context_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<serde_yaml_ng::Value>::deserialize(d)?;
    let bad = || serde::de::Error::custom("allowContexts must be a list of context names, e.g. [staging-eu]");
    match value {
        None => Ok(Vec::new()),
        Some(serde_yaml_ng::Value::Sequence(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_yaml_ng::Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// Sync rules, validated and compiled.
#[derive(Clone, Debug)]
pub struct SyncRules {
    /// The manual rules.
    pub manual: CompiledRules,
    /// The `infer` globs; `None` when there are none.
    pub infer: Option<InferPatterns>,
    /// Absolute path of the Dockerfile `infer` reads.
    pub dockerfile: PathBuf,
    /// `ARG` values for inference.
    pub build_args: BTreeMap<String, String>,
}

/// A loaded `gohot.yaml`.
#[derive(Clone, Debug)]
pub struct GohotConfig {
    /// `allowContexts`: non-local Kubernetes contexts gohot may act on
    /// (see [`crate::cluster::context::check_allowed`]).
    pub allow_contexts: Vec<String>,
    /// The `sync` section as written.
    pub sync: SyncConfig,
    /// The same rules, compiled.
    pub rules: SyncRules,
    /// The file it was read from (`None` when there is none).
    pub path: Option<PathBuf>,
    /// The directory paths in it are relative to.
    pub dir: PathBuf,
}

impl GohotConfig {
    /// Loads `dir/gohot.yaml`; a missing file is an empty config (no rules).
    pub fn load(dir: &Path) -> Result<Self, DevConfigError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::parse("", &path).map(|mut c| {
                c.path = None;
                c
            }),
            Err(source) => Err(DevConfigError::Read { path, source }),
        }
    }

    /// Parses and checks config text; `path` names the file in messages and
    /// its directory anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DevConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            // A file of comments only is a null document: an empty config.
            serde_yaml_ng::from_str::<Option<RawConfig>>(text)
                .map_err(|e| {
                    let loc = e.location();
                    let message = e.to_string();
                    // The location goes in front, as `file:line:col:`; drop serde's own.
                    let message = match message.rsplit_once(" at line ") {
                        Some((m, _)) if loc.is_some() => m.to_string(),
                        _ => message,
                    };
                    DevConfigError::Parse {
                        path: path.to_path_buf(),
                        line: loc.as_ref().map_or(0, |l| l.line()),
                        column: loc.as_ref().map_or(0, |l| l.column()),
                        message,
                    }
                })?
                .unwrap_or_default()
        };
        let rule_err = |source| DevConfigError::Rule { path: path.to_path_buf(), source };
        let manual = CompiledRules::new(raw.sync.manual.clone()).map_err(rule_err)?;
        let infer = if raw.sync.infer.is_empty() {
            None
        } else {
            Some(InferPatterns::new(raw.sync.infer.clone()).map_err(rule_err)?)
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dockerfile = dir.join(raw.sync.dockerfile.as_deref().unwrap_or("Dockerfile"));
        Ok(GohotConfig {
            allow_contexts: raw.allow_contexts,
            rules: SyncRules { manual, infer, dockerfile, build_args: raw.sync.build_args.clone() },
            sync: raw.sync,
            path: Some(path.to_path_buf()),
            dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let text =
            "sync:\n  manual:\n  - src: 'static/**/*.html'\n    dest: /srv\n    strip: static/\n  infer: ['*.css']\n";
        let c = GohotConfig::parse(text, Path::new("/p/gohot.yaml")).unwrap();
        assert_eq!(c.rules.manual.len(), 1);
        assert_eq!(c.rules.manual.destinations("static/a/b.html", "/").unwrap(), ["/srv/a/b.html"]);
        assert!(c.rules.infer.as_ref().is_some_and(|i| i.matches("x.css")));
        assert_eq!(c.rules.dockerfile, Path::new("/p/Dockerfile"));
    }

    #[test]
    fn bad_strip_names_the_rule() {
        let text = "sync:\n  manual:\n  - src: 'a/*.txt'\n    dest: /x\n  - src: 'static/**/*.html'\n    dest: /srv\n    strip: app/\n";
        let e = GohotConfig::parse(text, Path::new("gohot.yaml")).unwrap_err().to_string();
        assert!(e.contains("gohot.yaml") && e.contains("sync.manual[1]") && e.contains("static/**/*.html"), "{e}");
        assert!(e.contains("strip `app/`"), "{e}");
    }

    #[test]
    fn one_schema_for_every_key() {
        let text =
            "# project settings\nallowContexts: [staging-eu, prod]\nsync:\n  manual:\n  - src: 'a/*'\n    dest: /x\n";
        let c = GohotConfig::parse(text, Path::new("gohot.yaml")).unwrap();
        assert_eq!(c.allow_contexts, ["staging-eu", "prod"]);
        assert_eq!(c.rules.manual.len(), 1);
        let c = GohotConfig::parse("# nothing yet\n", Path::new("gohot.yaml")).unwrap();
        assert!(c.allow_contexts.is_empty() && c.rules.manual.is_empty());
        let c = GohotConfig::parse("sync:\nallowContexts:\n", Path::new("gohot.yaml")).unwrap();
        assert!(c.allow_contexts.is_empty() && c.rules.manual.is_empty());
        // An unknown key is named, with the valid ones.
        let e = GohotConfig::parse("allowContext: [x]\n", Path::new("gohot.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("gohot.yaml:1:"), "{e}");
        assert!(e.contains("`allowContext`") && e.contains("`sync`") && e.contains("`allowContexts`"), "{e}");
        assert!(!e.contains(" at line "), "location given once: {e}");
        let e = GohotConfig::parse("sync:\n  dockerFile: D\n", Path::new("gohot.yaml")).unwrap_err().to_string();
        assert!(e.contains("`dockerFile`") && e.contains("`dockerfile`") && e.contains("`buildArgs`"), "{e}");
        let e = GohotConfig::parse("allowContexts: staging\n", Path::new("gohot.yaml")).unwrap_err().to_string();
        assert!(e.contains("gohot.yaml") && e.contains("list of context names"), "{e}");
    }

    #[test]
    fn typos_and_missing_file() {
        let e = GohotConfig::parse("sync:\n  manaul: []\n", Path::new("gohot.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("gohot.yaml:2:"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let c = GohotConfig::load(d.path()).unwrap();
        assert!(c.path.is_none() && c.rules.manual.is_empty() && c.rules.infer.is_none());
    }
}
