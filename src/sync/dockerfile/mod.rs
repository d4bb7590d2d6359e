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
//!
//! # Theory of operation
//!
//! Inference is a pipeline of pure steps, one file each:
//!
//! 1. `lex.rs` turns the Dockerfile text into logical lines (directives,
//!    continuations, comments and heredocs handled), each remembering the
//!    line it starts on, and splits an instruction's arguments into words.
//! 2. `ignore.rs` parses the `.dockerignore`; `context.rs` applies it to the
//!    caller's file list, giving the files and folders Docker would send.
//!    Both match wildcards with the engine in `glob.rs`.
//! 3. `stages.rs` follows the instructions in order, one stage per `FROM`,
//!    keeping each stage's `WORKDIR`, `ENV`, `ARG`s and files (`stage.rs`);
//!    every word is expanded by `expand.rs` with the variables in scope at
//!    that point. `copy.rs` carries out `COPY`/`ADD` against the context.
//! 4. [`sync_map_with`] inverts the last stage's container path → file
//!    table into the [`SyncMap`]. [`classify_infer_change`] then answers,
//!    for a batch of saved files, "sync these copies" or "rebuild".
//!
//! Every failure is a [`DockerfileError`] naming the line at fault.
//!
//! ```
//! use std::collections::BTreeMap;
//! use gohot::sync::dockerfile::sync_map;
//!
//! let dockerfile = "FROM nginx\nWORKDIR /var\nCOPY static *.html www/\nADD nginx.conf .\nADD nginx.conf /etc/\n";
//! let files = ["static/page1.html", "index.html", "nginx.conf"].map(String::from);
//! let map = sync_map(dockerfile, &BTreeMap::new(), &files, None).unwrap();
//! assert_eq!(map["static/page1.html"], ["/var/www/page1.html"]);
//! assert_eq!(map["nginx.conf"], ["/etc/nginx.conf", "/var/nginx.conf"]);
//! ```

use std::collections::BTreeMap;

use super::rules::{normalize_rel_path, ChangeAction, InferPatterns};

mod context;
mod copy;
mod error;
mod expand;
mod glob;
mod ignore;
mod lex;
mod stage;
mod stages;

pub use error::DockerfileError;
pub use ignore::DockerIgnore;

/// Context file (relative, `/`-separated) → every absolute container path it
/// is copied to (sorted, no duplicates). The design proposal's `SyncMap`.
pub type SyncMap = BTreeMap<String, Vec<String>>;

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
    let (lines, escape) = lex::logical_lines(dockerfile)?;
    let ignore = match dockerignore {
        Some(text) => DockerIgnore::parse(text)?,
        None => DockerIgnore::default(),
    };
    let context = context::Context::new(context_files, &ignore)?;
    let files = stages::final_files(&lines, escape, build_args, options, &context)?;
    let mut map = SyncMap::new();
    for (dest, src) in files {
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

/// Helpers shared by the tests of every file of this module.
#[cfg(test)]
mod test_util {
    use super::*;

    /// A Dockerfile and the sync map it should give.
    pub type Case<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])]);

    pub fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    pub fn infer(dockerfile: &str, context: &[&str]) -> SyncMap {
        sync_map(dockerfile, &BTreeMap::new(), &files(context), None).unwrap()
    }

    pub fn infer_err(dockerfile: &str, context: &[&str]) -> DockerfileError {
        sync_map(dockerfile, &BTreeMap::new(), &files(context), None).unwrap_err()
    }

    pub fn expect(pairs: &[(&str, &[&str])]) -> SyncMap {
        pairs.iter().map(|(k, v)| (k.to_string(), files(v))).collect()
    }

    /// Skaffold's syncmap_test.go context.
    pub const SKAFFOLD_CONTEXT: &[&str] = &[
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
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

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
    fn sync_map_serializes_as_the_proposal_json_object() {
        let map = infer("FROM x\nADD nginx.conf .\nADD nginx.conf /etc/\n", &["nginx.conf"]);
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"nginx.conf":["/etc/nginx.conf","/nginx.conf"]}"#);
    }
}
