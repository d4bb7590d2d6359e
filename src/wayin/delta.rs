//! The delta codec (bsdiff's control loop with hash-table seeds instead of a
//! suffix array, so that indexing a 13 MB binary takes milliseconds).
use super::WayInError;
use std::io::BufRead;

/// Bytes hashed to find a seed match.
const SEED: usize = 16;
/// The old content is indexed every STEP bytes (a match of at least
/// SEED + STEP - 1 bytes is always found; measured on Go binaries, 16
/// compresses as well as 4 or 8 and keeps the table cache-friendly).
const STEP: usize = 16;
/// In a region without matches, the distance between lookups grows by
/// one every ACCEL misses (like LZ4's acceleration). Uncapped on purpose:
/// measured on Go binaries, capping it (at 32) made deltas 50% larger,
/// because extra lookups in new code mostly find short coincidental
/// matches that break a good approximate alignment.
const ACCEL: usize = 16;
/// An approximate extension stops once its score (matches minus
/// mismatches) is this far below its best: walking on across a region
/// that does not match under this alignment only costs time (bsdiff
/// walks the whole gap).
const GIVE_UP: isize = 512;
/// Bytes compared before trusting the current alignment without a lookup.
const QUICK: usize = 8;

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

#[inline]
fn seed_hash(b: &[u8], i: usize, shift: u32) -> usize {
    let x = word(b, i).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ word(b, i + 8);
    (x.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> shift) as usize
}

/// Length of the common prefix of `a` and `b`.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = word(a, i) ^ word(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Number of positions where `a` and `b` hold the same byte.
#[inline]
fn count_equal(a: &[u8], b: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let n = a.len().min(b.len());
    let (mut c, mut i) = (0usize, 0usize);
    while i + 8 <= n {
        let x = word(a, i) ^ word(b, i);
        // high bit of each byte set iff that byte of x is zero
        let z = !(((x & LOW7) + LOW7) | x | LOW7);
        c += z.count_ones() as usize;
        i += 8;
    }
    c + a[i..n].iter().zip(&b[i..n]).filter(|(x, y)| x == y).count()
}

/// Where 16-byte seeds of one content start (every STEP bytes): built once
/// for a binary, it serves the delta from that binary to the next one, so a
/// reload can have it built before the save that needs it.
pub struct SeedIndex {
    table: Vec<u32>,
    shift: u32,
    /// The indexed content's length (an index fits only its content).
    len: usize,
}

impl SeedIndex {
    /// Indexes `old`.
    pub fn build(old: &[u8]) -> Self {
        let slots = (old.len() / STEP).max(1).next_power_of_two().clamp(1 << 10, 1 << 24);
        let bits = slots.trailing_zeros();
        let mut table = vec![0u32; slots];
        let shift = 64 - bits;
        if old.len() >= SEED && old.len() < u32::MAX as usize {
            let mut i = 0;
            while i + SEED <= old.len() {
                let h = seed_hash(old, i, shift);
                if table[h] == 0 {
                    table[h] = i as u32 + 1;
                }
                i += STEP;
            }
        }
        SeedIndex { table, shift, len: old.len() }
    }
}

struct Index<'a> {
    old: &'a [u8],
    seeds: &'a SeedIndex,
}

