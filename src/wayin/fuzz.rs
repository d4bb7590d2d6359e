//! Fuzz harnesses for what a container sends syncback (the `helper list`
//! listing, the `helper get` stream), one function per target; the
//! cargo-fuzz targets in `fuzz/fuzz_targets/` and `tests/fuzz_seeds.rs` both
//! call them, as [`crate::sync::fuzz`] explains. Not part of gohot's API.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::{read_listing, BodyOutcome, EntryType, GetItem, GetLimits, GetReader, ListLimits, RelPath};

/// A reader handing out at most `step` bytes a call, as a network does.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(buf.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Fuzzes the listing parser: it must never panic, must read the same
/// listing however the bytes are split, and an accepted listing holds only
/// clean relative paths, sorted and unique, each below directories only,
/// within the caps.
///
/// Input: the listing's bytes, as the helper would print them.
pub fn syncback_listing(data: &[u8]) {
    let limits = ListLimits { max_entries: 500, max_bytes: 1 << 20 };
    let whole = read_listing(data, limits);
    let dribbled = read_listing(Dribble { data, step: 7 }, limits);
    assert_eq!(whole.as_ref().ok(), dribbled.as_ref().ok(), "the split changed the listing");
    let Ok(l) = whole else { return };
    assert!(l.entries.len() + l.skipped.len() <= limits.max_entries);
    for w in l.entries.windows(2) {
        assert!(w[0].path < w[1].path, "not sorted and unique: {} {}", w[0].path, w[1].path);
    }
    for e in &l.entries {
        assert!(RelPath::new(e.path.as_str()).is_ok(), "{}", e.path);
        assert!(e.mode <= 0o7777);
        assert!(e.sha256.is_none() || e.kind == EntryType::File);
        assert!(e.target.is_none() || e.kind == EntryType::Symlink);
        let mut p = e.path.parent();
        while let Some(d) = p {
            if let Ok(i) = l.entries.binary_search_by(|x| x.path.cmp(&d)) {
                assert_eq!(l.entries[i].kind, EntryType::Dir, "{} listed below a non-directory", e.path);
            }
            p = d.parent();
        }
    }
}

/// Fuzzes the get stream reader: it must never panic; every file it
/// accepts was requested, in order, has the size its header announced and
/// the sha256 it reports, and no more bytes than the caps allow arrive.
///
/// Input: `REQUESTED PATHS (one a line) \0 FLAG STREAM`; with FLAG `z` the
/// stream is gzip-compressed here first (reaching the records), else it is
/// read as it is.
pub fn get_stream(data: &[u8]) {
    let Some(split) = data.iter().position(|&b| b == 0) else { return };
    let requested: Vec<RelPath> =
        String::from_utf8_lossy(&data[..split]).lines().filter_map(|l| RelPath::new(l).ok()).take(64).collect();
    let rest = &data[split + 1..];
    let stream = match rest.split_first() {
        Some((b'z', body)) => {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(body).expect("gzip into memory");
            z.finish().expect("gzip into memory")
        }
        _ => rest.to_vec(),
    };
    let limits = GetLimits { max_file_size: 1 << 16, max_total_bytes: 1 << 18 };
    let mut reader = GetReader::new(Dribble { data: &stream, step: 13 }, &requested, limits);
    let mut next_wanted = 0usize;
    let mut total = 0u64;
    while let Ok(Some(item)) = reader.next_item() {
        let path = match &item {
            GetItem::File(h) => &h.path,
            GetItem::Refused { path, .. } => path,
        };
        let at = requested[next_wanted..].iter().position(|p| p == path).expect("an answer for a path not requested");
        assert_eq!(at, 0, "answers out of order");
        next_wanted += 1;
        let GetItem::File(h) = item else { continue };
        let mut body = Vec::new();
        match reader.read_body(&mut body) {
            Ok(BodyOutcome::Complete { sha256 }) => {
                assert_eq!(body.len() as u64, h.size);
                assert_eq!(sha256, hex::encode(Sha256::digest(&body)));
                total += h.size;
                assert!(h.size <= limits.max_file_size && total <= limits.max_total_bytes);
            }
            Ok(BodyOutcome::Changed { .. }) => {}
            Err(_) => return,
        }
    }
}
