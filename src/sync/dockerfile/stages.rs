//! Following the instructions: stages, `WORKDIR`, `ENV` and `ARG` scopes.
//!
//! A [`Builder`] walks the [`LogicalLine`]s in order, keeping one [`Stage`]
//! per `FROM`: its `WORKDIR`, its `ENV` and `ARG` values, the folders known
//! to exist in it and, for every container path, the context file copied
//! there. `ARG`s before the first `FROM` are global: they are visible in
//! `FROM` and, once re-declared without a default, inside a stage; a build
//! argument overrides a declared `ARG`'s default. A stage built `FROM` an
//! earlier stage starts as a copy of it; any other stage starts empty at its
//! base image's `WORKDIR`. `COPY` and `ADD` are handed to [`super::copy`];
//! every other instruction (`RUN`, `CMD`, …) changes nothing that matters
//! here. [`final_files`] returns the last stage's files, the image's.

use std::collections::BTreeMap;

use super::context::Context;
use super::copy::copy;
use super::error::DockerfileError;
use super::expand::{expand_word, Vars};
use super::lex::{missing, name_values, split_blanks, strip_flags, LogicalLine};
use super::stage::Stage;
use super::InferOptions;

/// Follows `lines` (escape character `escape`) and returns the files of the
/// last stage: container path → context file copied there.
pub(super) fn final_files(
    lines: &[LogicalLine],
    escape: char,
    build_args: &BTreeMap<String, String>,
    options: &InferOptions,
    context: &Context,
) -> Result<BTreeMap<String, String>, DockerfileError> {
    let mut builder = Builder {
        escape,
        build_args,
        options,
        context,
        global_args: BTreeMap::new(),
        stages: Vec::new(),
        stage_names: BTreeMap::new(),
    };
    for line in lines {
        builder.instruction(line)?;
    }
    let stage = builder.stages.pop().ok_or(DockerfileError::NoFromInstruction)?;
    Ok(stage.files)
}

/// Follows instructions one by one; see the module documentation.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::sync::dockerfile::sync_map;
    use crate::sync::dockerfile::test_util::*;

    #[test]
    fn workdir_is_relative_to_previous_workdir() {
        let map = infer("FROM x\nWORKDIR app\nWORKDIR sub/../src\nCOPY a .\nWORKDIR /abs\nCOPY a rel/\n", &["a"]);
        assert_eq!(map, expect(&[("a", &["/abs/rel/a", "/app/src/a"])]));
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
}
