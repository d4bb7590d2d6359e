//! Resolve: `ko://<import path>` references in Kubernetes YAML become the
//! digests of freshly built and published images.
//!
//! Each distinct reference is built and published once, in parallel; every
//! document without a reference is passed through byte for byte. Documents
//! with references are edited in their text (comments and formatting kept),
//! and the edit is checked against a structural replacement — if the two
//! disagree, the structural result is written instead.

pub mod devrewrite;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde_yaml_ng::Value;

use crate::builder::{Build, BuildError, Built};
use crate::publish::{Publish, PublishError};
use yaml::Document;

/// The prefix that marks an image to build.
pub const KO_PREFIX: &str = "ko://";

/// Errors resolving manifests; each names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A file or directory cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No YAML files where some were expected.
    #[error("{path}: no .yaml, .yml or .json files found (subdirectories are read with -R)")]
    NoFiles {
        /// The path.
        path: PathBuf,
    },
    /// A document is not valid YAML.
    #[error("{path}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A reference could not be built.
    #[error("{path}:{line}: building {reference}: {source}")]
    Build {
        /// The file.
        path: PathBuf,
        /// Where the reference is.
        line: usize,
        /// The `ko://` reference.
        reference: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
    /// A document cannot be rewritten for dev mode.
    #[error("{path}:{line}: {message}")]
    Rewrite {
        /// The file.
        path: PathBuf,
        /// Where the document starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A reference could not be published.
    #[error("{path}:{line}: publishing {reference}: {source}")]
    Publish {
        /// The file.
        path: PathBuf,
        /// Where the reference is.
        line: usize,
        /// The `ko://` reference.
        reference: String,
        /// Why.
        #[source]
        source: Box<PublishError>,
    },
}

/// One input file, split into documents.
#[derive(Debug)]
pub struct ManifestFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Its documents.
    pub documents: Vec<Document>,
}

/// Reads `path` (a file, a directory of `.yaml`/`.yml` files searched
/// recursively in name order, or `-` for stdin) and parses every document.
pub fn read_manifests(path: &Path, recursive: bool) -> Result<Vec<ManifestFile>, ResolveError> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|source| ResolveError::Read { path: p.into(), source });
    let files: Vec<(PathBuf, String)> = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|source| ResolveError::Read { path: path.into(), source })?;
        vec![(path.into(), s)]
    } else if path.is_dir() {
        let mut found = Vec::new();
        collect_yaml(path, recursive, &mut found)?;
        if found.is_empty() {
            return Err(ResolveError::NoFiles { path: path.into() });
        }
        found.into_iter().map(|p| read(&p).map(|t| (p, t))).collect::<Result<_, _>>()?
    } else {
        vec![(path.into(), read(path)?)]
    };
    files
        .into_iter()
        .map(|(path, text)| {
            let documents = yaml::split(&text)
                .into_iter()
                .map(|mut d| {
                    d.parse().map_err(|(line, column, message)| ResolveError::Yaml {
                        path: path.clone(),
                        line,
                        column,
                        message,
                    })?;
                    Ok(d)
                })
                .collect::<Result<_, _>>()?;
            Ok(ManifestFile { path, text, documents })
        })
        .collect()
}

/// The `.yaml`, `.yml` and `.json` files of `dir`, sorted, and with
/// `recursive` those of its subdirectories (kubectl's and ko's `-R`).
fn collect_yaml(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), ResolveError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ResolveError::Read { path: dir.into(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                collect_yaml(&p, recursive, out)?;
            }
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Every `ko://` string value in a document.
pub fn find_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with(KO_PREFIX) => out.push(s.clone()),
        Value::Sequence(seq) => seq.iter().for_each(|v| find_refs(v, out)),
        Value::Mapping(m) => m.values().for_each(|v| find_refs(v, out)),
        Value::Tagged(t) => find_refs(&t.value, out),
        _ => {}
    }
}

/// Replaces every string value found in `map`.
pub fn replace_refs(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(r) = map.get(s.as_str()) {
                *s = r.clone();
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(|v| replace_refs(v, map)),
        Value::Mapping(m) => m.values_mut().for_each(|v| replace_refs(v, map)),
        Value::Tagged(t) => replace_refs(&mut t.value, map),
        _ => {}
    }
}

/// The result of building one reference.
#[derive(Clone, Debug)]
pub struct ResolvedRef {
    /// The published reference (with digest).
    pub image: String,
    /// The build.
    pub built: Built,
}

