//! Manual sync rules and the decision "sync or rebuild" for a batch of changes.
//!
//! This module owns the `manual` half of Skaffold's "Sync improvements" design
//! proposal (and the user-side glob list of its `infer` half): a rule says
//! which context files (`src`, a glob that may contain `**`) go where in the
//! container (`dest`), optionally cutting leading folders off (`strip`).
//! Everything here is pure: it takes strings and returns strings, so the dev
//! loop can decide what to copy before it touches a container, and the same
//! answers can be tested without one.
//!
//! Semantics follow Skaffold's `matchSyncRules`:
//!
//! * a file's destination is `path.Join(dest, rel_path without strip)`; a
//!   relative `dest` is taken relative to the container's `WORKDIR` (a
//!   parameter here, since only the image config knows it);
//! * the folder structure below `strip` (or below the context when there is
//!   no `strip`) is recreated at `dest`, never flattened;
//! * every matching rule contributes a destination, not just the first one;
//! * a batch of changes is synced only when every changed and every deleted
//!   file matches some rule, otherwise the image is rebuilt.
//!
//! Where Skaffold is silent this module is stricter, so mistakes surface when
//! the configuration is loaded rather than as files landing in odd places:
//! `strip` must be made of whole leading folders of the glob's static part
//! (the folders before the first wildcard), and paths must be relative,
//! `/`-separated and free of `..`. A leading `./` on `src` is accepted and
//! ignored (Skaffold would silently never match it).

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// Characters that start a glob construct; a path component containing one
/// of them is not part of a glob's static part.
const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

/// One `manual` sync rule as written in `gohot.yaml` (same shape and field
/// names as Skaffold's `sync.manual[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRule {
    /// Glob relative to the build context, `/`-separated; `**` matches any
    /// number of folders (including none), `*` never crosses a `/`.
    pub src: String,
    /// Destination folder in the container; relative destinations are
    /// resolved against the container's `WORKDIR`.
    pub dest: String,
    /// Leading folders of `src` that are not recreated at `dest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip: Option<String>,
    /// gohot's addition: the services (app names) the rule applies to in a
    /// session with several. Empty: the services whose package directory
    /// holds the file, else every service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
}

/// Why a sync rule, an infer pattern or a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// `src` is not a valid glob.
    #[error("sync.manual[{index}] (src `{src}`): invalid glob: {source}")]
    BadGlob {
        /// Position of the rule in the `manual` list (0-based).
        index: usize,
        /// The rule's `src` as written.
        src: String,
        /// What the glob compiler said.
        #[source]
        source: globset::Error,
    },
    /// `strip` is not made of leading folders of the glob's static part.
    #[error(
        "sync.manual[{index}] (src `{src}`): strip `{strip}` is not a prefix of `{static_part}`, \
         the part of src before its first wildcard{hint}"
    )]
    StripNotPrefix {
        /// Position of the rule in the `manual` list (0-based).
        index: usize,
        /// The rule's `src` as written.
        src: String,
        /// The rule's `strip` as written.
        strip: String,
        /// The folders of `src` before the first wildcard, `/`-terminated
        /// (empty when `src` starts with a wildcard).
        static_part: String,
        /// Extra explanation appended to the message (may be empty).
        hint: &'static str,
    },
    /// A field of the rule is unusable (empty, absolute, contains `..`).
    #[error("sync.manual[{index}] (src `{src}`): {field} {reason}")]
    InvalidRule {
        /// Position of the rule in the `manual` list (0-based).
        index: usize,
        /// The rule's `src` as written.
        src: String,
        /// Which field is wrong (`src`, `dest` or `strip`).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An `infer` pattern is not a valid glob.
    #[error("sync.infer[{index}] (`{pattern}`): invalid glob: {source}")]
    BadInferPattern {
        /// Position of the pattern in the `infer` list (0-based).
        index: usize,
        /// The pattern as written.
        pattern: String,
        /// What the glob compiler said.
        #[source]
        source: globset::Error,
    },
    /// A file path handed in is not a clean context-relative path.
    #[error("path `{path}` is not relative to the build context: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// What the dev loop should do about a batch of file changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    /// Every file is covered by the rules: copy and delete in the running
    /// containers instead of rebuilding.
    Sync {
        /// Each changed file (context-relative) with all its absolute
        /// destinations, in the order the files were given.
        copy: Vec<(String, Vec<String>)>,
        /// Absolute container paths to delete, sorted and deduplicated.
        delete: Vec<String>,
    },
    /// Some file is not covered: the image must be rebuilt.
    Rebuild {
        /// The files that forced the rebuild (context-relative, as given).
        unmatched: Vec<String>,
    },
}

