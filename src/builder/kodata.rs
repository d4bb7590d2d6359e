//! kodata: the files a package ships next to its binary (ko's convention:
//! `<package>/kodata` → `/var/run/ko`, `KO_DATA_PATH`), read as the image
//! builder needs them, and the files gohot itself places there for dev
//! images (watchexec, its record, their `.gitignore` lines), which a
//! production image never carries.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// watchexec, as the dev image carries it in kodata (the Skaffold ko
/// proposal's place: `/var/run/ko/watchexec`).
pub const BINARY_NAME: &str = "watchexec";

/// Name of the sidecar that records the verified binary's sha256 and origin.
pub const RECORD_NAME: &str = ".watchexec.sha256";

/// Lines gohot keeps in `<kodata>/.gitignore`.
pub const GITIGNORE_LINES: [&str; 2] = [BINARY_NAME, RECORD_NAME];

/// Whether a kodata path (relative to kodata) is a file gohot manages
/// itself there (watchexec, its record, the `.gitignore` it keeps them out
/// of git with): such changes are never the user's edits.
pub fn is_gohot_owned_kodata(rel: &str) -> bool {
    rel == BINARY_NAME || rel == RECORD_NAME || rel == ".gitignore"
}

/// Where an installed binary came from, as kept in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// sha256 of the binary, lowercase hex.
    pub sha256: String,
    /// `release <version> <triple>` or `local`.
    pub origin: String,
}

impl Record {
    /// The record file's text.
    pub fn render(&self) -> String {
        format!(
            "# written by gohot: sha256 of ./{BINARY_NAME} as verified when it was installed.\n\
             # Delete this file (or the binary) to make gohot install watchexec again.\n\
             {}  {BINARY_NAME}\norigin {}\n",
            self.sha256, self.origin
        )
    }

    /// Reads a record file (None: not one).
    pub fn parse(text: &str) -> Option<Record> {
        let mut sha256 = None;
        let mut origin = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(rest) = line.strip_prefix("origin ") {
                origin = Some(rest.trim().to_owned());
            } else if let Some((hash, name)) = line.split_once("  ") {
                if name.trim() == BINARY_NAME && is_sha256_hex(hash) {
                    sha256 = Some(hash.to_ascii_lowercase());
                }
            }
        }
        Some(Record { sha256: sha256?, origin: origin? })
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where kodata's symlinks may lead: below the module's directory (go.mod's),
/// or below `KO_DATA_PATH_ALLOWED_ROOT` when it is set.
///
/// ko 0.19.1 (ko#1619) refuses a kodata symlink that resolves outside
/// kodata; ko#1699 widens that to the enclosing source tree, or to
/// `KO_DATA_PATH_ALLOWED_ROOT`. gohot's rule: every symlink met in kodata
/// (kodata itself, a directory on the way, the file) is resolved to its
/// final target, which must lie inside one of these roots; a link whose
/// target does not exist is refused as dangling, a directory link back into
/// its own ancestors as a loop. So `kodata/leak.txt → ~/.aws/credentials`
/// never reaches an image or a container, and a shared `LICENSE` at the
/// module's top still may.
#[derive(Clone, Debug)]
pub struct KodataBounds {
    /// Canonical directories.
    roots: Vec<PathBuf>,
}

/// The environment variable (ko's) that widens [`KodataBounds`].
pub const ALLOWED_ROOT_ENV: &str = "KO_DATA_PATH_ALLOWED_ROOT";

impl KodataBounds {
    /// Below `module_root`, and below `allowed_root` (`KO_DATA_PATH_ALLOWED_ROOT`) if any.
    pub fn new(module_root: &Path, allowed_root: Option<&Path>) -> Self {
        let roots = std::iter::once(module_root)
            .chain(allowed_root)
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()))
            .collect();
        KodataBounds { roots }
    }

