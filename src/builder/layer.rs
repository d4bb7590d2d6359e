//! Deterministic layer tarballs: the same entries always give the same bytes.
//!
//! Entries are sorted, owners are root, times are fixed (SOURCE_DATE_EPOCH or
//! the Unix epoch, as ko does) and gzip carries no timestamp or name, so the
//! layer digest depends only on paths, modes and contents.

use std::io::{self, Write};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::oci::{BlobData, Descriptor, Layer, MEDIA_LAYER_GZIP};

/// What one tar entry holds.
#[derive(Clone, Debug)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with these contents.
    File(Bytes),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of a layer: a path inside the image (no leading `/`).
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path inside the image, `/`-separated, without a leading `/`.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Content.
    pub kind: EntryKind,
}

impl Entry {
    /// A root-owned directory.
    pub fn dir(path: &str, mode: u32) -> Self {
        Entry { path: path.into(), mode, uid: 0, gid: 0, kind: EntryKind::Dir }
    }

    /// A root-owned file.
    pub fn file(path: &str, mode: u32, data: Bytes) -> Self {
        Entry { path: path.into(), mode, uid: 0, gid: 0, kind: EntryKind::File(data) }
    }
}

/// The modification time written into layers: `SOURCE_DATE_EPOCH` if set.
pub fn layer_mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Adds the parent directories of `path` (e.g. `var`, `var/run` for
/// `var/run/ko`) so extraction never has to invent them with other modes.
pub fn with_parents(path: &str, mode: u32) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        out.push(Entry::dir(&acc, mode));
    }
    out
}

/// Builds a gzip-compressed layer from entries (sorted here, so callers
/// need not care about order). Duplicate paths keep the last entry.
pub fn build(mut entries: Vec<Entry>, mtime: u64) -> io::Result<Layer> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries.dedup_by(|later, earlier| {
        if later.path == earlier.path {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    let compressed = HashingWriter::new(Vec::new());
    // Fast compression: layers are rebuilt on every dev-image build and the
    // size difference to level 6 is small for Go binaries.
    let gz = flate2::GzBuilder::new().mtime(0).write(compressed, flate2::Compression::fast());
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    tar.mode(tar::HeaderMode::Deterministic);
    for e in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(mtime);
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", e.path), io::empty())?;
            }
            EntryKind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, &e.path, &data[..])?;
            }
            EntryKind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &e.path, target)?;
            }
        }
    }
    let uncompressed = tar.into_inner()?;
    let (gz, diff_id, _) = uncompressed.finish();
    let compressed = gz.finish()?;
    let (bytes, digest, size) = compressed.finish();
    Ok(Layer {
        descriptor: Descriptor { media_type: MEDIA_LAYER_GZIP.into(), digest, size, platform: None, annotations: None },
        diff_id,
        data: BlobData::Bytes(Bytes::from(bytes)),
    })
}

/// A writer that hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hash: Sha256::new(), len: 0 }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hash.finalize())), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries() -> Vec<Entry> {
        let mut v = with_parents("var/run/ko", 0o755);
        v.push(Entry::file("var/run/ko/b.txt", 0o644, Bytes::from_static(b"bee")));
        v.push(Entry::file("var/run/ko/a.txt", 0o644, Bytes::from_static(b"ay")));
        v
    }

    #[test]
    fn same_entries_same_digest_regardless_of_order() {
        let a = build(entries(), 0).unwrap();
        let mut rev = entries();
        rev.reverse();
        let b = build(rev, 0).unwrap();
        assert_eq!(a.descriptor.digest, b.descriptor.digest);
        assert_eq!(a.diff_id, b.diff_id);
        let c = build(entries(), 1).unwrap();
        assert_ne!(a.descriptor.digest, c.descriptor.digest, "mtime is part of the layer");
    }

    #[test]
    fn layer_is_a_sorted_root_owned_tar() {
        let layer = build(entries(), 0).unwrap();
        let BlobData::Bytes(data) = &layer.data else { panic!("in memory") };
        assert_eq!(crate::oci::sha256_digest(data), layer.descriptor.digest);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&data[..]).read_to_end(&mut raw).unwrap();
        assert_eq!(crate::oci::sha256_digest(&raw), layer.diff_id);
        let mut ar = tar::Archive::new(&raw[..]);
        let names: Vec<(String, u64, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().to_string_lossy().into_owned(), h.uid().unwrap(), h.mode().unwrap())
            })
            .collect();
        let paths: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(paths, ["var/", "var/run/", "var/run/ko/", "var/run/ko/a.txt", "var/run/ko/b.txt"]);
        assert!(names.iter().all(|n| n.1 == 0));
        assert_eq!(names[3].2, 0o644);
    }

    #[test]
    fn duplicate_paths_keep_the_last_entry() {
        let v = vec![
            Entry::file("x", 0o644, Bytes::from_static(b"old")),
            Entry::file("x", 0o755, Bytes::from_static(b"new")),
        ];
        let layer = build(v, 0).unwrap();
        let BlobData::Bytes(data) = &layer.data else { panic!() };
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        let mut es = ar.entries().unwrap();
        let mut e = es.next().unwrap().unwrap();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "new");
        assert!(es.next().is_none());
    }
}