#[derive(Debug, Clone)]
struct CompiledRule {
    matcher: GlobMatcher,
    dest: String,
    /// How many leading components of a matching path `strip` removes.
    strip_components: usize,
    /// The services it is for (empty: see [`ManualRule::apps`]).
    apps: Vec<String>,
}

/// A validated, compiled list of manual rules.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    rules: Vec<CompiledRule>,
}

impl CompiledRules {
    /// Validates and compiles `rules`, reporting the first bad rule by its
    /// index and `src`.
    ///
    /// Refused: an empty `src` or `dest`; a `src` that is absolute or
    /// contains a `..` folder; a `src` that is not a valid glob; a `strip`
    /// that is not made of whole leading folders of the glob's static part
    /// (for `src: static/**/*.html`, `strip` may be `static` or `static/`,
    /// but not `stat`, `static/sub` or `app/`).
    pub fn new(rules: Vec<ManualRule>) -> Result<Self, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (index, rule) in rules.into_iter().enumerate() {
            compiled.push(compile_rule(index, rule)?);
        }
        Ok(Self { rules: compiled })
    }

    /// Every app name a rule's `apps` names, with the rule's index (to check
    /// them against the session's services).
    pub fn named_apps(&self) -> impl Iterator<Item = (usize, &str)> {
        self.rules.iter().enumerate().flat_map(|(i, r)| r.apps.iter().map(move |a| (i, a.as_str())))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// All destinations of `rel_path` (context-relative, `/`-separated) from
    /// all matching rules, in rule order, without duplicates. Destinations
    /// are absolute and clean; relative `dest`s are resolved against
    /// `workdir` (the container's `WORKDIR`; empty means `/`).
    ///
    /// An empty result means no rule matches. A path that is absolute or
    /// contains `..` is an error.
    pub fn destinations(&self, rel_path: &str, workdir: &str) -> Result<Vec<String>, RuleError> {
        self.destinations_where(rel_path, workdir, |_| true)
    }

    /// [`CompiledRules::destinations`] from the rules `accept` takes, given
    /// each rule's `apps` (a session with several services asks per service).
    pub fn destinations_where(
        &self,
        rel_path: &str,
        workdir: &str,
        accept: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, RuleError> {
        let path = normalize_rel_path(rel_path)
            .map_err(|reason| RuleError::InvalidPath { path: rel_path.to_owned(), reason })?;
        let workdir = clean_abs(workdir);
        let mut out: Vec<String> = Vec::new();
        for rule in &self.rules {
            if !rule.matcher.is_match(&path) || !accept(&rule.apps) {
                continue;
            }
            let sub = path.split('/').skip(rule.strip_components).collect::<Vec<_>>().join("/");
            let dest = if rule.dest.starts_with('/') {
                join_abs(&[&rule.dest, &sub])
            } else {
                join_abs(&[&workdir, &rule.dest, &sub])
            };
            if !out.contains(&dest) {
                out.push(dest);
            }
        }
        Ok(out)
    }
}

fn compile_rule(index: usize, rule: ManualRule) -> Result<CompiledRule, RuleError> {
    let invalid = |field: &'static str, reason: &'static str| RuleError::InvalidRule {
        index,
        src: rule.src.clone(),
        field,
        reason,
    };
    let mut src = rule.src.as_str();
    while let Some(rest) = src.strip_prefix("./") {
        src = rest;
    }
    if src.is_empty() {
        return Err(invalid("src", "is empty"));
    }
    if src.starts_with('/') {
        return Err(invalid("src", "is absolute; it must be relative to the build context"));
    }
    if src.split('/').any(|c| c == "..") {
        return Err(invalid("src", "contains `..`; it must stay inside the build context"));
    }
    if rule.dest.trim().is_empty() {
        return Err(invalid("dest", "is empty"));
    }
    let matcher = GlobBuilder::new(src)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| RuleError::BadGlob { index, src: rule.src.clone(), source })?
        .compile_matcher();

    let static_components: Vec<&str> =
        src.split('/').take_while(|c| !c.contains(GLOB_META)).filter(|c| !c.is_empty() && *c != ".").collect();
    let strip_components = match rule.strip.as_deref() {
        None => 0,
        Some(strip) => {
            let not_prefix = |hint: &'static str| RuleError::StripNotPrefix {
                index,
                src: rule.src.clone(),
                strip: strip.to_owned(),
                static_part: static_components.iter().map(|c| format!("{c}/")).collect::<String>(),
                hint,
            };
            if strip.starts_with('/') {
                return Err(not_prefix(" (strip must be relative, like src)"));
            }
            let parts: Vec<&str> = strip.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            if parts.len() > static_components.len() {
                let hint = if static_components.is_empty() {
                    " (src starts with a wildcard, so there is nothing to strip)"
                } else {
                    " (strip reaches past the first wildcard)"
                };
                return Err(not_prefix(hint));
            }
            if parts.iter().zip(&static_components).any(|(a, b)| a != b) {
                let hint = if static_components.concat().starts_with(parts.concat().as_str()) {
                    " (strip must end at a folder boundary)"
                } else {
                    ""
                };
                return Err(not_prefix(hint));
            }
            parts.len()
        }
    };
    Ok(CompiledRule { matcher, dest: rule.dest, strip_components, apps: rule.apps })
}

