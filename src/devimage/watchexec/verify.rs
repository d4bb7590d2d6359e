//! What a downloaded watchexec release must pass before it is kept: its
//! checksum line, an archive with nothing hostile in it, and a static ELF for
//! the container's architecture.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{Result, WatchexecError, BINARY_NAME, XZ_MEM_LIMIT_KB};

/// The sha256 `SHA256SUMS` lists for `asset`: `Err(false)` if none, `Err(true)` if conflicting.
///
/// Accepts `sha256sum` output in text (`<hex>  <name>`) and binary (`<hex> *<name>`) mode.
pub(super) fn checksum_for(sums: &str, asset: &str) -> std::result::Result<String, bool> {
    let mut found: Option<String> = None;
    for line in sums.lines() {
        let Some((hash, rest)) = line.trim_end_matches('\r').split_once(' ') else {
            continue;
        };
        let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*')).unwrap_or(rest);
        if name != asset || !is_sha256_hex(hash) {
            continue;
        }
        let hash = hash.to_ascii_lowercase();
        match &found {
            Some(prev) if *prev != hash => return Err(true),
            _ => found = Some(hash),
        }
    }
    found.ok_or(false)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Take the one `<top>/watchexec` regular file out of a tar.xz, refusing hostile archives.
pub(super) fn extract_binary(archive: &[u8], asset: &str, top: &str, max: u64) -> Result<Vec<u8>> {
    let unpack_err = |source| WatchexecError::Unpack { asset: asset.to_owned(), source };
    let hostile = |entry: &[u8], reason| WatchexecError::HostileArchive {
        asset: asset.to_owned(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        reason,
    };
    let xz = lzma_rust2::XzReader::new_mem_limit(archive, false, XZ_MEM_LIMIT_KB);
    let mut tar = tar::Archive::new(xz);
    let want = Path::new(top).join(BINARY_NAME);
    let mut binary: Option<Vec<u8>> = None;
    // Other entries are read through (not kept); cap their total size so that a small
    // archive cannot make us decompress gigabytes of padding.
    let total_limit = max.saturating_mul(4);
    let mut total: u64 = 0;
    for entry in tar.entries().map_err(unpack_err)? {
        let mut entry = entry.map_err(unpack_err)?;
        let raw = entry.path_bytes().into_owned();
        let path = entry.path().map_err(unpack_err)?.into_owned();
        let mut clean = PathBuf::new();
        for comp in path.components() {
            match comp {
                Component::Normal(c) => clean.push(c),
                Component::CurDir => {}
                Component::ParentDir => return Err(hostile(&raw, "contains '..'")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(hostile(&raw, "is an absolute path"));
                }
            }
        }
        let kind = entry.header().entry_type();
        if let Some(link) = entry.link_name_bytes() {
            let target = Path::new(std::str::from_utf8(&link).unwrap_or(".."));
            if kind.is_symlink() || kind.is_hard_link() {
                if target.is_absolute() {
                    return Err(hostile(&raw, "is a link to an absolute path"));
                }
                if target.components().any(|c| c == Component::ParentDir) {
                    return Err(hostile(&raw, "is a link that contains '..'"));
                }
            }
        }
        if clean != want {
            total = total.saturating_add(entry.size());
            if total > total_limit {
                return Err(hostile(&raw, "makes the archive unpack to more than 4x the binary size limit"));
            }
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(hostile(&raw, "is a link where the watchexec binary should be"));
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(hostile(&raw, "is not a regular file"));
        }
        if binary.is_some() {
            return Err(hostile(&raw, "appears twice"));
        }
        let what = format!("{} in {asset}", want.display());
        let size = entry.size();
        if size > max {
            return Err(WatchexecError::BinaryTooLarge { what, size, limit: max });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut entry).take(max.saturating_add(1)).read_to_end(&mut data).map_err(unpack_err)?;
        if data.len() as u64 > max {
            return Err(WatchexecError::BinaryTooLarge { what, size: data.len() as u64, limit: max });
        }
        binary = Some(data);
    }
    binary
        .ok_or_else(|| WatchexecError::MissingBinary { asset: asset.to_owned(), expected: want.display().to_string() })
}

/// Check that `bin` is a little-endian ELF executable for `goarch` with no program interpreter.
pub(super) fn check_elf(bin: &[u8], goarch: &str, what: &str) -> Result<()> {
    let not_elf = |reason| WatchexecError::NotElf { what: what.to_owned(), reason };
    if bin.len() < 64 || &bin[..4] != b"\x7fELF" {
        return Err(not_elf("no ELF header"));
    }
    if bin[5] != 1 {
        return Err(not_elf("not little-endian"));
    }
    let u16_at = |o: usize| bin.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| bin.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at =
        |o: usize| bin.get(o..o + 8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    let elf64 = match bin[4] {
        1 => false,
        2 => true,
        _ => return Err(not_elf("unknown ELF class")),
    };
    let e_type = u16_at(16).ok_or_else(|| not_elf("truncated header"))?;
    if e_type != 2 && e_type != 3 {
        return Err(not_elf("not an executable"));
    }
    let machine = u16_at(18).ok_or_else(|| not_elf("truncated header"))?;
    let want = match goarch {
        "amd64" => 62,
        "arm64" => 183,
        "386" => 3,
        "arm" => 40,
        "riscv64" => 243,
        "ppc64le" => 21,
        "s390x" => 22,
        _ => 0,
    };
    if want != 0 && machine != want {
        let found = match machine {
            62 => "x86_64".to_owned(),
            183 => "aarch64".to_owned(),
            3 => "i386".to_owned(),
            40 => "arm".to_owned(),
            243 => "riscv64".to_owned(),
            other => format!("ELF machine {other}"),
        };
        return Err(WatchexecError::WrongMachine { what: what.to_owned(), found, goarch: goarch.to_owned() });
    }
    let (phoff, phentsize, phnum) = if elf64 {
        (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    } else {
        (u32_at(0x1c).map(u64::from), u16_at(0x2a), u16_at(0x2c))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Err(not_elf("truncated header"));
    };
    for i in 0..u64::from(phnum) {
        let off = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| not_elf("bad program header table"))?;
        let p_type = u32_at(off).ok_or_else(|| not_elf("truncated program header table"))?;
        const PT_INTERP: u32 = 3;
        if p_type == PT_INTERP {
            return Err(WatchexecError::DynamicBinary { what: what.to_owned() });
        }
    }
    Ok(())
}