    /// [`KodataBounds::new`] with `KO_DATA_PATH_ALLOWED_ROOT` from the environment.
    pub fn from_env(module_root: &Path) -> Self {
        let env = std::env::var_os(ALLOWED_ROOT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self::new(module_root, env.as_deref())
    }

    fn allows(&self, resolved: &Path) -> bool {
        self.roots.iter().any(|root| resolved.starts_with(root))
    }

    fn describe(&self) -> String {
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        roots.join(" or ")
    }

    /// The canonical path `path` stands for, when it is a symlink (else
    /// `path` itself, which the caller knows to be canonical already).
    fn follow(&self, path: &Path) -> Result<PathBuf, KodataError> {
        let io = |source| KodataError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        if !meta.file_type().is_symlink() {
            return Ok(path.to_path_buf());
        }
        let target = std::fs::read_link(path).map_err(io)?;
        let resolved = match std::fs::canonicalize(path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KodataError::Dangling { link: path.to_path_buf(), target })
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(KodataError::Loop { link: path.to_path_buf(), target })
            }
            Err(e) => return Err(io(e)),
        };
        if !self.allows(&resolved) {
            return Err(KodataError::Escapes { link: path.to_path_buf(), target, resolved, allowed: self.describe() });
        }
        Ok(resolved)
    }
}

/// Why kodata could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KodataError {
    /// A symlink leads outside [`KodataBounds`].
    #[error(
        "{link} is a symlink to {target}{}, outside the module ({allowed}): gohot, as ko, ships no file from \
         outside it. Copy the file into the module, or set KO_DATA_PATH_ALLOWED_ROOT to a directory that holds it",
        if resolved == target { String::new() } else { format!(" (that is {})", resolved.display()) },
        link = link.display(), target = target.display()
    )]
    Escapes {
        /// The link.
        link: PathBuf,
        /// What it says it points to.
        target: PathBuf,
        /// Where that leads, every link followed.
        resolved: PathBuf,
        /// The roots it may lead into.
        allowed: String,
    },
    /// A symlink whose target does not exist.
    #[error("{link} is a dangling symlink: its target {target} does not exist. Remove the link or create its target", link = link.display(), target = target.display())]
    Dangling {
        /// The link.
        link: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// A symlink that leads back into itself or its own directory.
    #[error("{link} is a symlink loop (to {target}): it leads back into itself", link = link.display(), target = target.display())]
    Loop {
        /// The link.
        link: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// A path that is not a plain relative kodata path.
    #[error("{0:?} is not a path inside kodata")]
    BadPath(String),
    /// Reading failed.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One file of kodata: relative path (`/`-separated), mode, content.
pub type KodataFile = (String, u32, Bytes);

/// What a path inside kodata is, its links followed within [`KodataBounds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KodataEntry {
    /// A regular file: read it at `path` (every link resolved, checked), with this mode.
    File {
        /// Canonical path of the file itself.
        path: PathBuf,
        /// 0755 or 0644.
        mode: u32,
    },
    /// Nothing there (removed).
    Gone,
    /// A directory or something that is not a regular file: nothing to send.
    NotAFile,
}

/// The one check for a single kodata file, as the dev loop syncs a changed
/// one: `rel` (relative to `kodata`, `/`-separated) resolved component by
/// component, every symlink met checked against `bounds` exactly as a build
/// reads kodata ([`read_kodata`]). A refused link is an error naming it.
pub fn resolve_kodata_file(kodata: &Path, rel: &str, bounds: &KodataBounds) -> Result<KodataEntry, KodataError> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") || rel.starts_with('/') {
        return Err(KodataError::BadPath(rel.to_string()));
    }
    let mut current = match kodata_root(kodata, bounds)? {
        Some(root) => root,
        None => return Ok(KodataEntry::Gone),
    };
    for part in parts {
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Ok(KodataEntry::Gone)
            }
            Err(source) => return Err(KodataError::Io { path: next, source }),
            Ok(_) => current = bounds.follow(&next)?,
        }
    }
    let meta = std::fs::metadata(&current).map_err(|source| KodataError::Io { path: current.clone(), source })?;
    Ok(if meta.is_file() { KodataEntry::File { path: current, mode: mode_of(&meta) } } else { KodataEntry::NotAFile })
}

