//! Sync destinations inferred from a Dockerfile (Skaffold's `infer` mode).
//!
//! This module owns the answer to "if this context file changes, where in the
//! running container does it live?" for images built from a Dockerfile. It
//! reads the Dockerfile text, follows `FROM`, `ARG`, `ENV`, `WORKDIR`, `COPY`
//! and `ADD` the way Docker (BuildKit) does, applies `.dockerignore`, and
//! returns a [`SyncMap`]: every context file that ends up in the final image,
//! with every absolute path it is copied to. Like the rest of `sync`, it does
//! no I/O: the caller hands in the Dockerfile text, the list of context files
//! and the `.dockerignore` text.
//!
//! Docker semantics followed (Skaffold's `SyncMap` aims at the same; where
//! the two differ this module follows Docker, see the end of this list):
//!
//! * Parsing: `\` line continuations (or the `# escape=` directive's
//!   character), comment and blank lines inside continuations, instructions
//!   in any case, JSON-array form, flags (`--chown`, `--chmod`, `--link`, …)
//!   ignored, heredoc bodies (`COPY <<EOF /x`) skipped.
//! * Variables: `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`,
//!   `${VAR+x}`, `${VAR:?msg}`, quotes and escapes, in `FROM` (global `ARG`s),
//!   `WORKDIR`, `COPY`, `ADD`, `ENV` and `ARG` defaults. An `ARG` takes its
//!   build-arg override, else its default, else (inside a stage, when declared
//!   without a default) the global `ARG` of that name; `ENV` wins over `ARG`;
//!   an undefined variable expands to nothing, as in Docker.
//! * Stages: only the last stage's image counts. A stage built `FROM` an
//!   earlier stage inherits that stage's files, `WORKDIR` and `ENV`; any
//!   other stage starts empty at its base image's `WORKDIR` (`/` unless
//!   [`InferOptions::base_workdirs`] says otherwise). `COPY --from=…` copies
//!   come from another stage or image, never from the context, so they are
//!   not in the map.
//! * Copies: a directory source copies its contents (not the folder itself);
//!   wildcard sources (`*`, `?`, `[…]`, matched per path like Go's
//!   `filepath.Match`) match files and folders of the context; a destination
//!   is a folder when it ends in `/`, is `.`/`..`, when there are several
//!   sources, when a source is a folder, or when an earlier instruction made
//!   it a folder (`WORKDIR`, an earlier copy into it); otherwise a single
//!   file is copied to exactly that path. Relative destinations are relative
//!   to `WORKDIR`. A later copy to the same container path replaces the
//!   earlier one. `ADD` of a URL or git repository is ignored.
//! * `.dockerignore`: Docker's rules (paths relative to the context, `*`,
//!   `?`, `[…]`, `**`, `!` exceptions, the last matching line wins, a line
//!   matching a folder excludes everything under it). Excluded files are not
//!   in the context, so they are never in the map.
//!
//! Differences from Skaffold, all towards what Docker really builds: a
//! stage `FROM` an earlier stage keeps that stage's copies (Skaffold drops
//! them); a wildcard source matching nothing is not an error while a missing
//! literal source is (Skaffold errors only when no source of the instruction
//! matches); a file copied to a path known to be a folder lands inside it.
//!
//! Deliberately conservative (the file then simply is not in the map, so a
//! change to it rebuilds instead of syncing): `ADD` of a local tar archive
//! (recognised by its name: Docker unpacks it), and `COPY --parents` /
//! `COPY --exclude` instructions. Not knowable without I/O: `ONBUILD`
//! triggers of base images, and folders that exist only in the base image (a
//! file copied to such a path without a trailing `/` is mapped as a file, as
//! Skaffold does).

use std::collections::{BTreeMap, BTreeSet};

use super::rules::{clean_abs, join_abs, normalize_rel_path, ChangeAction, InferPatterns};

/// Context file (relative, `/`-separated) → every absolute container path it
/// is copied to (sorted, no duplicates). The design proposal's `SyncMap`.
pub type SyncMap = BTreeMap<String, Vec<String>>;

/// Maximum nesting of `${…}` inside `${…}` before giving up.
const MAX_SUBSTITUTION_DEPTH: usize = 16;