/// The user's `infer` list: globs saying which files may be synced to the
/// destinations inferred from a Dockerfile (Skaffold's `sync.infer`).
#[derive(Debug, Clone)]
pub struct InferPatterns {
    set: GlobSet,
}

impl InferPatterns {
    /// Compiles the globs (same syntax as [`ManualRule::src`]), reporting the
    /// first bad one by index.
    pub fn new(patterns: Vec<String>) -> Result<Self, RuleError> {
        let mut builder = GlobSetBuilder::new();
        for (index, pattern) in patterns.into_iter().enumerate() {
            let mut text = pattern.as_str();
            while let Some(rest) = text.strip_prefix("./") {
                text = rest;
            }
            let glob = GlobBuilder::new(text)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| RuleError::BadInferPattern { index, pattern: pattern.clone(), source })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|source| RuleError::BadInferPattern {
            index: 0,
            pattern: String::new(),
            source,
        })?;
        Ok(Self { set })
    }

    /// Patterns that let every file be synced (`**`).
    pub fn match_all() -> Self {
        let mut builder = GlobSetBuilder::new();
        if let Ok(glob) = GlobBuilder::new("**").build() {
            builder.add(glob);
        }
        Self { set: builder.build().unwrap_or_else(|_| GlobSet::empty()) }
    }

    /// Whether `rel_path` (context-relative) may be synced. Paths that are
    /// absolute or contain `..` never match.
    pub fn matches(&self, rel_path: &str) -> bool {
        match normalize_rel_path(rel_path) {
            Ok(path) => self.set.is_match(&path),
            Err(_) => false,
        }
    }
}

