//! One stage's image as far as sync inference follows it: its `WORKDIR`,
//! `ENV` and `ARG` values, the folders known to exist and the context file
//! copied to each container path. The instruction walk ([`super::stages`])
//! and `COPY`/`ADD` ([`super::copy`]) both change it; it depends on neither.

use std::collections::{BTreeMap, BTreeSet};

use crate::sync::rules::{clean_abs, join_abs};

#[derive(Debug, Clone, Default)]
/// What is known about one stage's image so far.
pub(super) struct Stage {
    /// `WORKDIR`, absolute and clean.
    pub(super) workdir: String,
    /// `ENV` values.
    pub(super) env: BTreeMap<String, String>,
    /// Declared `ARG`s and their values.
    pub(super) args: BTreeMap<String, Option<String>>,
    /// Container path → context file copied there.
    pub(super) files: BTreeMap<String, String>,
    /// Container folders known to exist.
    pub(super) dirs: BTreeSet<String>,
}

impl Stage {
    /// A stage whose base image works in `workdir`.
    pub(super) fn based_on(workdir: &str) -> Self {
        let mut stage = Stage { workdir: clean_abs(workdir), ..Stage::default() };
        stage.add_dir(&stage.workdir.clone());
        stage
    }

    /// Records `dir` and its ancestors as folders.
    pub(super) fn add_dir(&mut self, dir: &str) {
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

    /// Records that context file `src` is copied to container path `dest`.
    pub(super) fn put(&mut self, dest: String, src: &str) {
        if let Some(i) = dest.rfind('/') {
            self.add_dir(if i == 0 { "/" } else { &dest[..i] });
        }
        self.files.insert(dest, src.to_owned());
    }

    /// `dest` as an absolute, clean path (relative to `WORKDIR`).
    pub(super) fn resolve(&self, dest: &str) -> String {
        if dest.starts_with('/') {
            clean_abs(dest)
        } else {
            join_abs(&[&self.workdir, dest])
        }
    }
}
