//! `COPY` and `ADD`: which context files land where.
//!
//! [`copy`] expands the sources and the destination, resolves each source
//! against the [`Context`] (a folder copies its contents, a wildcard matches
//! files and folders with Go's `filepath.Match` rules, a missing literal
//! source is an error, a source cannot climb out of the context), decides
//! whether the destination is a folder (a trailing `/`, `.`/`..`, several
//! sources, a folder source, or a path the stage already knows as a folder)
//! and records every file in the [`Stage`]; a later copy to the same path
//! replaces the earlier one. What is not from the context is left out:
//! `--from=` copies, URLs and git repositories, and the local tar archives
//! that `ADD` unpacks. `--parents` and `--exclude` are skipped
//! conservatively: a change to such a file rebuilds instead of syncing.

use super::context::Context;
use super::error::DockerfileError;
use super::glob::compile_pattern;
use super::lex::{heredoc_name, json_args, missing, split_blanks, strip_flags, LogicalLine};
use super::stage::Stage;
use crate::sync::rules::join_abs;

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

pub(super) fn copy<F>(l: &LogicalLine, stage: &mut Stage, context: &Context, expand: &F) -> Result<(), DockerfileError>
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

#[cfg(test)]
mod tests {
    use crate::sync::dockerfile::test_util::*;
    use crate::sync::dockerfile::{DockerfileError, SyncMap};

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
    fn from_copies_are_ignored() {
        let dockerfile = "FROM golang AS build\nCOPY . /src\nRUN go build -o /out/app .\nFROM gcr.io/distroless/static\nCOPY --from=build /out/app /app\nCOPY --chown=1000:1000 --chmod=755 --link config.yaml /etc/app/\n";
        let map = infer(dockerfile, &["main.go", "config.yaml"]);
        assert_eq!(map, expect(&[("config.yaml", &["/etc/app/config.yaml"])]));
    }

    #[test]
    fn from_copy_into_a_folder_makes_it_a_known_folder() {
        let dockerfile = "FROM b AS build\nFROM x\nCOPY --from=build /out/ /srv/\nCOPY conf.yaml /srv\n";
        let map = infer(dockerfile, &["conf.yaml"]);
        assert_eq!(map, expect(&[("conf.yaml", &["/srv/conf.yaml"])]));
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
}