/// Decides whether a batch of changes under manual rules can be synced.
///
/// `changed` are added or modified files, `deleted` are removed files, both
/// context-relative. The answer is [`ChangeAction::Sync`] when every one of
/// them matches at least one rule (deleted files are deleted at every
/// destination they would have been copied to), otherwise
/// [`ChangeAction::Rebuild`] listing the files that match no rule. Paths that
/// are absolute or contain `..` count as unmatched. `workdir` is the
/// container's `WORKDIR`, used for relative `dest`s.
pub fn classify_change(rules: &CompiledRules, changed: &[String], deleted: &[String], workdir: &str) -> ChangeAction {
    let mut unmatched = Vec::new();
    let mut copy: Vec<(String, Vec<String>)> = Vec::new();
    let mut delete = Vec::new();
    for file in changed {
        match rules.destinations(file, workdir) {
            Ok(dests) if !dests.is_empty() => {
                let local = normalize_rel_path(file).unwrap_or_else(|_| file.clone());
                if !copy.iter().any(|(l, _)| *l == local) {
                    copy.push((local, dests));
                }
            }
            _ => unmatched.push(file.clone()),
        }
    }
    for file in deleted {
        match rules.destinations(file, workdir) {
            Ok(dests) if !dests.is_empty() => delete.extend(dests),
            _ => unmatched.push(file.clone()),
        }
    }
    if !unmatched.is_empty() {
        return ChangeAction::Rebuild { unmatched };
    }
    delete.sort();
    delete.dedup();
    ChangeAction::Sync { copy, delete }
}

/// Normalizes a context-relative path: drops `.` and empty components, and
/// refuses absolute paths, `..` components and paths naming the context
/// itself. Returns the `/`-joined result.
pub(crate) fn normalize_rel_path(path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("it is absolute");
    }
    let mut parts = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("it contains `..`"),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err("it names no file");
    }
    Ok(parts.join("/"))
}

