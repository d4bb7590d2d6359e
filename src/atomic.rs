//! Writing a file so that readers see the old content or the new, never
//! half: a temporary file in the destination's own directory (so the rename
//! cannot cross filesystems), written, chmod-ed, fsynced, then renamed over
//! the destination, and the directory fsynced so the rename is durable. On
//! any failure, or if the [`AtomicFile`] is dropped uncommitted, the
//! temporary file is removed and the destination is untouched.
//!
//! Every temporary file gohot makes begins with [`TEMP_PREFIX`] — this
//! writer's `.gohot-tmp.<name>.XXXXXX`, and the Go build's output, which
//! `go build -o` writes to `.gohot-tmp.out.<pid>` beside the cache entry
//! (renamed without an fsync: a cache entry lost in a crash is rebuilt) —
//! so the source watcher and syncback's listing can tell them from user
//! files. (The way-in helper inside containers follows the same discipline
//! in Go.)

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How every temporary file gohot writes begins.
pub const TEMP_PREFIX: &str = ".gohot-tmp";

/// A file being written, that becomes `dest` only through [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// A temporary file next to `dest` (its directory is created if missing).
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new().prefix(&temp_prefix(dest)).tempfile_in(dir)?;
        Ok(AtomicFile { tmp, dest: dest.to_path_buf() })
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file, to write into.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary file, to read back (e.g. reopened for async writes).
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// fsync, chmod (`mode`, else the temp file's 0600), rename over the
    /// destination, fsync the directory.
    pub fn commit(self, mode: Option<u32>) -> io::Result<()> {
        if let Some(mode) = mode {
            set_mode(self.tmp.as_file(), mode)?;
        }
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        sync_dir(self.dest.parent().unwrap_or(Path::new(".")));
        Ok(())
    }
}

/// `.gohot-tmp.<name>.`, the name cut to [`TEMP_NAME_PART`] bytes: a
/// destination whose name is near the 255-byte limit must still get a
/// temporary name that fits.
fn temp_prefix(dest: &Path) -> String {
    let mut name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.len() > TEMP_NAME_PART {
        let cut = (0..=TEMP_NAME_PART).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
        name.truncate(cut);
    }
    format!("{TEMP_PREFIX}.{name}.")
}

/// Most bytes of the destination's name in its temporary file's name.
const TEMP_NAME_PART: usize = 100;

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.as_file_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.as_file_mut().flush()
    }
}

/// Writes `data` to `dest` atomically, with `mode` if given.
pub fn write(dest: &Path, data: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(data)?;
    f.commit(mode)
}

#[cfg(unix)]
fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_f: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Best effort: some filesystems cannot fsync a directory; the rename has
/// happened and is as durable as they allow.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        write(&f, b"one", None).unwrap();
        write(&f, b"two", Some(0o751)).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777, 0o751);
        }
    }

    /// A name near the 255-byte limit still gets a temporary name that fits
    /// (before, `.gohot-tmp.<name>.XXXXXX` failed from 238 bytes on).
    #[test]
    fn long_names_get_a_temporary_name_that_fits() {
        let d = tempfile::tempdir().unwrap();
        for n in [237, 238, 255] {
            let f = d.path().join("é".repeat(n / 2) + &"x".repeat(n % 2));
            write(&f, b"long", None).unwrap();
            assert_eq!(std::fs::read(&f).unwrap(), b"long");
        }
    }

    #[test]
    fn dropped_uncommitted_leaves_dest_and_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/x");
        write(&f, b"old", None).unwrap();
        {
            let mut a = AtomicFile::create(&f).unwrap();
            a.write_all(b"half").unwrap();
            let names: Vec<String> = std::fs::read_dir(d.path().join("sub"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().any(|n| n.starts_with(".gohot-tmp.x.")), "{names:?}");
        }
        assert_eq!(std::fs::read(&f).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path().join("sub")).unwrap().count(), 1);
    }
}
