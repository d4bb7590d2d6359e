//! Changes gohot builds delve with, each measured to shorten the start of
//! a reloaded process under `--debug` (delve starts with every reload). They
//! go in through `go build -overlay`: delve's source and the module cache are
//! left as they are. Each change replaces one exact piece of text inside one
//! function; a delve whose function reads otherwise is built without that
//! change, and a build that fails with the changes is done again without any.

use std::path::Path;

/// One change to one function of delve's source.
#[derive(Debug)]
pub struct Patch {
    /// The file, relative to delve's module root.
    pub file: &'static str,
    /// How the function's declaration starts.
    pub func: &'static str,
    /// The text replaced: it must be found exactly once in the function.
    pub old: &'static str,
    /// What replaces it.
    pub new: &'static str,
}

/// After starting the program, delve waits for its first stop by polling
/// `wait4(WNOHANG)` and sleeping 200 ms whenever the stop has not come yet
/// (`wait`): it had not, in about half the starts measured here (12 starts:
/// 0.29–0.51 s, against 0.10–0.15 s polling every millisecond).
pub const LAUNCH_WAIT: Patch = Patch {
    file: "pkg/proc/native/proc_linux.go",
    func: "func (dbp *nativeProcess) wait(",
    old: "\t\ttime.Sleep(200 * time.Millisecond)\n",
    new: "\t\ttime.Sleep(time.Millisecond)\n",
};

/// Delve finds the addresses of `runtime.allglen` and `runtime.allgs` by
/// reading the program's DWARF from the start, twice, although loading the
/// binary has just indexed every package variable: a fifth of its start
/// (18 ms of 86 ms for examples/hello built with `-N -l`, 12 MB). The change
/// takes them from that index and reads the DWARF only when it lacks them.
pub const GOROUTINE_CACHE: Patch = Patch {
    file: "pkg/proc/goroutine_cache.go",
    func: "func (gcache *goroutineCache) init(",
    old: "\tgcache.allglenAddr, _ = rdr.AddrFor(\"runtime.allglen\", exeimage.StaticBase, bi.Arch.PtrSize())\n",
    new: "\tfor _, v := range bi.packageVars {
\t\tswitch v.name {
\t\tcase \"runtime.allglen\":
\t\t\tgcache.allglenAddr = v.addr
\t\tcase \"runtime.allgs\":
\t\t\tgcache.allgentryAddr = v.addr
\t\t}
\t}
\tif gcache.allglenAddr != 0 && gcache.allgentryAddr != 0 {
\t\treturn
\t}
\tgcache.allglenAddr, _ = rdr.AddrFor(\"runtime.allglen\", exeimage.StaticBase, bi.Arch.PtrSize())
",
};

/// Every change, in the order applied.
pub const PATCHES: &[Patch] = &[LAUNCH_WAIT, GOROUTINE_CACHE];

impl Patch {
    /// `source` with the change made: None unless [`Patch::old`] is found
    /// exactly once in the function.
    pub fn apply(&self, source: &str) -> Option<String> {
        let start = source.find(self.func)?;
        let end = start + source[start..].find("\n}\n")?;
        let body = &source[start..end];
        if body.matches(self.old).count() != 1 {
            return None;
        }
        let at = start + body.find(self.old)?;
        Some(format!("{}{}{}", &source[..at], self.new, &source[at + self.old.len()..]))
    }
}

/// The changed files of the delve source at `root`, as (file relative to
/// `root`, its changed text), for the changes that apply; several changes to
/// one file are made one after the other.
pub fn patched_files(root: &Path) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&'static str, String)> = Vec::new();
    for patch in PATCHES {
        let known = files.iter().position(|(f, _)| *f == patch.file);
        let current = match known {
            Some(i) => files[i].1.clone(),
            None => match std::fs::read_to_string(root.join(patch.file)) {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        match (patch.apply(&current), known) {
            (Some(changed), Some(i)) => files[i].1 = changed,
            (Some(changed), None) => files.push((patch.file, changed)),
            (None, _) => tracing::debug!("{} in delve's {} differs: built without that change", patch.func, patch.file),
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launch-wait line is changed in `wait` only, once; a source
    /// without it, or with it twice, is left alone (built as it is).
    #[test]
    fn a_patch_changes_its_text_inside_its_function_only_when_found_once() {
        let wait = "func (dbp *nativeProcess) wait(pid, options int) {\n\tfor {\n\t\ttime.Sleep(200 * time.Millisecond)\n\t}\n}\n";
        let other = "func other() {\n\t\ttime.Sleep(200 * time.Millisecond)\n}\n";
        let source = format!("package native\n\n{other}\n{wait}");
        let patched = LAUNCH_WAIT.apply(&source).expect("patched");
        assert_eq!(patched, source.replacen(wait, &wait.replace("200 * time.Millisecond", "time.Millisecond"), 1));
        assert!(patched.contains(other), "a sleep outside wait is left alone");
        assert_eq!(LAUNCH_WAIT.apply(other), None);
        let twice = wait.replace("\t}\n}", "\t\ttime.Sleep(200 * time.Millisecond)\n\t}\n}");
        assert_eq!(LAUNCH_WAIT.apply(&twice), None);
    }

    /// A missing file is skipped, a change that fits is made, and a file
    /// whose function reads otherwise is left alone.
    #[test]
    fn changes_to_one_file_compose_and_a_differing_function_is_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        let cache = format!("package proc\n\n{}{}\treturn\n}}\n", GOROUTINE_CACHE.func, GOROUTINE_CACHE.old);
        write(GOROUTINE_CACHE.file, &cache);
        let files = patched_files(dir.path());
        assert_eq!(files.len(), 1, "proc_linux.go is missing: only the cache file");
        assert_eq!(files[0].0, GOROUTINE_CACHE.file);
        assert!(files[0].1.contains("range bi.packageVars") && files[0].1.contains(GOROUTINE_CACHE.old));
        write(GOROUTINE_CACHE.file, "package proc\n\nfunc (gcache *goroutineCache) init(bi *BinaryInfo) {\n}\n");
        assert!(patched_files(dir.path()).is_empty(), "a function that reads otherwise is left alone");
    }
}