/// Joins `/`-separated path pieces and cleans the result like Go's
/// `path.Clean` on an absolute path (`..` never climbs above `/`).
pub(crate) fn join_abs(pieces: &[&str]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for piece in pieces {
        for component in piece.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
    }
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Cleans a container path into an absolute one (relative means relative to
/// `/`, empty means `/`).
pub(crate) fn clean_abs(path: &str) -> String {
    join_abs(&[path])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(src: &str, dest: &str, strip: Option<&str>) -> ManualRule {
        ManualRule { src: src.into(), dest: dest.into(), strip: strip.map(Into::into), apps: Vec::new() }
    }

    fn compiled(rules: &[ManualRule]) -> CompiledRules {
        CompiledRules::new(rules.to_vec()).unwrap()
    }

    fn dests(rules: &CompiledRules, path: &str, workdir: &str) -> Vec<String> {
        rules.destinations(path, workdir).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strip_recreates_structure_below_strip() {
        let r = compiled(&[rule("static/**/*.html", "/var/www", Some("static/"))]);
        assert_eq!(dests(&r, "static/a/b.html", "/"), ["/var/www/a/b.html"]);
        assert_eq!(dests(&r, "static/top.html", "/"), ["/var/www/top.html"]);
    }

    #[test]
    fn without_strip_the_whole_relative_path_is_kept() {
        let r = compiled(&[rule("static/**/*.html", "/var/www", None)]);
        assert_eq!(dests(&r, "static/a/b.html", "/"), ["/var/www/static/a/b.html"]);
    }

    #[test]
    fn strip_without_trailing_slash_is_the_same() {
        let r = compiled(&[rule("static/**/*.html", "/var/www", Some("static"))]);
        assert_eq!(dests(&r, "static/a/b.html", "/"), ["/var/www/a/b.html"]);
    }

    #[test]
    fn strip_several_folders() {
        let r = compiled(&[rule("content/en/**/*.md", "content", Some("content/en/"))]);
        assert_eq!(dests(&r, "content/en/index.md", "/app"), ["/app/content/index.md"]);
        assert_eq!(dests(&r, "content/en/sub/index.md", "/app"), ["/app/content/sub/index.md"]);
        assert!(dests(&r, "content/en_GB/index.md", "/app").is_empty());
    }

    #[test]
    fn skaffold_documentation_examples() {
        // The four rules of Skaffold's filesync-manual.yaml sample.
        let r = compiled(&[
            rule(".filebaserc", "/etc", None),
            rule("static-html/*.html", "static", None),
            rule("**/*.png", "assets", None),
            rule("content/en/**/*.md", "content", Some("content/en/")),
        ]);
        let wd = "/work";
        assert_eq!(dests(&r, ".filebaserc", wd), ["/etc/.filebaserc"]);
        assert_eq!(dests(&r, "static-html/a.html", wd), ["/work/static/static-html/a.html"]);
        assert!(dests(&r, "static-html/sub/a.html", wd).is_empty());
        assert_eq!(dests(&r, "img.png", wd), ["/work/assets/img.png"]);
        assert_eq!(dests(&r, "sub/img.png", wd), ["/work/assets/sub/img.png"]);
        assert_eq!(dests(&r, "content/en/sub/index.md", wd), ["/work/content/sub/index.md"]);
    }

    #[test]
    fn relative_dest_uses_workdir() {
        let r = compiled(&[rule("src/**/*.js", "app/", Some("src/"))]);
        assert_eq!(dests(&r, "src/a/b.js", "/home/node"), ["/home/node/app/a/b.js"]);
        // An empty or relative WORKDIR is taken relative to `/`.
        assert_eq!(dests(&r, "src/b.js", ""), ["/app/b.js"]);
        assert_eq!(dests(&r, "src/b.js", "srv"), ["/srv/app/b.js"]);
    }

    #[test]
    fn dot_dest_is_workdir() {
        let r = compiled(&[rule("src/**/*.ts", ".", None)]);
        assert_eq!(dests(&r, "src/x/y.ts", "/app"), ["/app/src/x/y.ts"]);
    }

    #[test]
    fn dest_with_dotdot_is_cleaned_but_stays_below_root() {
        let r = compiled(&[rule("*.txt", "../../../up", None)]);
        assert_eq!(dests(&r, "a.txt", "/app"), ["/up/a.txt"]);
    }

    #[test]
    fn all_matching_rules_count_not_just_the_first() {
        let r = compiled(&[
            rule("conf/*.conf", "/etc/app", Some("conf")),
            rule("**/*.conf", "/backup", None),
            rule("conf/nginx.conf", "/etc/nginx", Some("conf")),
            // Same destination twice is reported once.
            rule("conf/**", "/etc/app", Some("conf/")),
        ]);
        assert_eq!(
            dests(&r, "conf/nginx.conf", "/"),
            ["/etc/app/nginx.conf", "/backup/conf/nginx.conf", "/etc/nginx/nginx.conf"]
        );
    }

    #[test]
    fn double_star_matches_zero_or_more_folders() {
        let r = compiled(&[rule("web/**/*.css", "/srv", Some("web"))]);
        assert_eq!(dests(&r, "web/a.css", "/"), ["/srv/a.css"]);
        assert_eq!(dests(&r, "web/x/y/z/a.css", "/"), ["/srv/x/y/z/a.css"]);
        assert!(dests(&r, "other/a.css", "/").is_empty());
        let all = compiled(&[rule("**", "/all", None)]);
        assert_eq!(dests(&all, "deep/er/file", "/"), ["/all/deep/er/file"]);
    }

    #[test]
    fn single_star_does_not_cross_folders() {
        let r = compiled(&[rule("*.go", "/src", None)]);
        assert_eq!(dests(&r, "main.go", "/"), ["/src/main.go"]);
        assert!(dests(&r, "pkg/x.go", "/").is_empty());
    }

    #[test]
    fn braces_and_classes_work() {
        let r = compiled(&[rule("assets/*.{png,jpg}", "/img", Some("assets"))]);
        assert_eq!(dests(&r, "assets/a.jpg", "/"), ["/img/a.jpg"]);
        assert!(dests(&r, "assets/a.gif", "/").is_empty());
        let r = compiled(&[rule("v[0-9]/*", "/v", None)]);
        assert_eq!(dests(&r, "v1/x", "/"), ["/v/v1/x"]);
    }

    #[test]
    fn literal_src_with_full_strip_renames_exactly() {
        let r = compiled(&[rule("config/app.yaml", "/etc/app.yaml", Some("config/app.yaml"))]);
        assert_eq!(dests(&r, "config/app.yaml", "/"), ["/etc/app.yaml"]);
    }

    #[test]
    fn leading_dot_slash_in_src_and_path_is_accepted() {
        let r = compiled(&[rule("./src/**/*.ts", "/app", Some("./src"))]);
        assert_eq!(dests(&r, "./src/a.ts", "/"), ["/app/a.ts"]);
        assert_eq!(dests(&r, "src//b/a.ts", "/"), ["/app/b/a.ts"]);
    }

    #[test]
    fn strip_not_prefix_is_an_error_naming_the_rule() {
        // Both error cases of the design proposal.
        for (i, bad) in ["src/sub", "app/"].iter().enumerate() {
            let rules = vec![rule("ok/**", "/ok", None), rule("src/**/*.js", "dest/", Some(bad))];
            let err = CompiledRules::new(rules).unwrap_err();
            match &err {
                RuleError::StripNotPrefix { index, src, strip, static_part, .. } => {
                    assert_eq!(*index, 1, "case {i}");
                    assert_eq!(src, "src/**/*.js");
                    assert_eq!(strip, bad);
                    assert_eq!(static_part, "src/");
                }
                other => panic!("unexpected {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains("sync.manual[1]"), "{msg}");
            assert!(msg.contains("src/**/*.js"), "{msg}");
            assert!(msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn strip_must_end_at_a_folder_boundary() {
        let err = CompiledRules::new(vec![rule("static/**", "/w", Some("stat"))]).unwrap_err();
        assert!(err.to_string().contains("folder boundary"), "{err}");
    }

    #[test]
    fn strip_with_no_static_part_is_an_error() {
        let err = CompiledRules::new(vec![rule("**/*.png", "/w", Some("assets/"))]).unwrap_err();
        assert!(matches!(err, RuleError::StripNotPrefix { .. }));
        assert!(err.to_string().contains("nothing to strip"), "{err}");
    }

    #[test]
    fn strip_stops_at_first_wildcard_component() {
        // `a*` is not static even though `a` is its literal prefix.
        let err = CompiledRules::new(vec![rule("src/a*/x", "/w", Some("src/a"))]).unwrap_err();
        assert!(matches!(err, RuleError::StripNotPrefix { .. }), "{err:?}");
        assert!(CompiledRules::new(vec![rule("src/a*/x", "/w", Some("src"))]).is_ok());
        let err = CompiledRules::new(vec![rule("a/b", "/w", Some("/a"))]).unwrap_err();
        assert!(err.to_string().contains("relative"), "{err}");
    }

    #[test]
    fn empty_strip_is_no_strip() {
        let r = compiled(&[rule("a/*.txt", "/w", Some(""))]);
        assert_eq!(dests(&r, "a/x.txt", "/"), ["/w/a/x.txt"]);
    }

    #[test]
    fn bad_glob_is_an_error_naming_the_rule() {
        let err = CompiledRules::new(vec![rule("ok", "/d", None), rule("src/[a", "/d", None)]).unwrap_err();
        assert!(matches!(err, RuleError::BadGlob { index: 1, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("sync.manual[1]") && msg.contains("src/[a"), "{msg}");
    }

    #[test]
    fn invalid_fields_are_errors() {
        let cases = [
            rule("", "/d", None),
            rule("/abs/*.x", "/d", None),
            rule("../up/*.x", "/d", None),
            rule("a/../b", "/d", None),
            rule("a", "", None),
            rule("a", "  ", None),
        ];
        for case in cases {
            let err = CompiledRules::new(vec![case.clone()]).unwrap_err();
            assert!(matches!(err, RuleError::InvalidRule { index: 0, .. }), "{case:?} -> {err:?}");
        }
    }

    #[test]
    fn invalid_paths_are_rejected() {
        let r = compiled(&[rule("**", "/d", None)]);
        for bad in ["/etc/passwd", "../x", "a/../../x", "", ".", "./"] {
            let err = r.destinations(bad, "/").unwrap_err();
            assert!(matches!(err, RuleError::InvalidPath { .. }), "{bad}");
        }
    }

    #[test]
    fn deserializes_from_json_with_skaffold_field_names() {
        let rules: Vec<ManualRule> = serde_json::from_str(
            r#"[{"src":"src/**/*.js","dest":"app/","strip":"src/"},{"src":"*.css","dest":"/css"}]"#,
        )
        .unwrap();
        assert_eq!(rules[0], rule("src/**/*.js", "app/", Some("src/")));
        assert_eq!(rules[1], rule("*.css", "/css", None));
        let unknown = serde_json::from_str::<ManualRule>(r#"{"src":"a","dest":"b","from":"c"}"#);
        assert!(unknown.is_err());
        let missing = serde_json::from_str::<ManualRule>(r#"{"src":"a"}"#);
        assert!(missing.is_err());
    }

    #[test]
    fn classify_all_matched_syncs_with_deletes() {
        let r =
            compiled(&[rule("static/**", "/www", Some("static")), rule("static/**/*.html", "/mirror", Some("static"))]);
        let action = classify_change(
            &r,
            &strings(&["static/a.html", "static/css/x.css"]),
            &strings(&["static/old.html", "static/b.js"]),
            "/",
        );
        assert_eq!(
            action,
            ChangeAction::Sync {
                copy: vec![
                    ("static/a.html".into(), strings(&["/www/a.html", "/mirror/a.html"])),
                    ("static/css/x.css".into(), strings(&["/www/css/x.css"])),
                ],
                delete: strings(&["/mirror/old.html", "/www/b.js", "/www/old.html"]),
            }
        );
    }

    #[test]
    fn classify_any_unmatched_rebuilds() {
        let r = compiled(&[rule("static/**", "/www", Some("static"))]);
        let action =
            classify_change(&r, &strings(&["static/a.html", "main.go"]), &strings(&["go.mod", "static/x"]), "/");
        assert_eq!(action, ChangeAction::Rebuild { unmatched: strings(&["main.go", "go.mod"]) });
    }

    #[test]
    fn classify_invalid_paths_rebuild() {
        let r = compiled(&[rule("**", "/www", None)]);
        let action = classify_change(&r, &strings(&["../escape"]), &[], "/");
        assert_eq!(action, ChangeAction::Rebuild { unmatched: strings(&["../escape"]) });
    }

    #[test]
    fn classify_empty_batch_is_an_empty_sync() {
        let r = compiled(&[]);
        assert!(r.is_empty());
        assert_eq!(classify_change(&r, &[], &[], "/"), ChangeAction::Sync { copy: vec![], delete: vec![] });
    }

    #[test]
    fn infer_patterns_match_and_report_errors() {
        let p = InferPatterns::new(strings(&["**/*.html", "./conf/*"])).unwrap();
        assert!(p.matches("static/page1.html"));
        assert!(p.matches("index.html"));
        assert!(p.matches("conf/nginx.conf"));
        assert!(!p.matches("conf/sub/nginx.conf"));
        assert!(!p.matches("/abs.html"));
        assert!(InferPatterns::match_all().matches("any/thing"));
        let err = InferPatterns::new(strings(&["ok", "bad[", "x"])).unwrap_err();
        assert!(matches!(err, RuleError::BadInferPattern { index: 1, .. }));
        assert!(err.to_string().contains("sync.infer[1]"));
    }

    #[test]
    fn path_helpers() {
        assert_eq!(join_abs(&["/a/", "./b", "", "c/.."]), "/a/b");
        assert_eq!(join_abs(&["..", ".."]), "/");
        assert_eq!(clean_abs(""), "/");
        assert_eq!(normalize_rel_path("./a//b/./c").unwrap(), "a/b/c");
    }
}