/// Builds and publishes every distinct `ko://` reference in `files`, at most
/// `jobs` at a time. Returns reference → result.
pub async fn build_refs(
    files: &[ManifestFile],
    builder: &dyn Build,
    publisher: &dyn Publish,
    jobs: usize,
) -> Result<BTreeMap<String, ResolvedRef>, ResolveError> {
    // First place each reference appears, for messages.
    let mut sites: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for f in files {
        for d in &f.documents {
            let mut refs = Vec::new();
            if let Some(v) = &d.value {
                find_refs(v, &mut refs);
            }
            for r in refs {
                let line = d.line_of(&r);
                sites.entry(r).or_insert((f.path.clone(), line));
            }
        }
    }
    let results: Vec<Result<(String, ResolvedRef), ResolveError>> =
        futures::stream::iter(sites.into_iter().map(|(reference, (path, line))| async move {
            let package = reference.trim_start_matches(KO_PREFIX).to_string();
            let built = builder.build(&package).await.map_err(|source| ResolveError::Build {
                path: path.clone(),
                line,
                reference: reference.clone(),
                source: Box::new(source),
            })?;
            let image = publisher.publish(&built).await.map_err(|source| ResolveError::Publish {
                path: path.clone(),
                line,
                reference: reference.clone(),
                source: Box::new(source),
            })?;
            Ok((reference, ResolvedRef { image, built }))
        }))
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// A further edit of each document: returns whether it changed it, or why
/// it cannot be done.
pub type Edit<'a> = &'a dyn Fn(&mut Value) -> Result<bool, String>;

/// The dev-mode edit: every container running one of the built images gets
/// its command wrapped in watchexec (see [`devrewrite`]).
pub fn dev_edit(refs: &BTreeMap<String, ResolvedRef>) -> impl Fn(&mut Value) -> Result<bool, String> + '_ {
    dev_edit_with(refs, false)
}

/// [`dev_edit`], with the apps under delve when `debug` (`gohot dev --debug`).
pub fn dev_edit_with(
    refs: &BTreeMap<String, ResolvedRef>,
    debug: bool,
) -> impl Fn(&mut Value) -> Result<bool, String> + '_ {
    move |doc: &mut Value| {
        let mut changed = false;
        for r in refs.values() {
            let opts = devrewrite::DevRewrite::new(r.built.package.binary_name()).with_debug(debug);
            let image = r.image.clone();
            changed |=
                devrewrite::rewrite_document(doc, &|img: &str| img == image, &opts).map_err(|e| e.to_string())?;
        }
        Ok(changed)
    }
}

/// Writes the documents of `files` with references replaced, `---`-separated,
/// each passed through `edit` too.
pub fn render(
    files: &[ManifestFile],
    images: &HashMap<String, String>,
    edit: Edit<'_>,
) -> Result<String, ResolveError> {
    Ok(join(&render_documents(files, images, edit)?))
}

/// One document as [`render_documents`] writes it, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// `path`, or `path (document N)` in a file of several documents, for messages.
    pub origin: String,
    /// The document's text.
    pub text: String,
}

/// [`render`], one document at a time: documents with no content are left out.
pub fn render_documents(
    files: &[ManifestFile],
    images: &HashMap<String, String>,
    edit: Edit<'_>,
) -> Result<Vec<Rendered>, ResolveError> {
    let mut docs = Vec::new();
    for f in files {
        for (i, d) in f.documents.iter().enumerate() {
            let origin = if f.documents.len() > 1 {
                format!("{} (document {})", f.path.display(), i + 1)
            } else {
                f.path.display().to_string()
            };
            let Some(original) = &d.value else {
                if !d.text.trim().is_empty() {
                    docs.push(Rendered { origin, text: d.text.clone() });
                }
                continue;
            };
            let mut value = original.clone();
            replace_refs(&mut value, images);
            let edited = edit(&mut value).map_err(|message| ResolveError::Rewrite {
                path: f.path.clone(),
                line: d.start_line,
                message,
            })?;
            let text = if value == *original {
                d.text.clone()
            } else if let Some(text) = (!edited).then(|| yaml::replace_in_text(&d.text, images, &value)).flatten() {
                text
            } else {
                serde_yaml_ng::to_string(&value).unwrap_or_default()
            };
            docs.push(Rendered { origin, text });
        }
    }
    Ok(docs)
}

/// Rendered documents as one `---`-separated stream.
pub fn join(docs: &[Rendered]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&d.text);
        if !d.text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