/// kodata's own directory, canonical and checked (it may itself be a
/// link); None when there is none.
fn kodata_root(kodata: &Path, bounds: &KodataBounds) -> Result<Option<PathBuf>, KodataError> {
    match std::fs::symlink_metadata(kodata) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KodataError::Io { path: kodata.to_path_buf(), source }),
        Ok(_) => {}
    }
    let parent = kodata.parent().unwrap_or(Path::new("/"));
    let parent = std::fs::canonicalize(parent).map_err(|source| KodataError::Io { path: parent.into(), source })?;
    let root = bounds.follow(&parent.join(kodata.file_name().unwrap_or_default()))?;
    Ok(std::fs::metadata(&root).is_ok_and(|m| m.is_dir()).then_some(root))
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Reads a package's `kodata` directory: every regular file below it, with
/// `/`-separated relative paths, symlinks followed within `bounds` (see
/// [`KodataBounds`]; one that leads outside, dangles or loops is an error
/// naming it). A missing directory is empty kodata.
pub fn read_kodata(dir: &Path, bounds: &KodataBounds) -> Result<Vec<KodataFile>, KodataError> {
    let mut out = Vec::new();
    let Some(root) = kodata_root(dir, bounds)? else {
        return Ok(out);
    };
    // (canonical directory, its relative path, the canonical directories above it)
    let mut stack = vec![(root.clone(), String::new(), vec![root])];
    while let Some((path, rel, ancestors)) = stack.pop() {
        let io = |source| KodataError::Io { path: path.clone(), source };
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let real = bounds.follow(&entry.path())?;
            let meta = std::fs::metadata(&real).map_err(|source| KodataError::Io { path: real.clone(), source })?;
            if meta.is_dir() {
                // A directory that holds the one being read: walking it never ends.
                if ancestors.iter().any(|a| a.starts_with(&real)) {
                    let target = std::fs::read_link(entry.path()).unwrap_or_else(|_| real.clone());
                    return Err(KodataError::Loop { link: entry.path(), target });
                }
                let mut below = ancestors.clone();
                below.push(real.clone());
                stack.push((real, child_rel, below));
            } else if meta.is_file() {
                let data = std::fs::read(&real).map_err(|source| KodataError::Io { path: real.clone(), source })?;
                out.push((child_rel, mode_of(&meta), Bytes::from(data)));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// kodata as a production image ships it: without what gohot itself placed
/// there for dev images.
///
/// `files` are kodata's files (relative path, mode, content), as
/// [`read_kodata`] reads them. Removed: `watchexec` when
/// gohot's record (`.watchexec.sha256`) vouches for it (same sha256), and the
/// record itself. `.gitignore` loses the lines gohot adds (`watchexec`,
/// `.watchexec.sha256`, also `/`-anchored) and ends with a newline; with no
/// line left it is left out. The result is the same before and after a
/// `gohot dev` session, whether or not gohot created or appended to the
/// `.gitignore`, so a production image's digest does not depend on whether
/// someone ran the dev loop. Pure.
pub fn production_kodata(files: Vec<KodataFile>) -> Vec<KodataFile> {
    let record = files
        .iter()
        .find(|(rel, _, _)| rel == RECORD_NAME)
        .and_then(|(_, _, data)| Record::parse(&String::from_utf8_lossy(data)));
    let Some(record) = record else {
        // gohot installed nothing here (or its record is gone): only the
        // .gitignore lines can be gohot's.
        return files.into_iter().filter_map(without_gohot_lines).collect();
    };
    files
        .into_iter()
        .filter(|(rel, _, data)| match rel.as_str() {
            RECORD_NAME => false,
            BINARY_NAME => hex::encode(Sha256::digest(data)) != record.sha256,
            _ => true,
        })
        .filter_map(without_gohot_lines)
        .collect()
}

/// `.gitignore` (at kodata's root) without gohot's lines; other files as they are.
fn without_gohot_lines(file: (String, u32, Bytes)) -> Option<(String, u32, Bytes)> {
    let (rel, mode, data) = file;
    if rel != ".gitignore" {
        return Some((rel, mode, data));
    }
    let text = String::from_utf8_lossy(&data);
    let mut kept = String::new();
    for line in text.lines() {
        let bare = line.trim_end_matches('\r').trim();
        let ours = GITIGNORE_LINES.iter().any(|l| bare == *l || bare.strip_prefix('/') == Some(*l));
        if !ours {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept.trim().is_empty() {
        return None;
    }
    Some((rel, mode, Bytes::from(kept)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_kodata_is_the_same_before_and_after_a_dev_session() {
        use Bytes;
        let read = |dir: &Path| read_kodata(dir, &KodataBounds::new(dir, None)).unwrap();
        let bin = b"\x7fELF static watchexec".to_vec();
        for before in [None, Some("*.tmp\n"), Some("*.tmp"), Some("watchexec\n.watchexec.sha256\n"), Some("")] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("index.html"), "hi").unwrap();
            if let Some(text) = before {
                std::fs::write(dir.path().join(".gitignore"), text).unwrap();
            }
            let clean = production_kodata(read(dir.path()));
            crate::devimage::watchexec::install(dir.path(), &bin, "local", None).unwrap();
            let after = read(dir.path());
            assert!(after.iter().any(|(r, _, _)| r == "watchexec"), "installed");
            assert_eq!(production_kodata(after), clean, "before: {before:?}");
            assert!(clean.iter().any(|(r, _, d)| r == "index.html" && d == &Bytes::from_static(b"hi")));
            assert!(!clean.iter().any(|(r, _, _)| r == "watchexec" || r == RECORD_NAME));
        }
        // The user's own files are kept, including a watchexec gohot did not install.
        let own = vec![
            ("watchexec".to_string(), 0o755, Bytes::from_static(b"mine")),
            (".gitignore".to_string(), 0o644, Bytes::from_static(b"*.log\n/watchexec\r\n")),
        ];
        let kept = production_kodata(own);
        assert_eq!(kept[0].0, "watchexec");
        assert_eq!(kept[1].2, Bytes::from_static(b"*.log\n"));
    }

    /// A module with kodata, and a directory beside it (outside the module).
    fn module() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let module = top.path().join("module");
        std::fs::create_dir_all(module.join("cmd/app/kodata")).unwrap();
        std::fs::create_dir_all(top.path().join("outside")).unwrap();
        std::fs::write(top.path().join("outside/credentials"), "SECRET").unwrap();
        std::fs::write(module.join("LICENSE"), "license").unwrap();
        std::fs::write(module.join("cmd/app/kodata/index.html"), "hi").unwrap();
        let kodata = module.join("cmd/app/kodata");
        (top, module, kodata)
    }

    fn link(target: impl AsRef<Path>, at: &Path) {
        std::os::unix::fs::symlink(target, at).unwrap();
    }

    #[test]
    fn links_within_the_module_are_followed() {
        let (_top, module, kodata) = module();
        link("../../../LICENSE", &kodata.join("LICENSE"));
        std::fs::create_dir_all(module.join("assets/css")).unwrap();
        std::fs::write(module.join("assets/css/site.css"), "body{}").unwrap();
        link(module.join("assets"), &kodata.join("assets"));
        link("index.html", &kodata.join("alias.html"));
        let bounds = KodataBounds::new(&module, None);
        let files: Vec<(String, Bytes)> =
            read_kodata(&kodata, &bounds).unwrap().into_iter().map(|(r, _, d)| (r, d)).collect();
        let names: Vec<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, ["LICENSE", "alias.html", "assets/css/site.css", "index.html"]);
        assert_eq!(files[0].1, Bytes::from_static(b"license"));
        // The single-file check agrees, and names the file to read.
        let entry = resolve_kodata_file(&kodata, "assets/css/site.css", &bounds).unwrap();
        let real = std::fs::canonicalize(module.join("assets/css/site.css")).unwrap();
        assert_eq!(entry, KodataEntry::File { path: real, mode: 0o644 });
        assert_eq!(resolve_kodata_file(&kodata, "assets", &bounds).unwrap(), KodataEntry::NotAFile);
        assert_eq!(resolve_kodata_file(&kodata, "gone.txt", &bounds).unwrap(), KodataEntry::Gone);
        assert_eq!(resolve_kodata_file(&kodata, "index.html/x", &bounds).unwrap(), KodataEntry::Gone);
        assert!(matches!(resolve_kodata_file(&kodata, "../x", &bounds), Err(KodataError::BadPath(_))));
    }

    #[test]
    fn links_out_of_the_module_are_refused_naming_link_and_target() {
        let (top, module, kodata) = module();
        let bounds = KodataBounds::new(&module, None);
        let secret = top.path().join("outside/credentials");
        for (name, target) in [("leak.txt", secret.clone()), ("etc", PathBuf::from("/etc"))] {
            let at = kodata.join(name);
            link(&target, &at);
            let err = read_kodata(&kodata, &bounds).unwrap_err();
            assert!(
                matches!(&err, KodataError::Escapes { link, .. } if link.ends_with(format!("kodata/{name}"))),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(&format!("kodata/{name}")) && text.contains(&target.display().to_string()), "{text}");
            assert!(text.contains("KO_DATA_PATH_ALLOWED_ROOT"), "{text}");
            let single = resolve_kodata_file(&kodata, name, &bounds).unwrap_err();
            assert!(matches!(single, KodataError::Escapes { .. }), "{single:?}");
            std::fs::remove_file(&at).unwrap();
        }
        // Out and back in: the way out is refused, as the walk refuses it.
        link(top.path().join("outside"), &kodata.join("out"));
        link(module.join("LICENSE"), &top.path().join("outside/back"));
        assert!(matches!(resolve_kodata_file(&kodata, "out/back", &bounds), Err(KodataError::Escapes { .. })));
        assert!(matches!(read_kodata(&kodata, &bounds), Err(KodataError::Escapes { .. })));
        // KO_DATA_PATH_ALLOWED_ROOT widens the bounds.
        let wider = KodataBounds::new(&module, Some(&top.path().join("outside")));
        let files = read_kodata(&kodata, &wider).unwrap();
        assert!(files.iter().any(|(r, _, d)| r == "out/credentials" && d == &Bytes::from_static(b"SECRET")));
        // kodata itself is held to the same rule.
        std::fs::remove_file(kodata.join("out")).unwrap();
        let moved = module.join("cmd/app/kodata.real");
        std::fs::rename(&kodata, &moved).unwrap();
        link(top.path().join("outside"), &kodata);
        assert!(matches!(read_kodata(&kodata, &bounds), Err(KodataError::Escapes { .. })));
        assert!(matches!(resolve_kodata_file(&kodata, "credentials", &bounds), Err(KodataError::Escapes { .. })));
    }

    #[test]
    fn dangling_links_and_loops_are_named_as_such() {
        let (_top, module, kodata) = module();
        let bounds = KodataBounds::new(&module, None);
        link("missing.txt", &kodata.join("dangling"));
        let err = read_kodata(&kodata, &bounds).unwrap_err();
        assert!(
            matches!(&err, KodataError::Dangling { link, target } if link.ends_with("kodata/dangling") && target == Path::new("missing.txt")),
            "{err:?}"
        );
        assert!(err.to_string().contains("dangling"), "{err}");
        assert!(matches!(resolve_kodata_file(&kodata, "dangling", &bounds), Err(KodataError::Dangling { .. })));
        std::fs::remove_file(kodata.join("dangling")).unwrap();

        link(".", &kodata.join("self"));
        assert!(matches!(read_kodata(&kodata, &bounds), Err(KodataError::Loop { .. })));
        std::fs::remove_file(kodata.join("self")).unwrap();
        link("b", &kodata.join("a"));
        link("a", &kodata.join("b"));
        let err = read_kodata(&kodata, &bounds).unwrap_err();
        assert!(matches!(err, KodataError::Loop { .. }), "{err:?}");
        assert!(matches!(resolve_kodata_file(&kodata, "a", &bounds), Err(KodataError::Loop { .. })));
    }
}