/// Why a Dockerfile (or its `.dockerignore`, or the context list) could not
/// be turned into a sync map. Dockerfile errors name the line on which the
/// instruction starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DockerfileError {
    /// A JSON-form argument list has no closing `]`.
    #[error("Dockerfile line {line}: {instruction} has an unterminated JSON array: `{text}`")]
    UnterminatedJsonArray {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The argument text.
        text: String,
    },
    /// A JSON-form argument list is not a JSON array of strings.
    #[error("Dockerfile line {line}: {instruction} has an invalid JSON array ({reason}): `{text}`")]
    InvalidJsonArray {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The argument text.
        text: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// An instruction has fewer arguments than it needs.
    #[error("Dockerfile line {line}: {instruction} needs at least {expected} argument(s), found {found}")]
    MissingArguments {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// How many arguments are needed.
        expected: usize,
        /// How many were given.
        found: usize,
    },
    /// A word could not be expanded (unterminated quote or `${`, `${X:?}`
    /// with `X` unset, an unsupported `${…}` form).
    #[error("Dockerfile line {line}: cannot expand `{word}`: {reason}")]
    BadSubstitution {
        /// Line of the instruction.
        line: usize,
        /// The word as written.
        word: String,
        /// What is wrong.
        reason: String,
    },
    /// A `COPY`/`ADD` source without wildcards is not in the context.
    #[error(
        "Dockerfile line {line}: {instruction} source `{path}` is not in the build context \
         (missing, or excluded by .dockerignore)"
    )]
    SourceNotFound {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The source after variable expansion.
        path: String,
    },
    /// A `COPY`/`ADD` wildcard source is malformed.
    #[error("Dockerfile line {line}: {instruction} source pattern `{pattern}` is invalid: {reason}")]
    BadSourcePattern {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword, upper case.
        instruction: String,
        /// The pattern after variable expansion.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An instruction is malformed in some other way.
    #[error("Dockerfile line {line}: {instruction}: {reason}")]
    InvalidInstruction {
        /// Line of the instruction.
        line: usize,
        /// The instruction keyword (upper case) or directive.
        instruction: String,
        /// What is wrong.
        reason: String,
    },
    /// A heredoc (`<<EOF`) is never closed.
    #[error("Dockerfile line {line}: heredoc `<<{delimiter}` is never closed")]
    UnterminatedHeredoc {
        /// Line of the instruction that opens the heredoc.
        line: usize,
        /// The closing word that was expected.
        delimiter: String,
    },
    /// The Dockerfile has no `FROM`, so it builds no image.
    #[error("Dockerfile has no FROM instruction")]
    NoFromInstruction,
    /// A `.dockerignore` line is not a valid pattern.
    #[error(".dockerignore line {line}: pattern `{pattern}` is invalid: {reason}")]
    BadIgnorePattern {
        /// Line in the `.dockerignore` (1-based).
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry of the context file list is not a clean relative path.
    #[error("context file `{path}` is not a clean relative path: {reason}")]
    InvalidContextPath {
        /// The entry as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Knowledge about base images that only the caller can fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InferOptions {
    /// `WORKDIR` of base images, keyed by the image reference exactly as it
    /// appears in `FROM` after `ARG` substitution (for example `golang:1.22`).
    /// A base image not listed here starts at `/`.
    pub base_workdirs: BTreeMap<String, String>,
}

/// Infers the sync map of the Dockerfile text `dockerfile`.
///
/// `build_args` override `ARG` defaults; `context_files` lists every regular
/// file of the build context (relative, `/`-separated); `dockerignore` is the
/// text of the `.dockerignore` that applies, if any. Base images are assumed
/// to have `WORKDIR /`; see [`sync_map_with`] to say otherwise.
pub fn sync_map(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    context_files: &[String],
    dockerignore: Option<&str>,
) -> Result<SyncMap, DockerfileError> {
    sync_map_with(dockerfile, build_args, context_files, dockerignore, &InferOptions::default())
}

/// [`sync_map`] with knowledge about base images.
pub fn sync_map_with(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    context_files: &[String],
    dockerignore: Option<&str>,
    options: &InferOptions,
) -> Result<SyncMap, DockerfileError> {
    let (lines, escape) = logical_lines(dockerfile)?;
    let ignore = match dockerignore {
        Some(text) => DockerIgnore::parse(text)?,
        None => DockerIgnore::default(),
    };
    let context = Context::new(context_files, &ignore)?;
    let mut builder = Builder {
        escape,
        build_args,
        options,
        context: &context,
        global_args: BTreeMap::new(),
        stages: Vec::new(),
        stage_names: BTreeMap::new(),
    };
    for line in &lines {
        builder.instruction(line)?;
    }
    let stage = builder.stages.pop().ok_or(DockerfileError::NoFromInstruction)?;
    let mut map = SyncMap::new();
    for (dest, src) in stage.files {
        // Iterating a BTreeMap by destination keeps each list sorted.
        map.entry(src).or_default().push(dest);
    }
    Ok(map)
}

/// Decides whether a batch of changes under `infer` can be synced.
///
/// A changed file is synced when it matches the user's `patterns` and is in
/// `map` (computed from the context as it is now, so that added files are
/// in it). Any deleted file asks for a rebuild: once deleted it is no longer
/// in the map, and Docker would no longer copy it (Skaffold does the same).
/// The unmatched list holds the changed files that could not be synced, then
/// the deleted files.
///
/// The caller should treat changes to the Dockerfile and `.dockerignore`
/// themselves as rebuilds before asking this.
pub fn classify_infer_change(
    patterns: &InferPatterns,
    map: &SyncMap,
    changed: &[String],
    deleted: &[String],
) -> ChangeAction {
    let mut copy: Vec<(String, Vec<String>)> = Vec::new();
    let mut unmatched = Vec::new();
    for file in changed {
        let found = normalize_rel_path(file).ok().and_then(|path| {
            if !patterns.matches(&path) {
                return None;
            }
            map.get(&path).filter(|dests| !dests.is_empty()).map(|dests| (path, dests.clone()))
        });
        match found {
            Some((path, dests)) => {
                if !copy.iter().any(|(l, _)| *l == path) {
                    copy.push((path, dests));
                }
            }
            None => unmatched.push(file.clone()),
        }
    }
    unmatched.extend(deleted.iter().cloned());
    if unmatched.is_empty() {
        ChangeAction::Sync { copy, delete: Vec::new() }
    } else {
        ChangeAction::Rebuild { unmatched }
    }
}

// ---------------------------------------------------------------------------
// .dockerignore

/// A parsed `.dockerignore`, with Docker's matching rules.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<IgnorePattern>,
}

#[derive(Debug, Clone)]
struct IgnorePattern {
    exclusion: bool,
    tokens: Vec<Tok>,
    /// The pattern itself when it has no wildcard (compared directly).
    literal: Option<String>,
}

impl IgnorePattern {
    fn matches(&self, path: &[char], path_str: &str) -> bool {
        match &self.literal {
            Some(literal) => literal == path_str,
            None => glob_match(&self.tokens, path),
        }
    }
}

impl DockerIgnore {
    /// Parses `.dockerignore` text: one pattern a line, `#` comments, blank
    /// lines ignored, `!` for exceptions, leading `/` and `./` dropped.
    pub fn parse(text: &str) -> Result<Self, DockerfileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            // As in Docker: a comment is a line starting with `#`, checked
            // before trimming.
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let bad = |reason| DockerfileError::BadIgnorePattern { line, pattern: raw.to_owned(), reason };
            let (exclusion, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if exclusion && rest.is_empty() {
                return Err(bad("`!` must be followed by a pattern"));
            }
            let mut pattern = go_clean(rest);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            let tokens = compile_pattern(&pattern, true).map_err(bad)?;
            let literal = tokens
                .iter()
                .map(|t| match t {
                    Tok::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect::<Option<String>>();
            patterns.push(IgnorePattern { exclusion, tokens, literal });
        }
        Ok(Self { patterns })
    }

    /// Whether `rel_path` (context-relative, file or folder) is excluded
    /// from the build context. The last matching pattern decides; a pattern
    /// also matches everything below a folder it matches. Invalid paths
    /// (absolute, with `..`) are never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let Ok(path) = normalize_rel_path(rel_path) else {
            return false;
        };
        let chars: Vec<char> = path.chars().collect();
        // Each parent folder of the path, as (end in chars, end in bytes).
        let parents: Vec<(usize, usize)> = path
            .char_indices()
            .enumerate()
            .filter(|(_, (_, c))| *c == '/')
            .map(|(char_end, (byte_end, _))| (char_end, byte_end))
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern can only flip the current answer.
            if pattern.exclusion != excluded {
                continue;
            }
            let matched = pattern.matches(&chars, &path)
                || parents.iter().any(|&(c, b)| pattern.matches(&chars[..c], &path[..b]));
            if matched {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }
}

// ---------------------------------------------------------------------------
// Glob patterns (Docker's .dockerignore regexps and Go's filepath.Match)

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Quest,
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` at the end of a pattern: anything.
    AnyAll,
    /// `**` (and `**/`) elsewhere: nothing, or anything ending in `/`.
    OptDirs,
}

/// Compiles a pattern. With `double_star`, `**` has .dockerignore's meaning;
/// without, it is just two `*` (Go's `filepath.Match`, used by `COPY`).
fn compile_pattern(pattern: &str, double_star: bool) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if double_star && chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i >= chars.len() { Tok::AnyAll } else { Tok::OptDirs });
                } else {
                    if !matches!(tokens.last(), Some(Tok::Star)) {
                        tokens.push(Tok::Star);
                    }
                    i += 1;
                }
            }
            '?' => {
                tokens.push(Tok::Quest);
                i += 1;
            }
            '\\' => {
                let c = *chars.get(i + 1).ok_or("it ends with a lone `\\`")?;
                tokens.push(Tok::Lit(c));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    match chars.get(i) {
                        None => return Err("a `[` is never closed"),
                        Some(']') if !ranges.is_empty() => {
                            i += 1;
                            break;
                        }
                        Some(_) => {}
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&chars, &mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                tokens.push(Tok::Class { negated, ranges });
            }
            c => {
                tokens.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
    match chars.get(*i) {
        None => Err("a `[` is never closed"),
        Some('-') | Some(']') => Err("a `[…]` class has a misplaced `-` or `]`"),
        Some('\\') => {
            let c = *chars.get(*i + 1).ok_or("a `[` is never closed")?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

/// Whether the whole of `s` matches `tokens`. Runs in O(tokens × len).
fn glob_match(tokens: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    let mut cur = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    cur[0] = true;
    for tok in tokens {
        next.iter_mut().for_each(|b| *b = false);
        match tok {
            Tok::Lit(c) => {
                for p in 0..n {
                    next[p + 1] = cur[p] && s[p] == *c;
                }
            }
            Tok::Quest => {
                for p in 0..n {
                    next[p + 1] = cur[p] && s[p] != '/';
                }
            }
            Tok::Class { negated, ranges } => {
                for p in 0..n {
                    if cur[p] {
                        let inside = ranges.iter().any(|(lo, hi)| *lo <= s[p] && s[p] <= *hi);
                        next[p + 1] = inside != *negated;
                    }
                }
            }
            Tok::Star => {
                let mut reach = false;
                for q in 0..=n {
                    reach = cur[q] || (reach && s[q - 1] != '/');
                    next[q] = reach;
                }
            }
            Tok::AnyAll => {
                let mut reach = false;
                for q in 0..=n {
                    reach = reach || cur[q];
                    next[q] = reach;
                }
            }
            Tok::OptDirs => {
                let mut started = false;
                for q in 0..=n {
                    if q > 0 && started && s[q - 1] == '/' {
                        next[q] = true;
                    }
                    if cur[q] {
                        started = true;
                        next[q] = true;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        if !cur.iter().any(|b| *b) {
            return false;
        }
    }
    cur[n]
}

/// Go's `path.Clean` (for relative and absolute `/` paths).
fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------
// The build context as seen by COPY/ADD

struct Context {
    /// Files that are sent (not excluded by .dockerignore).
    files: BTreeSet<String>,
    /// Folders that are sent (never the context root, which is "").
    dirs: BTreeSet<String>,
}

impl Context {
    fn new(context_files: &[String], ignore: &DockerIgnore) -> Result<Self, DockerfileError> {
        let mut files = BTreeSet::new();
        let mut all_dirs = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for raw in context_files {
            let path = normalize_rel_path(raw)
                .map_err(|reason| DockerfileError::InvalidContextPath { path: raw.clone(), reason })?;
            let included = !ignore.is_excluded(&path);
            for (i, _) in path.match_indices('/') {
                let dir = &path[..i];
                if included {
                    dirs.insert(dir.to_owned());
                } else {
                    all_dirs.insert(dir.to_owned());
                }
            }
            if included {
                files.insert(path);
            }
        }
        // A folder holding only excluded files is still sent unless the
        // folder itself is excluded.
        for dir in all_dirs {
            if !dirs.contains(&dir) && !ignore.is_excluded(&dir) {
                dirs.insert(dir);
            }
        }
        Ok(Self { files, dirs })
    }

    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.dirs.contains(path)
    }

    /// Files below folder `dir` ("" = the whole context), with their path
    /// relative to `dir`.
    fn files_under<'a>(&'a self, dir: &str) -> Vec<(&'a str, &'a str)> {
        if dir.is_empty() {
            return self.files.iter().map(|f| (f.as_str(), f.as_str())).collect();
        }
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(|f| f.starts_with(&prefix))
            .map(|f| (f.as_str(), &f[prefix.len()..]))
            .collect()
    }

    /// Files and folders matching a wildcard pattern, in lexical order.
    fn glob(&self, tokens: &[Tok]) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self
            .dirs
            .iter()
            .map(|d| (d, true))
            .chain(self.files.iter().map(|f| (f, false)))
            .filter(|(p, _)| glob_match(tokens, &p.chars().collect::<Vec<_>>()))
            .map(|(p, is_dir)| (p.clone(), is_dir))
            .collect();
        out.sort();
        out
    }
}

// ---------------------------------------------------------------------------
// Dockerfile lines

#[derive(Debug)]
struct LogicalLine {
    line: usize,
    keyword: String,
    args: String,
}

/// Splits Dockerfile text into instructions: parser directives, comments,
/// continuations and heredoc bodies handled. Returns the escape character.
fn logical_lines(text: &str) -> Result<(Vec<LogicalLine>, char), DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut escape = '\\';
    let mut idx = 0;
    while idx < lines.len() {
        let Some((name, value)) = parse_directive(lines[idx]) else {
            break;
        };
        match name.to_ascii_lowercase().as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(DockerfileError::InvalidInstruction {
                            line: idx + 1,
                            instruction: "# escape".to_owned(),
                            reason: format!("escape must be ` or \\, not `{value}`"),
                        })
                    }
                };
            }
            "syntax" | "check" => {}
            _ => break,
        }
        idx += 1;
    }

    let mut out = Vec::new();
    while idx < lines.len() {
        let start = idx + 1;
        let first = lines[idx];
        idx += 1;
        if is_blank_or_comment(first) {
            continue;
        }
        let (content, mut continued) = strip_continuation(first, escape);
        let mut buf = content.to_owned();
        while continued && idx < lines.len() {
            let next = lines[idx];
            idx += 1;
            if is_blank_or_comment(next) {
                continue;
            }
            let (content, more) = strip_continuation(next, escape);
            buf.push_str(content);
            continued = more;
        }
        let trimmed = buf.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (keyword, args) = match trimmed.find(char::is_whitespace) {
            Some(i) => (&trimmed[..i], trimmed[i..].trim()),
            None => (trimmed, ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (delimiter, strip_tabs) in heredoc_delimiters(args) {
                loop {
                    let Some(body) = lines.get(idx) else {
                        return Err(DockerfileError::UnterminatedHeredoc { line: start, delimiter });
                    };
                    idx += 1;
                    let body = if strip_tabs { body.trim_start_matches('\t') } else { body };
                    if body.trim_end() == delimiter {
                        break;
                    }
                }
            }
        }
        out.push(LogicalLine { line: start, keyword, args: args.to_owned() });
    }
    Ok((out, escape))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// `# name=value` at the top of the file.
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Removes a trailing escape character (continuation), ignoring trailing
/// blanks after it.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(content) => (content, true),
        None => (line, false),
    }
}