impl Index<'_> {
    /// A match of at least SEED bytes for `new[scan..]`: (old pos, len).
    #[inline]
    fn search(&self, new: &[u8], scan: usize) -> Option<(usize, usize)> {
        if scan + SEED > new.len() {
            return None;
        }
        let c = self.seeds.table[seed_hash(new, scan, self.seeds.shift)];
        if c == 0 {
            return None;
        }
        let pos = c as usize - 1;
        let len = common_prefix(&self.old[pos..], &new[scan..]);
        (len >= SEED).then_some((pos, len))
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Equal bytes that end a run of differences: fewer stay inside it (a run's
/// two lengths cost more than a few zero differences, which gzip squeezes).
const SAME_BREAK: usize = 8;

/// The add region `new` against `old` (same length) as runs: bytes equal to
/// the base's (only counted), then differences (each sent). Most of a
/// moved block is unchanged, so most of its bytes cost nothing here and
/// nothing to compress or decompress — the records of a reload are tens of
/// kilobytes, not the binary's size.
fn put_add_runs(out: &mut Vec<u8>, new: &[u8], old: &[u8]) {
    let len = new.len();
    let mut i = 0;
    while i < len {
        let same_start = i;
        while i + 8 <= len && word(new, i) == word(old, i) {
            i += 8;
        }
        while i < len && new[i] == old[i] {
            i += 1;
        }
        let diff_start = i;
        while i < len {
            if new[i] != old[i] {
                i += 1;
                continue;
            }
            let equal = new[i..].iter().zip(&old[i..]).take(SAME_BREAK).take_while(|(a, b)| a == b).count();
            if equal == SAME_BREAK || i + equal == len {
                break;
            }
            i += equal;
        }
        put_uvarint(out, (diff_start - same_start) as u64);
        put_uvarint(out, (i - diff_start) as u64);
        out.extend(new[diff_start..i].iter().zip(&old[diff_start..i]).map(|(a, b)| a.wrapping_sub(*b)));
    }
}

struct Emitter<'a> {
    old: &'a [u8],
    new: &'a [u8],
    out: Vec<u8>,
    cursor: usize,
    literal: usize,
}

impl Emitter<'_> {
    /// add `add_len` bytes at new[nstart..] against old[ostart..], then literal new[nstart+add_len..lit_end].
    fn record(&mut self, nstart: usize, ostart: usize, add_len: usize, lit_end: usize) {
        let lit = &self.new[nstart + add_len..lit_end];
        if add_len == 0 && lit.is_empty() {
            return;
        }
        let seek = if add_len > 0 { ostart as i64 - self.cursor as i64 } else { 0 };
        put_varint(&mut self.out, seek);
        put_uvarint(&mut self.out, add_len as u64);
        put_uvarint(&mut self.out, lit.len() as u64);
        if add_len > 0 {
            let o = &self.old[ostart..ostart + add_len];
            let n = &self.new[nstart..nstart + add_len];
            put_add_runs(&mut self.out, n, o);
            self.cursor = ostart + add_len;
        }
        self.out.extend_from_slice(lit);
        self.literal += lit.len();
    }
}

/// Encodes the records turning `old` into `new` (uncompressed), with
/// `old`'s seeds (indexed again when `seeds` is not an index of content of
/// `old`'s length); also returns how many of `new`'s bytes are literals.
pub(super) fn encode_indexed(seeds: &SeedIndex, old: &[u8], new: &[u8]) -> (Vec<u8>, usize) {
    let own;
    let seeds = if seeds.len == old.len() {
        seeds
    } else {
        own = SeedIndex::build(old);
        &own
    };
    let index = Index { old, seeds };
    let mut misses = 0usize;
    let (n_old, n_new) = (old.len(), new.len());
    let mut em = Emitter { old, new, out: Vec::with_capacity(n_new / 2 + 64), cursor: 0, literal: 0 };
    let aligned = |scan: usize, off: isize| -> Option<usize> {
        let p = scan as isize + off;
        (p >= 0 && (p as usize) < n_old).then_some(p as usize)
    };
    let (mut scan, mut len, mut pos) = (0usize, 0usize, 0usize);
    let (mut lastscan, mut lastpos, mut lastoffset) = (0usize, 0usize, 0isize);
    while scan < n_new {
        let mut oldscore: isize = 0;
        scan += len;
        let mut scsc = scan;
        while scan < n_new {
            // Continuing the current alignment needs no lookup.
            let quick = aligned(scan, lastoffset).filter(|&p| {
                p + QUICK <= n_old && scan + QUICK <= n_new && old[p..p + QUICK] == new[scan..scan + QUICK]
            });
            (pos, len) = match quick {
                Some(p) => (p, common_prefix(&old[p..], &new[scan..])),
                None => index.search(new, scan).unwrap_or((0, 0)),
            };
            // oldscore: bytes of [scan, scsc) that match under the current alignment.
            if scsc < scan + len {
                let end = scan + len;
                if quick.is_some() {
                    oldscore += (end - scsc) as isize;
                } else {
                    let lo = (scsc as isize).max(-lastoffset);
                    let hi = (end as isize).min(n_old as isize - lastoffset);
                    if lo < hi {
                        let (lo, hi) = (lo as usize, hi as usize);
                        let o = (lo as isize + lastoffset) as usize;
                        oldscore += count_equal(&old[o..o + (hi - lo)], &new[lo..hi]) as isize;
                    }
                }
                scsc = end;
            }
            let l = len as isize;
            if (l == oldscore && len != 0) || l > oldscore + 8 {
                break;
            }
            // In a region without matches, look up less and less often
            // (matches found later are extended backwards anyway).
            let skip = if len == 0 {
                misses += 1;
                1 + misses / ACCEL
            } else {
                misses = 0;
                1
            };
            for _ in 0..skip {
                if scan >= n_new {
                    break;
                }
                if scan >= scsc {
                    scsc = scan + 1;
                } else if aligned(scan, lastoffset).is_some_and(|p| old[p] == new[scan]) {
                    oldscore -= 1;
                }
                scan += 1;
            }
        }
        if len as isize != oldscore || scan == n_new {
            // Extend the previous match forwards, approximately.
            // (8 equal bytes at a time: the score only rises inside such
            // a run, so its best point is the run's end.)
            let (mut s, mut sf, mut lenf) = (0isize, 0isize, 0usize);
            let limit = (scan - lastscan).min(n_old - lastpos);
            let mut i = 0usize;
            while i < limit {
                if i + 8 <= limit && word(old, lastpos + i) == word(new, lastscan + i) {
                    s += 8;
                    i += 8;
                } else {
                    if old[lastpos + i] == new[lastscan + i] {
                        s += 1;
                    }
                    i += 1;
                }
                let (score, best) = (s * 2 - i as isize, sf * 2 - lenf as isize);
                if score > best {
                    sf = s;
                    lenf = i;
                } else if best - score > GIVE_UP {
                    break;
                }
            }
            // Extend the new match backwards, approximately.
            let mut lenb = 0usize;
            if scan < n_new {
                let (mut s, mut sb) = (0isize, 0isize);
                let limit = (scan - lastscan).min(pos);
                let mut i = 0usize; // bytes examined so far
                while i < limit {
                    if i + 8 <= limit && word(old, pos - i - 8) == word(new, scan - i - 8) {
                        s += 8;
                        i += 8;
                    } else {
                        i += 1;
                        if old[pos - i] == new[scan - i] {
                            s += 1;
                        }
                    }
                    let (score, best) = (s * 2 - i as isize, sb * 2 - lenb as isize);
                    if score > best {
                        sb = s;
                        lenb = i;
                    } else if best - score > GIVE_UP {
                        break;
                    }
                }
            }
            // Split an overlap where it scores best.
            if lastscan + lenf > scan - lenb {
                let overlap = (lastscan + lenf) - (scan - lenb);
                let (mut s, mut ss, mut lens) = (0isize, 0isize, 0usize);
                for i in 0..overlap {
                    if new[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i] {
                        s += 1;
                    }
                    if new[scan - lenb + i] == old[pos - lenb + i] {
                        s -= 1;
                    }
                    if s > ss {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf = lenf + lens - overlap;
                lenb -= lens;
            }
            em.record(lastscan, lastpos, lenf, scan - lenb);
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos as isize - scan as isize;
        }
    }
    (em.out, em.literal)
}

fn uvarint<R: BufRead>(r: &mut R) -> Result<u64, WayInError> {
    let mut x = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(corrupt)?;
        let b = b[0];
        if i == 9 && b > 1 {
            break;
        }
        x |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(x);
        }
    }
    Err(WayInError::BadPayload("varint overflows 64 bits".into()))
}