/// Heredoc openers (`<<EOF`, `<<-EOF`, `<<"EOF"`) among the arguments,
/// with whether leading tabs are stripped from the body.
fn heredoc_delimiters(args: &str) -> Vec<(String, bool)> {
    let rest = strip_flags(args).1;
    if rest.starts_with('[') {
        return Vec::new();
    }
    split_blanks(rest).into_iter().filter_map(heredoc_name).collect()
}

fn heredoc_name(word: &str) -> Option<(String, bool)> {
    let rest = word.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let name = rest.trim_matches(|c| c == '"' || c == '\'');
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    valid.then(|| (name.to_owned(), strip_tabs))
}

/// Splits leading `--flag[=value]` words off an argument string.
fn strip_flags(args: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[2..end];
        if word.is_empty() {
            // A bare `--` ends the flags.
            rest = rest[end..].trim_start();
            break;
        }
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        flags.push((name.to_ascii_lowercase(), value.to_owned()));
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

/// Splits on blanks (BuildKit's whitespace-delimited form: quotes do not
/// group words).
fn split_blanks(text: &str) -> Vec<&str> {
    text.split([' ', '\t', '\u{b}', '\u{c}', '\r']).filter(|w| !w.is_empty()).collect()
}

/// Splits on blanks outside quotes, keeping quotes and escapes in the words
/// (BuildKit's `parseWords`, used by `ENV` and `ARG`).
fn split_quoted_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            _ if c == escape && quote != Some('\'') => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

// ---------------------------------------------------------------------------
// Variable expansion (BuildKit's shell lexer, the parts that matter here)

/// Variables in scope: `ENV` first, then `ARG` (`None` = declared, unset).
struct Vars<'a> {
    env: &'a BTreeMap<String, String>,
    args: &'a BTreeMap<String, Option<String>>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str).or_else(|| self.args.get(name).and_then(|v| v.as_deref()))
    }
}

/// Removes quotes and escapes and expands variables in one word.
fn expand_word(word: &str, vars: &Vars<'_>, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    expand_chars(&chars, vars, escape, 0)
}