fn corrupt(e: std::io::Error) -> WayInError {
    WayInError::BadPayload(format!("corrupt or truncated delta: {e}"))
}

/// Applies records from `r` to `base`, producing exactly `size` bytes.
pub(super) fn apply<R: BufRead>(r: &mut R, base: &[u8], size: usize) -> Result<Vec<u8>, WayInError> {
    let bad = |m: &str| WayInError::BadPayload(m.to_string());
    let mut out = Vec::with_capacity(size.min(64 << 20));
    let mut cursor = 0usize;
    while out.len() < size {
        let z = uvarint(r)?;
        let seek = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let add = uvarint(r)?;
        let lit = uvarint(r)?;
        let room = (size - out.len()) as u64;
        if add > room || lit > room - add {
            return Err(bad("delta record writes past the announced size"));
        }
        if add == 0 && lit == 0 {
            return Err(bad("delta record produces nothing"));
        }
        let c = cursor as i64;
        if (seek < 0 && seek.unsigned_abs() > cursor as u64) || (seek > 0 && seek > base.len() as i64 - c) {
            return Err(bad("delta seeks outside the base"));
        }
        cursor = (c + seek) as usize;
        let (add, lit) = (add as usize, lit as usize);
        if add > base.len() - cursor {
            return Err(bad("delta reads past the end of the base"));
        }
        let end = cursor + add;
        while cursor < end {
            let same = uvarint(r)?;
            let diff = uvarint(r)?;
            let left = (end - cursor) as u64;
            if same > left || diff > left - same {
                return Err(bad("delta run covers more than its record's add length"));
            }
            if same == 0 && diff == 0 {
                return Err(bad("delta run covers nothing"));
            }
            let (same, diff) = (same as usize, diff as usize);
            out.extend_from_slice(&base[cursor..cursor + same]);
            cursor += same;
            let start = out.len();
            out.resize(start + diff, 0);
            r.read_exact(&mut out[start..]).map_err(corrupt)?;
            for (d, o) in out[start..].iter_mut().zip(&base[cursor..cursor + diff]) {
                *d = d.wrapping_add(*o);
            }
            cursor += diff;
        }
        let start = out.len();
        out.resize(start + lit, 0);
        r.read_exact(&mut out[start..]).map_err(corrupt)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::wayin::noise;

    fn roundtrip(old: &[u8], new: &[u8]) -> usize {
        let p = crate::wayin::encode_delta(old, new);
        let got =
            crate::wayin::decode_payload(Some(old), &p, crate::wayin::DEFAULT_MAX_PAYLOAD_SIZE).expect("delta decodes");
        assert_eq!(got, new);
        let f = crate::wayin::encode_full(new);
        assert_eq!(
            crate::wayin::decode_payload(None, &f, crate::wayin::DEFAULT_MAX_PAYLOAD_SIZE).expect("full decodes"),
            new
        );
        p.len()
    }

    /// An index built ahead for the base gives the records a fresh one
    /// gives; one of other content's length is not trusted (built again),
    /// so a stale index cannot point outside the base.
    #[test]
    fn records_from_an_index_built_ahead_match_and_a_stale_one_is_not_used() {
        use super::{encode_indexed, SeedIndex};
        let old = noise(200_000, 3);
        let mut new = old.clone();
        new[100_000..100_016].copy_from_slice(b"a changed string");
        new.splice(50_000..50_000, noise(300, 4));
        let ahead = SeedIndex::build(&old);
        let fresh = encode_indexed(&SeedIndex::build(&old), &old, &new);
        assert_eq!(encode_indexed(&ahead, &old, &new), fresh);
        let stale = SeedIndex::build(&noise(400_000, 5));
        assert_eq!(encode_indexed(&stale, &old, &new), fresh);
        assert!(fresh.0.len() < 2_000, "a small edit makes small records: {}", fresh.0.len());
    }

    #[test]
    fn delta_roundtrips_edge_cases() {
        roundtrip(b"", b"");
        roundtrip(b"", b"hello");
        roundtrip(b"hello", b"");
        roundtrip(b"hello world", b"hello world");
        roundtrip(b"abc", b"abcd");
        let a = noise(100_000, 1);
        roundtrip(&a, &a);
        roundtrip(&a, &noise(50_000, 2));
        roundtrip(&a[..1000], &a);
        roundtrip(&a, &a[..1000]);
        // repetitive content (padding-like) and reversed blocks
        let rep = vec![0xCCu8; 70_000];
        roundtrip(&rep, &[&rep[..30_000], b"x", &rep[..]].concat());
        let mut rev = a.clone();
        rev.reverse();
        roundtrip(&a, &rev);
    }

    #[test]
    fn delta_roundtrips_random_edits() {
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n.max(1) as u64) as usize
        };
        for round in 0..300 {
            let len = [0, 1, 7, 15, 16, 17, 31, 100, 5000, 70_000][round % 10];
            let mut old = noise(len, round as u64 + 1);
            if round % 3 == 0 {
                // repetitive content, like padding in binaries
                for (i, b) in old.iter_mut().enumerate() {
                    *b = (i % 7) as u8;
                }
            }
            let mut new = old.clone();
            for _ in 0..next(8) {
                let at = next(new.len() + 1);
                match next(4) {
                    0 => {
                        let ins = noise(next(40), round as u64 * 31 + 7);
                        new.splice(at..at, ins);
                    }
                    1 => {
                        let end = (at + next(200)).min(new.len());
                        new.drain(at..end);
                    }
                    2 if at < new.len() => new[at] = new[at].wrapping_add(1),
                    _ => {
                        // copy a block from elsewhere (moved code)
                        let from = next(old.len() + 1);
                        let end = (from + next(3000)).min(old.len());
                        new.splice(at..at, old[from..end].iter().copied());
                    }
                }
            }
            roundtrip(&old, &new);
        }
    }

    #[test]
    fn delta_of_moved_and_patched_blocks_is_small() {
        let a = noise(400_000, 7);
        // move blocks around, insert a little, patch scattered bytes (like shifted addresses)
        let mut b = Vec::new();
        b.extend_from_slice(&a[200_000..300_000]);
        b.extend_from_slice(b"a new string literal");
        b.extend_from_slice(&a[..200_000]);
        b.extend_from_slice(&a[300_000..]);
        for i in (0..b.len()).step_by(97) {
            b[i] = b[i].wrapping_add(3);
        }
        let size = roundtrip(&a, &b);
        assert!(size < b.len() / 10, "delta {size} bytes for {} bytes", b.len());
    }
}