fn expand_chars(chars: &[char], vars: &Vars<'_>, escape: char, depth: usize) -> Result<String, String> {
    if depth > MAX_SUBSTITUTION_DEPTH {
        return Err("`${…}` nested too deeply".to_owned());
    }
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated single quote".to_owned()),
                    Some('\'') => break,
                    Some(&d) => out.push(d),
                }
                i += 1;
            }
            i += 1;
        } else if c == '"' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated double quote".to_owned()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&d) if d == escape => match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            i += 2;
                        }
                        _ => {
                            out.push(d);
                            i += 1;
                        }
                    },
                    Some('$') => i = expand_dollar(chars, i, vars, escape, depth, &mut out)?,
                    Some(&d) => {
                        out.push(d);
                        i += 1;
                    }
                }
            }
        } else if c == escape {
            match chars.get(i + 1) {
                Some(&n) => {
                    out.push(n);
                    i += 2;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else if c == '$' {
            i = expand_dollar(chars, i, vars, escape, depth, &mut out)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Expands the `$…` starting at `chars[i]`; returns the index after it.
fn expand_dollar(
    chars: &[char],
    i: usize,
    vars: &Vars<'_>,
    escape: char,
    depth: usize,
    out: &mut String,
) -> Result<usize, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(i + 1) {
        Some('{') => {
            // Find the matching `}`.
            let mut j = i + 2;
            let mut nesting = 1;
            loop {
                match chars.get(j) {
                    None => return Err("missing `}`".to_owned()),
                    Some(&c) if c == escape => j += 1,
                    Some('$') if chars.get(j + 1) == Some(&'{') => {
                        nesting += 1;
                        j += 1;
                    }
                    Some('}') => {
                        nesting -= 1;
                        if nesting == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let inner = &chars[i + 2..j];
            let name_len = inner.iter().take_while(|c| is_name(**c)).count();
            if name_len == 0 {
                return Err("bad substitution: `${` must be followed by a name".to_owned());
            }
            let name: String = inner[..name_len].iter().collect();
            let value = vars.get(&name);
            let modifier = &inner[name_len..];
            let word = |from: usize| expand_chars(&modifier[from..], vars, escape, depth + 1);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            match modifier {
                [] => out.push_str(value.unwrap_or("")),
                [':', '-', ..] if !set_nonempty => out.push_str(&word(2)?),
                [':', '-', ..] => out.push_str(value.unwrap_or("")),
                ['-', ..] if value.is_none() => out.push_str(&word(1)?),
                ['-', ..] => out.push_str(value.unwrap_or("")),
                [':', '+', ..] if set_nonempty => out.push_str(&word(2)?),
                [':', '+', ..] => {}
                ['+', ..] if value.is_some() => out.push_str(&word(1)?),
                ['+', ..] => {}
                [':', '?', ..] | ['?', ..] => {
                    let colon = modifier[0] == ':';
                    let bad = if colon { !set_nonempty } else { value.is_none() };
                    if bad {
                        let message = word(if colon { 2 } else { 1 })?;
                        return Err(if message.is_empty() {
                            format!("{name} is not allowed to be unset")
                        } else {
                            format!("{name}: {message}")
                        });
                    }
                    out.push_str(value.unwrap_or(""));
                }
                _ => return Err(format!("unsupported substitution `${{{}}}`", inner.iter().collect::<String>())),
            }
            Ok(j + 1)
        }
        Some(&c) if is_name(c) => {
            let len = chars[i + 1..].iter().take_while(|c| is_name(**c)).count();
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(vars.get(&name).unwrap_or(""));
            Ok(i + 1 + len)
        }
        _ => {
            out.push('$');
            Ok(i + 1)
        }
    }
}

// ---------------------------------------------------------------------------
// Following the instructions

#[derive(Debug, Clone, Default)]
struct Stage {
    workdir: String,
    env: BTreeMap<String, String>,
    args: BTreeMap<String, Option<String>>,
    /// Container path → context file copied there.
    files: BTreeMap<String, String>,
    /// Container folders known to exist.
    dirs: BTreeSet<String>,
}

impl Stage {
    fn based_on(workdir: &str) -> Self {
        let mut stage = Stage { workdir: clean_abs(workdir), ..Stage::default() };
        stage.add_dir(&stage.workdir.clone());
        stage
    }

    /// Records `dir` and its ancestors as folders.
    fn add_dir(&mut self, dir: &str) {
        let mut current = dir.to_owned();
        loop {
            if !self.dirs.insert(current.clone()) {
                return;
            }
            match current.rfind('/') {
                Some(0) if current.len() > 1 => current.truncate(1),
                Some(i) if i > 0 => current.truncate(i),
                _ => return,
            }
        }
    }

    fn put(&mut self, dest: String, src: &str) {
        if let Some(i) = dest.rfind('/') {
            self.add_dir(if i == 0 { "/" } else { &dest[..i] });
        }
        self.files.insert(dest, src.to_owned());
    }

    fn resolve(&self, dest: &str) -> String {
        if dest.starts_with('/') {
            clean_abs(dest)
        } else {
            join_abs(&[&self.workdir, dest])
        }
    }
}

struct Builder<'a> {
    escape: char,
    build_args: &'a BTreeMap<String, String>,
    options: &'a InferOptions,
    context: &'a Context,
    global_args: BTreeMap<String, Option<String>>,
    stages: Vec<Stage>,
    stage_names: BTreeMap<String, usize>,
}

impl Builder<'_> {
    fn instruction(&mut self, l: &LogicalLine) -> Result<(), DockerfileError> {
        match l.keyword.as_str() {
            "FROM" => return self.from(l),
            "ARG" => return self.arg(l),
            _ => {}
        }
        let Some(stage) = self.stages.last_mut() else {
            return Err(DockerfileError::InvalidInstruction {
                line: l.line,
                instruction: l.keyword.clone(),
                reason: "only ARG may come before the first FROM".to_owned(),
            });
        };
        let escape = self.escape;
        let expand = |stage: &Stage, word: &str| {
            let vars = Vars { env: &stage.env, args: &stage.args };
            expand_word(word, &vars, escape).map_err(|reason| DockerfileError::BadSubstitution {
                line: l.line,
                word: word.to_owned(),
                reason,
            })
        };
        match l.keyword.as_str() {
            "WORKDIR" => {
                if l.args.is_empty() {
                    return Err(missing(l, 1, 0));
                }
                let dir = expand(stage, &l.args)?;
                stage.workdir = stage.resolve(&dir);
                let workdir = stage.workdir.clone();
                stage.add_dir(&workdir);
            }
            "ENV" => {
                let mut pairs = Vec::new();
                for (name, raw) in name_values(l, escape, true)? {
                    let value = match raw {
                        Some(raw) => expand(stage, &raw)?,
                        None => String::new(),
                    };
                    pairs.push((name, value));
                }
                // All values see the variables as they were before this ENV.
                stage.env.extend(pairs);
            }
            "COPY" | "ADD" => {
                let context = self.context;
                copy(l, stage, context, &expand)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn from(&mut self, l: &LogicalLine) -> Result<(), DockerfileError> {
        let (_, rest) = strip_flags(&l.args);
        let words = split_blanks(rest);
        let Some(image_word) = words.first() else {
            return Err(missing(l, 1, 0));
        };
        let no_env = BTreeMap::new();
        let vars = Vars { env: &no_env, args: &self.global_args };
        let image = expand_word(image_word, &vars, self.escape).map_err(|reason| DockerfileError::BadSubstitution {
            line: l.line,
            word: (*image_word).to_owned(),
            reason,
        })?;
        let name = match words.as_slice() {
            [_, as_word, name, ..] if as_word.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let stage = match self.stage_names.get(&image.to_ascii_lowercase()) {
            Some(&parent) => {
                let parent = &self.stages[parent];
                Stage {
                    workdir: parent.workdir.clone(),
                    env: parent.env.clone(),
                    args: BTreeMap::new(),
                    files: parent.files.clone(),
                    dirs: parent.dirs.clone(),
                }
            }
            None => Stage::based_on(self.options.base_workdirs.get(&image).map_or("/", String::as_str)),
        };
        self.stages.push(stage);
        if let Some(name) = name {
            self.stage_names.insert(name, self.stages.len() - 1);
        }
        Ok(())
    }

    fn arg(&mut self, l: &LogicalLine) -> Result<(), DockerfileError> {
        let pairs = name_values(l, self.escape, false)?;
        let no_env = BTreeMap::new();
        for (name, default) in pairs {
            let (env, args) = match self.stages.last() {
                Some(stage) => (&stage.env, &stage.args),
                None => (&no_env, &self.global_args),
            };
            let value = if let Some(v) = self.build_args.get(&name) {
                Some(v.clone())
            } else if let Some(raw) = default {
                let vars = Vars { env, args };
                Some(expand_word(&raw, &vars, self.escape).map_err(|reason| DockerfileError::BadSubstitution {
                    line: l.line,
                    word: raw.clone(),
                    reason,
                })?)
            } else if self.stages.is_empty() {
                None
            } else {
                self.global_args.get(&name).cloned().flatten()
            };
            match self.stages.last_mut() {
                Some(stage) => stage.args.insert(name, value),
                None => self.global_args.insert(name, value),
            };
        }
        Ok(())
    }
}

fn missing(l: &LogicalLine, expected: usize, found: usize) -> DockerfileError {
    DockerfileError::MissingArguments { line: l.line, instruction: l.keyword.clone(), expected, found }
}

/// `ENV`/`ARG` arguments as (name, raw value). `ENV` also accepts the legacy
/// `ENV name value with spaces` form.
fn name_values(l: &LogicalLine, escape: char, is_env: bool) -> Result<Vec<(String, Option<String>)>, DockerfileError> {
    let invalid =
        |reason: String| DockerfileError::InvalidInstruction { line: l.line, instruction: l.keyword.clone(), reason };
    let words = split_quoted_words(&l.args, escape);
    let Some(first) = words.first() else {
        return Err(missing(l, 1, 0));
    };
    if is_env && !first.contains('=') {
        // Legacy form: the rest of the line is the value.
        let rest = l.args.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(invalid(format!("`{first}` has no value")));
        }
        return Ok(vec![(first.clone(), Some(rest.to_owned()))]);
    }
    let mut out = Vec::new();
    for word in words {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None if is_env => return Err(invalid(format!("can't find `=` in `{word}`; use name=value"))),
            None => (word, None),
        };
        if name.is_empty() {
            return Err(invalid("a variable name is empty".to_owned()));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Names that look like tar archives, which `ADD` unpacks.
fn looks_like_archive(path: &str) -> bool {
    const SUFFIXES: &[&str] =
        &[".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst"];
    let lower = path.to_ascii_lowercase();
    SUFFIXES.iter().any(|s| lower.ends_with(s))
}

fn is_remote(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    ["http://", "https://", "git@", "git://", "ssh://"].iter().any(|p| lower.starts_with(p))
}

fn contains_wildcards(path: &str) -> bool {
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// A source path made relative to the context root (it cannot climb out).
fn clean_source(src: &str) -> String {
    join_abs(&[src])[1..].to_owned()
}

fn copy<F>(l: &LogicalLine, stage: &mut Stage, context: &Context, expand: &F) -> Result<(), DockerfileError>
where
    F: Fn(&Stage, &str) -> Result<String, DockerfileError>,
{
    let (flags, rest) = strip_flags(&l.args);
    let is_json = rest.starts_with('[');
    let args: Vec<String> =
        if is_json { json_args(l, rest)? } else { split_blanks(rest).into_iter().map(str::to_owned).collect() };
    if args.len() < 2 {
        return Err(missing(l, 2, args.len()));
    }
    let (dest_raw, sources_raw) = match args.split_last() {
        Some(split) => split,
        None => return Err(missing(l, 2, 0)),
    };
    let dest = expand(stage, dest_raw)?;
    let dest_is_dir_form =
        dest.ends_with('/') || dest == "." || dest == ".." || dest.ends_with("/.") || dest.ends_with("/..");
    let dest_abs = stage.resolve(&dest);

    let flag = |name: &str| flags.iter().any(|(n, _)| n == name);
    if flag("from") {
        // Copied from another stage or image: nothing from the context, but
        // the destination folder now exists.
        if dest_is_dir_form {
            stage.add_dir(&dest_abs);
        }
        return Ok(());
    }
    if flag("parents") || flag("exclude") {
        return Ok(());
    }
    let is_add = l.keyword == "ADD";

    let mut sources = Vec::new();
    for raw in sources_raw {
        if !is_json && heredoc_name(raw).is_some() {
            continue;
        }
        let src = expand(stage, raw)?;
        if is_remote(&src) {
            continue;
        }
        sources.push(src);
    }

    // Resolve every source to context entries: (path, is_dir).
    let mut resolved: Vec<(String, bool)> = Vec::new();
    for src in &sources {
        let path = clean_source(src);
        if contains_wildcards(&path) {
            let tokens = compile_pattern(&path, false).map_err(|reason| DockerfileError::BadSourcePattern {
                line: l.line,
                instruction: l.keyword.clone(),
                pattern: src.clone(),
                reason,
            })?;
            resolved.extend(context.glob(&tokens));
        } else if context.is_dir(&path) {
            resolved.push((path, true));
        } else if context.files.contains(&path) {
            resolved.push((path, false));
        } else {
            return Err(DockerfileError::SourceNotFound {
                line: l.line,
                instruction: l.keyword.clone(),
                path: src.clone(),
            });
        }
    }

    let dest_is_dir = dest_is_dir_form
        || sources.len() > 1
        || resolved.len() > 1
        || resolved.iter().any(|(_, is_dir)| *is_dir)
        || stage.dirs.contains(&dest_abs);
    if dest_is_dir && !resolved.is_empty() {
        stage.add_dir(&dest_abs);
    }
    for (path, is_dir) in resolved {
        if is_dir {
            for (file, rel) in context.files_under(&path) {
                stage.put(join_abs(&[&dest_abs, rel]), file);
            }
        } else {
            if is_add && looks_like_archive(&path) {
                continue;
            }
            let target = if dest_is_dir {
                let base = path.rsplit('/').next().unwrap_or(&path);
                join_abs(&[&dest_abs, base])
            } else {
                dest_abs.clone()
            };
            stage.put(target, &path);
        }
    }
    Ok(())
}

fn json_args(l: &LogicalLine, text: &str) -> Result<Vec<String>, DockerfileError> {
    let text = text.trim_end();
    if !text.contains(']') {
        return Err(DockerfileError::UnterminatedJsonArray {
            line: l.line,
            instruction: l.keyword.clone(),
            text: text.to_owned(),
        });
    }
    if !text.ends_with(']') {
        // Docker reads `[abc]*.txt dst/` as shell form with a wildcard.
        return Ok(split_blanks(text).into_iter().map(str::to_owned).collect());
    }
    let invalid = |reason: String| DockerfileError::InvalidJsonArray {
        line: l.line,
        instruction: l.keyword.clone(),
        text: text.to_owned(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let items = value.as_array().ok_or_else(|| invalid("not an array".to_owned()))?;
    items
        .iter()
        .map(|item| {
            item.as_str().map(str::to_owned).ok_or_else(|| invalid("every element must be a string".to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Dockerfile and the sync map it should give.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])]);

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn infer(dockerfile: &str, context: &[&str]) -> SyncMap {
        sync_map(dockerfile, &BTreeMap::new(), &files(context), None).unwrap()
    }

    fn infer_err(dockerfile: &str, context: &[&str]) -> DockerfileError {
        sync_map(dockerfile, &BTreeMap::new(), &files(context), None).unwrap_err()
    }

    fn expect(pairs: &[(&str, &[&str])]) -> SyncMap {
        pairs.iter().map(|(k, v)| (k.to_string(), files(v))).collect()
    }

    /// Skaffold's syncmap_test.go context.
    const SKAFFOLD_CONTEXT: &[&str] = &[
        "docker/nginx.conf",
        "docker/bar",
        "server.go",
        "test.conf",
        "worker.go",
        "bar",
        "file",
        ".dot",
        "Dockerfile",
    ];

    #[test]
    fn design_proposal_example() {
        let dockerfile = "FROM nginx\nWORKDIR /var\nCOPY static *.html www/\nADD nginx.conf .\nADD nginx.conf /etc/\n";
        let map = infer(dockerfile, &["static/page1.html", "static/assets/style.css", "index.html", "nginx.conf"]);
        assert_eq!(
            map,
            expect(&[
                ("static/page1.html", &["/var/www/page1.html"]),
                ("static/assets/style.css", &["/var/www/assets/style.css"]),
                ("index.html", &["/var/www/index.html"]),
                ("nginx.conf", &["/etc/nginx.conf", "/var/nginx.conf"]),
            ])
        );
    }

    #[test]
    fn skaffold_filesync_infer_doc_example() {
        let dockerfile = "FROM hugo\n\nADD .filebaserc /etc/\nADD assets assets/\nCOPY static-html static/\nCOPY content/en content/\n";
        let map = infer(
            dockerfile,
            &[
                ".filebaserc",
                "assets/img.png",
                "static-html/a.html",
                "static-html/imgs/demo.png",
                "content/en/sub/index.md",
                "content/en_GB/index.md",
            ],
        );
        assert_eq!(
            map,
            expect(&[
                (".filebaserc", &["/etc/.filebaserc"]),
                ("assets/img.png", &["/assets/img.png"]),
                ("static-html/a.html", &["/static/a.html"]),
                ("static-html/imgs/demo.png", &["/static/imgs/demo.png"]),
                ("content/en/sub/index.md", &["/content/sub/index.md"]),
            ])
        );
    }

    #[test]
    fn skaffold_syncmap_cases() {
        let ctx = SKAFFOLD_CONTEXT;
        let cases: &[Case] = &[
            ("FROM u\nCOPY server.go .\n", &[("server.go", &["/server.go"])]),
            ("FROM u\nCOPY docker .\n", &[("docker/nginx.conf", &["/nginx.conf"]), ("docker/bar", &["/bar"])]),
            ("FROM u\nWORKDIR /app\nCOPY server.go .\n", &[("server.go", &["/app/server.go"])]),
            ("FROM u\nWORKDIR /app\nCOPY server.go /bar\n", &[("server.go", &["/bar"])]),
            ("FROM u\nWORKDIR /app\nCOPY server.go /bar/\n", &[("server.go", &["/bar/server.go"])]),
            (
                "FROM u\nCOPY server.go .\nCOPY test.conf .\n",
                &[("server.go", &["/server.go"]), ("test.conf", &["/test.conf"])],
            ),
            (
                "FROM nginx\nWORKDIR /app/\nADD *.go ./\n",
                &[("server.go", &["/app/server.go"]), ("worker.go", &["/app/worker.go"])],
            ),
            ("FROM busybox\nENV foo bar\nWORKDIR ${foo}\nCOPY server.go .\n", &[("server.go", &["/bar/server.go"])]),
            ("FROM busybox\nENV foo bar\nCOPY server.go ${foo}\n", &[("server.go", &["/bar"])]),
            (
                "FROM u\nADD test.conf /etc/test1\nCOPY test.conf /etc/test2\n",
                &[("test.conf", &["/etc/test1", "/etc/test2"])],
            ),
            ("FROM u\nCOPY file server.go /\n", &[("file", &["/file"]), ("server.go", &["/server.go"])]),
        ];
        for (dockerfile, expected) in cases {
            assert_eq!(infer(dockerfile, ctx), expect(expected), "{dockerfile}");
        }
    }

    #[test]
    fn wildcard_matching_a_directory_copies_its_contents() {
        let map = infer("FROM nginx\nADD * /tmp/\n", SKAFFOLD_CONTEXT);
        assert_eq!(
            map,
            expect(&[
                (".dot", &["/tmp/.dot"]),
                ("Dockerfile", &["/tmp/Dockerfile"]),
                ("bar", &[]), // replaced below by docker/bar (later in lexical order)
                ("docker/bar", &["/tmp/bar"]),
                ("docker/nginx.conf", &["/tmp/nginx.conf"]),
                ("file", &["/tmp/file"]),
                ("server.go", &["/tmp/server.go"]),
                ("test.conf", &["/tmp/test.conf"]),
                ("worker.go", &["/tmp/worker.go"]),
            ])
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect::<SyncMap>()
        );
    }

    #[test]
    fn later_copies_overwrite_earlier_ones() {
        // Skaffold's TestSyncMap_deterministicOverwrite cases.
        let ctx = &["subfolder/bar", "baz", "foo", "bar"];
        let cases: &[Case] = &[
            ("FROM u\nADD subfolder/bar bar\nCOPY baz /bar\nADD bar .\nCOPY foo bar\n", &[("foo", &["/bar"])]),
            ("FROM u\nCOPY subfolder .\nADD baz bar\n", &[("baz", &["/bar"])]),
            ("FROM u\nADD baz bar\nCOPY subfolder .\n", &[("subfolder/bar", &["/bar"])]),
            (
                "FROM u\nCOPY . .\nCOPY subfolder .\n",
                &[("subfolder/bar", &["/bar", "/subfolder/bar"]), ("baz", &["/baz"]), ("foo", &["/foo"])],
            ),
            (
                "FROM u\nCOPY subfolder .\nCOPY . .\n",
                &[("subfolder/bar", &["/subfolder/bar"]), ("bar", &["/bar"]), ("baz", &["/baz"]), ("foo", &["/foo"])],
            ),
            ("FROM u\nADD * .\n", &[("subfolder/bar", &["/bar"]), ("baz", &["/baz"]), ("foo", &["/foo"])]),
        ];
        for (dockerfile, expected) in cases {
            assert_eq!(infer(dockerfile, ctx), expect(expected), "{dockerfile}");
        }
    }

    #[test]
    fn several_sources_and_globs() {
        let map = infer(
            "FROM x\nCOPY a.txt b.txt conf/*.yaml /etc/app/\n",
            &["a.txt", "b.txt", "conf/x.yaml", "conf/y.yaml", "conf/z.json", "conf/sub/w.yaml"],
        );
        assert_eq!(
            map,
            expect(&[
                ("a.txt", &["/etc/app/a.txt"]),
                ("b.txt", &["/etc/app/b.txt"]),
                ("conf/x.yaml", &["/etc/app/x.yaml"]),
                ("conf/y.yaml", &["/etc/app/y.yaml"]),
            ])
        );
    }

    #[test]
    fn multiple_sources_make_dest_a_directory_even_without_slash() {
        let map = infer("FROM x\nCOPY a b /out\n", &["a", "b"]);
        assert_eq!(map, expect(&[("a", &["/out/a"]), ("b", &["/out/b"])]));
    }

    #[test]
    fn glob_matching_nothing_is_fine_but_missing_literal_is_an_error() {
        let map = infer("FROM x\nCOPY go.mod go.sum* /src/\n", &["go.mod"]);
        assert_eq!(map, expect(&[("go.mod", &["/src/go.mod"])]));
        let err = infer_err("FROM x\n\nCOPY go.mod go.sum /src/\n", &["go.mod"]);
        assert_eq!(err, DockerfileError::SourceNotFound { line: 3, instruction: "COPY".into(), path: "go.sum".into() });
        assert!(err.to_string().contains("line 3"));
    }

    #[test]
    fn directory_sources_copy_contents_recursively() {
        let map = infer(
            "FROM x\nCOPY web/ /srv/www\nCOPY ./web/static/ /static\n",
            &["web/index.html", "web/static/css/a.css"],
        );
        assert_eq!(
            map,
            expect(&[
                ("web/index.html", &["/srv/www/index.html"]),
                ("web/static/css/a.css", &["/srv/www/static/css/a.css", "/static/css/a.css"]),
            ])
        );
    }

    #[test]
    fn whole_context_copy_and_dot_destinations() {
        let map = infer("FROM golang\nWORKDIR /go/src/app\nCOPY . .\nCOPY main.go ./cmd/.\n", &["main.go", "pkg/x.go"]);
        assert_eq!(
            map,
            expect(&[
                ("main.go", &["/go/src/app/cmd/main.go", "/go/src/app/main.go"]),
                ("pkg/x.go", &["/go/src/app/pkg/x.go"]),
            ])
        );
    }

    #[test]
    fn workdir_is_relative_to_previous_workdir() {
        let map = infer("FROM x\nWORKDIR app\nWORKDIR sub/../src\nCOPY a .\nWORKDIR /abs\nCOPY a rel/\n", &["a"]);
        assert_eq!(map, expect(&[("a", &["/abs/rel/a", "/app/src/a"])]));
    }

    #[test]
    fn file_to_known_directory_lands_inside_it() {
        // `/app` became a folder through WORKDIR, `/conf` through an earlier copy.
        let map = infer(
            "FROM x\nWORKDIR /app\nCOPY a.conf /app\nCOPY dir /conf\nCOPY b.conf /conf\nCOPY c.conf /renamed\n",
            &["a.conf", "b.conf", "c.conf", "dir/x"],
        );
        assert_eq!(
            map,
            expect(&[
                ("a.conf", &["/app/a.conf"]),
                ("b.conf", &["/conf/b.conf"]),
                ("c.conf", &["/renamed"]),
                ("dir/x", &["/conf/x"]),
            ])
        );
    }

    #[test]
    fn arg_defaults_overrides_and_unknown() {
        let dockerfile = "ARG BASE=golang\nFROM $BASE\nARG SRC=server.go\nARG DIR\nCOPY ${SRC} /app/${DIR}\nCOPY worker.go /w/$UNDEFINED\n";
        let map = infer(dockerfile, SKAFFOLD_CONTEXT);
        assert_eq!(map, expect(&[("server.go", &["/app/server.go"]), ("worker.go", &["/w/worker.go"])]));
        let args: BTreeMap<String, String> = [("SRC", "test.conf"), ("DIR", "d/"), ("NOT_DECLARED", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let map = sync_map(dockerfile, &args, &files(SKAFFOLD_CONTEXT), None).unwrap();
        assert_eq!(map, expect(&[("test.conf", &["/app/d/test.conf"]), ("worker.go", &["/w/worker.go"])]));
    }

    #[test]
    fn build_arg_only_applies_to_declared_args() {
        let args: BTreeMap<String, String> = [("FOO".to_string(), "-server.go".to_string())].into_iter().collect();
        let ctx = files(&["x", "x-server.go"]);
        // $FOO is not declared, so it expands to nothing.
        let map = sync_map("FROM x\nCOPY x$FOO /\n", &args, &ctx, None).unwrap();
        assert_eq!(map, expect(&[("x", &["/x"])]));
        let map = sync_map("FROM x\nARG FOO\nCOPY x$FOO /\n", &args, &ctx, None).unwrap();
        assert_eq!(map, expect(&[("x-server.go", &["/x-server.go"])]));
    }

    #[test]
    fn global_args_need_redeclaring_inside_a_stage() {
        let dockerfile = "ARG DIR=/global\nFROM x\nCOPY a $DIR/\nARG DIR\nCOPY a $DIR/\n";
        let map = infer(dockerfile, &["a"]);
        // Before the re-declaration $DIR is empty, so the first copy goes to /.
        assert_eq!(map, expect(&[("a", &["/a", "/global/a"])]));
    }

    #[test]
    fn arg_redefinition_and_default_referencing_other_vars() {
        let dockerfile = "FROM x\nARG A=one\nARG B=${A}/two\nCOPY f /$B/\nARG A=three\nCOPY f /$A/\n";
        let map = infer(dockerfile, &["f"]);
        assert_eq!(map, expect(&[("f", &["/one/two/f", "/three/f"])]));
    }

    #[test]
    fn env_both_forms_and_env_beats_arg() {
        let dockerfile = "FROM x\nARG DEST=/from-arg\nENV DEST=/from-env OTHER=\"/with space\"\nENV LEGACY /legacy dir\nCOPY a $DEST/\nCOPY [\"a\", \"${OTHER}/\"]\nCOPY [\"a\", \"$LEGACY/\"]\n";
        let map = infer(dockerfile, &["a"]);
        assert_eq!(map, expect(&[("a", &["/from-env/a", "/legacy dir/a", "/with space/a"])]));
    }

    #[test]
    fn env_values_in_one_instruction_see_the_previous_values() {
        let dockerfile = "FROM x\nENV D=/first\nENV D=/second E=$D\nCOPY a $E/\n";
        assert_eq!(infer(dockerfile, &["a"]), expect(&[("a", &["/first/a"])]));
    }

    #[test]
    fn substitution_modifiers_and_quotes() {
        let dockerfile = concat!(
            "FROM x\n",
            "ENV SET=s EMPTY=\n",
            "COPY a ${UNSET:-/d1}/\n",
            "COPY a ${EMPTY:-/d2}/\n",
            "COPY a /d3${EMPTY-x}/\n",
            "COPY a /d4/${SET:+plus}/\n",
            "COPY a /d5/${UNSET:+never}\n",
            "COPY a '/d6/$SET'/\n",
            "COPY a \"/d7/$SET\"/\n",
            "COPY a /d8/\\$SET/\n",
        );
        let map = infer(dockerfile, &["a"]);
        assert_eq!(
            map,
            expect(&[(
                "a",
                &["/d1/a", "/d2/a", "/d3/a", "/d4/plus/a", "/d5/a", "/d6/$SET/a", "/d7/s/a", "/d8/$SET/a"]
            )])
        );
    }

    #[test]
    fn bad_substitution_names_the_line() {
        let err = infer_err("FROM x\nCOPY a ${OOPS\n", &["a"]);
        assert!(matches!(err, DockerfileError::BadSubstitution { line: 2, .. }), "{err:?}");
        let err = infer_err("FROM x\nCOPY a ${X:?must_be_set}\n", &["a"]);
        assert!(err.to_string().contains("X: must_be_set"), "{err}");
        let err = infer_err("FROM x\nCOPY a \"unterminated\n", &["a"]);
        assert!(matches!(err, DockerfileError::BadSubstitution { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn from_copies_are_ignored() {
        let dockerfile = "FROM golang AS build\nCOPY . /src\nRUN go build -o /out/app .\nFROM gcr.io/distroless/static\nCOPY --from=build /out/app /app\nCOPY --chown=1000:1000 --chmod=755 --link config.yaml /etc/app/\n";
        let map = infer(dockerfile, &["main.go", "config.yaml"]);
        assert_eq!(map, expect(&[("config.yaml", &["/etc/app/config.yaml"])]));
    }

    #[test]
    fn multi_stage_only_last_stage_counts() {
        let dockerfile = "FROM a AS one\nCOPY x /one/\nFROM b\nCOPY y /two/\n";
        assert_eq!(infer(dockerfile, &["x", "y"]), expect(&[("y", &["/two/y"])]));
    }

    #[test]
    fn stage_built_from_earlier_stage_inherits_its_files_workdir_and_env() {
        let dockerfile = "FROM nginx AS Base\nWORKDIR /usr/share/nginx\nENV CONF=/etc/nginx\nCOPY html html/\nFROM scratch AS unrelated\nCOPY other /\nFROM base\nCOPY nginx.conf $CONF/\nCOPY index.html .\n";
        let map = infer(dockerfile, &["html/a.html", "other", "nginx.conf", "index.html"]);
        assert_eq!(
            map,
            expect(&[
                ("html/a.html", &["/usr/share/nginx/html/a.html"]),
                ("index.html", &["/usr/share/nginx/index.html"]),
                ("nginx.conf", &["/etc/nginx/nginx.conf"]),
            ])
        );
    }

    #[test]
    fn base_image_workdir_from_options() {
        let mut options = InferOptions::default();
        options.base_workdirs.insert("node:20".to_string(), "/home/node".to_string());
        let map = sync_map_with(
            "ARG V=20\nFROM node:$V\nCOPY app.js .\n",
            &BTreeMap::new(),
            &files(&["app.js"]),
            None,
            &options,
        )
        .unwrap();
        assert_eq!(map, expect(&[("app.js", &["/home/node/app.js"])]));
    }

    #[test]
    fn dockerignore_with_exceptions_and_directories() {
        let ignore = "# comment\n*.md\n!README.md\nbuild\n**/*.tmp\n/secret\ndocs\n!docs/keep.txt\n";
        let ctx = files(&[
            "README.md",
            "CHANGES.md",
            "src/a.go",
            "src/x.tmp",
            "src/deep/y.tmp",
            "build/out.bin",
            "secret",
            "docs/keep.txt",
            "docs/drop.txt",
            "sub/NOTES.md",
        ]);
        let map = sync_map("FROM x\nCOPY . /app/\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap();
        assert_eq!(
            map,
            expect(&[
                ("README.md", &["/app/README.md"]),
                ("docs/keep.txt", &["/app/docs/keep.txt"]),
                ("src/a.go", &["/app/src/a.go"]),
                // `*.md` only matches at the top level, as in Docker.
                ("sub/NOTES.md", &["/app/sub/NOTES.md"]),
            ])
        );
        // An excluded literal source is not in the context.
        let err = sync_map("FROM x\nCOPY secret /\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap_err();
        assert!(matches!(err, DockerfileError::SourceNotFound { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn dockerignore_matching_rules() {
        let ig = DockerIgnore::parse("a/**/c\n**\n!keep/**\nkeep/x?z\n").unwrap();
        assert!(ig.is_excluded("anything"));
        assert!(!ig.is_excluded("keep/file"));
        assert!(ig.is_excluded("keep/xyz"));
        assert!(!ig.is_excluded("keep/xyzz"));
        let ig = DockerIgnore::parse("a/**/c\n").unwrap();
        assert!(ig.is_excluded("a/c"));
        assert!(ig.is_excluded("a/b/b/c"));
        assert!(ig.is_excluded("a/b/c/d")); // via its parent a/b/c
        assert!(!ig.is_excluded("a/cc"));
        let ig = DockerIgnore::parse("  spaced  \n./dot/slash\n[a-c]at\n").unwrap();
        assert!(ig.is_excluded("spaced"));
        assert!(ig.is_excluded("dot/slash/x"));
        assert!(ig.is_excluded("bat"));
        assert!(!ig.is_excluded("dat"));
        // Last match wins.
        let ig = DockerIgnore::parse("!x\nx\n").unwrap();
        assert!(ig.is_excluded("x"));
        let ig = DockerIgnore::parse("x\n!x\n").unwrap();
        assert!(!ig.is_excluded("x"));
    }

    #[test]
    fn dockerignore_errors_name_the_line() {
        let err = DockerIgnore::parse("ok\n\nbad[\n").unwrap_err();
        assert!(matches!(err, DockerfileError::BadIgnorePattern { line: 3, .. }), "{err:?}");
        let err = DockerIgnore::parse("!\n").unwrap_err();
        assert!(matches!(err, DockerfileError::BadIgnorePattern { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn parsing_continuations_comments_and_case() {
        let dockerfile = "# syntax=docker/dockerfile:1\n\
            from alpine\n\
            # a comment\n\
            copy a \\\n\
            # comment inside a continuation\n\
            \n\
                b \\   \n\
                /dst/\n\
            Copy [\"c\", \\\n\
            \"/json/\"]\r\n";
        let map = infer(dockerfile, &["a", "b", "c"]);
        assert_eq!(map, expect(&[("a", &["/dst/a"]), ("b", &["/dst/b"]), ("c", &["/json/c"])]));
    }

    #[test]
    fn escape_directive_changes_continuation_character() {
        let dockerfile = "# escape=`\nFROM x\nCOPY a `\n  /dst/\n";
        assert_eq!(infer(dockerfile, &["a"]), expect(&[("a", &["/dst/a"])]));
    }

    #[test]
    fn heredocs_are_skipped() {
        let dockerfile =
            "FROM x\nRUN <<EOF\nCOPY notme /bad/\nEOF\nCOPY <<-CONF a /etc/\n\tCOPY b /bad/\n\tCONF\nCOPY b /ok/\n";
        let map = infer(dockerfile, &["a", "b", "notme"]);
        assert_eq!(map, expect(&[("a", &["/etc/a"]), ("b", &["/ok/b"])]));
        let err = infer_err("FROM x\nRUN <<EOF\necho\n", &[]);
        assert!(matches!(err, DockerfileError::UnterminatedHeredoc { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn urls_and_archives_are_not_synced() {
        let dockerfile = "FROM x\nADD https://example.invalid/f.txt /f.txt\nADD git@host:repo.git /src\nADD vendor.tar.gz /opt/\nADD plain.txt /opt/\nCOPY vendor.tar.gz /copies/\n";
        let map = infer(dockerfile, &["vendor.tar.gz", "plain.txt"]);
        assert_eq!(map, expect(&[("plain.txt", &["/opt/plain.txt"]), ("vendor.tar.gz", &["/copies/vendor.tar.gz"]),]));
    }

    #[test]
    fn parents_and_exclude_flags_are_skipped_conservatively() {
        let map = infer("FROM x\nCOPY --parents a/b /x/\nCOPY --exclude=*.md a /y/\nCOPY a/b /z\n", &["a/b", "a/r.md"]);
        assert_eq!(map, expect(&[("a/b", &["/z"])]));
    }

    #[test]
    fn sources_cannot_escape_the_context() {
        let map = infer("FROM x\nCOPY ../../a /dst/\nCOPY /b /dst/\n", &["a", "b"]);
        assert_eq!(map, expect(&[("a", &["/dst/a"]), ("b", &["/dst/b"])]));
    }

    #[test]
    fn json_errors_name_the_line() {
        let err = infer_err("FROM x\nCOPY [\"a\", \\\n  \"b/\"\n", &["a"]);
        assert_eq!(
            err,
            DockerfileError::UnterminatedJsonArray {
                line: 2,
                instruction: "COPY".into(),
                text: "[\"a\",   \"b/\"".into()
            }
        );
        let err = infer_err("FROM x\nADD ['a', 'b/']\n", &["a"]);
        assert!(matches!(err, DockerfileError::InvalidJsonArray { line: 2, .. }), "{err:?}");
        let err = infer_err("FROM x\nADD [\"a\", 1]\n", &["a"]);
        assert!(matches!(err, DockerfileError::InvalidJsonArray { line: 2, .. }), "{err:?}");
        // A leading character class is a wildcard, not JSON.
        assert_eq!(infer("FROM x\nCOPY [ab]*.txt /t/\n", &["a1.txt", "c.txt"]), expect(&[("a1.txt", &["/t/a1.txt"])]));
    }

    #[test]
    fn copy_needs_two_arguments() {
        let err = infer_err("FROM x\n\n\nCOPY onlyone\n", &["onlyone"]);
        assert_eq!(
            err,
            DockerfileError::MissingArguments { line: 4, instruction: "COPY".into(), expected: 2, found: 1 }
        );
        assert!(err.to_string().contains("line 4"));
        let err = infer_err("FROM x\nADD [\"a\"]\n", &["a"]);
        assert!(matches!(err, DockerfileError::MissingArguments { line: 2, .. }));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(infer_err("", &[]), DockerfileError::NoFromInstruction);
        assert_eq!(infer_err("ARG A=1\n# only args\n", &[]), DockerfileError::NoFromInstruction);
        let err = infer_err("COPY a /\nFROM x\n", &["a"]);
        assert!(matches!(err, DockerfileError::InvalidInstruction { line: 1, .. }), "{err:?}");
        let err = infer_err("FROM x\nENV a=1 b\n", &[]);
        assert!(matches!(err, DockerfileError::InvalidInstruction { line: 2, .. }), "{err:?}");
        let err = infer_err("FROM x\nCOPY [z-a /t/\n", &["a"]);
        assert!(
            matches!(err, DockerfileError::UnterminatedJsonArray { .. } | DockerfileError::BadSourcePattern { .. }),
            "{err:?}"
        );
        let err = infer_err("FROM x\nCOPY a[ /t/\n", &["a"]);
        assert!(matches!(err, DockerfileError::BadSourcePattern { line: 2, .. }), "{err:?}");
        let err = sync_map("FROM x\n", &BTreeMap::new(), &files(&["../up"]), None).unwrap_err();
        assert!(matches!(err, DockerfileError::InvalidContextPath { .. }), "{err:?}");
    }

    #[test]
    fn classify_infer_change_cases() {
        let map = expect(&[
            ("static/page1.html", &["/var/www/page1.html"]),
            ("nginx.conf", &["/etc/nginx.conf", "/var/nginx.conf"]),
        ]);
        let html_and_conf = InferPatterns::new(files(&["**/*.html", "*.conf"])).unwrap();
        assert_eq!(
            classify_infer_change(&html_and_conf, &map, &files(&["nginx.conf", "./static/page1.html"]), &[]),
            ChangeAction::Sync {
                copy: vec![
                    ("nginx.conf".into(), files(&["/etc/nginx.conf", "/var/nginx.conf"])),
                    ("static/page1.html".into(), files(&["/var/www/page1.html"])),
                ],
                delete: vec![],
            }
        );
        // Not allowed by the patterns, or not in the image: rebuild.
        let html_only = InferPatterns::new(files(&["**/*.html"])).unwrap();
        assert_eq!(
            classify_infer_change(&html_only, &map, &files(&["nginx.conf", "main.go"]), &[]),
            ChangeAction::Rebuild { unmatched: files(&["nginx.conf", "main.go"]) }
        );
        // Any deletion rebuilds, even of a file that was synced.
        assert_eq!(
            classify_infer_change(
                &InferPatterns::match_all(),
                &map,
                &files(&["nginx.conf"]),
                &files(&["static/page1.html"])
            ),
            ChangeAction::Rebuild { unmatched: files(&["static/page1.html"]) }
        );
    }

    #[test]
    fn from_copy_into_a_folder_makes_it_a_known_folder() {
        let dockerfile = "FROM b AS build\nFROM x\nCOPY --from=build /out/ /srv/\nCOPY conf.yaml /srv\n";
        let map = infer(dockerfile, &["conf.yaml"]);
        assert_eq!(map, expect(&[("conf.yaml", &["/srv/conf.yaml"])]));
    }

    #[test]
    fn dockerignore_applies_to_wildcard_sources_and_crlf() {
        let ignore = "# generated\r\n**/*_test.go\r\n!keep_test.go\r\n";
        let ctx = files(&["a.go", "a_test.go", "keep_test.go", "pkg/b_test.go", "pkg/b.go"]);
        let map = sync_map("FROM x\nCOPY *.go pkg /src/\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap();
        assert_eq!(
            map,
            expect(
                &[("a.go", &["/src/a.go"]), ("keep_test.go", &["/src/keep_test.go"]), ("pkg/b.go", &["/src/b.go"]),]
            )
        );
    }

    #[test]
    fn sync_map_serializes_as_the_proposal_json_object() {
        let map = infer("FROM x\nADD nginx.conf .\nADD nginx.conf /etc/\n", &["nginx.conf"]);
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"nginx.conf":["/etc/nginx.conf","/nginx.conf"]}"#);
    }

    #[test]
    fn glob_engine() {
        let m =
            |p: &str, s: &str, ds: bool| glob_match(&compile_pattern(p, ds).unwrap(), &s.chars().collect::<Vec<_>>());
        assert!(m("*.go", "main.go", false));
        assert!(!m("*.go", "pkg/main.go", false));
        assert!(m("*/*.go", "pkg/main.go", false));
        assert!(m("**", "pkg/x", true));
        assert!(!m("**", "pkg/x", false));
        assert!(m("**/*.go", "main.go", true));
        assert!(m("**/*.go", "a/b/main.go", true));
        assert!(m("a?c", "abc", false));
        assert!(!m("a?c", "a/c", false));
        assert!(m("[^a]x", "bx", false));
        assert!(!m("[^a]x", "ax", false));
        assert!(m("\\*", "*", false));
        assert!(!m("\\*", "x", false));
        assert!(m("x[\\]]", "x]", false));
        assert!(compile_pattern("[]", false).is_err());
        assert!(compile_pattern("[a-]", false).is_err());
        assert!(compile_pattern("a\\", false).is_err());
        assert_eq!(go_clean("./a//b/../c/"), "a/c");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("../a"), "../a");
        assert_eq!(go_clean(""), ".");
    }
}
