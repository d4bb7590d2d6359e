//! SBOMs as ko makes them (`--sbom=spdx`, ko's default): an SPDX 2.3 JSON
//! document per image, from the binary's build information (`go version -m`):
//! the image, the main module it contains, and every module dependency with
//! its version and `go.sum` hash. The registry publisher pushes it beside
//! the image under cosign's tag, `sha256-<image digest hex>.sbom`, with
//! media type `text/spdx+json` — where `cosign download sbom` finds it;
//! `--sbom-dir` also writes it to a directory (`crate::publish::sbom_dir`).
//!
//! Pure: text in, bytes out. The document's time is the image config's
//! `created`, so the same image always gets the same SBOM.

use serde_json::{json, Value};

/// The layer media type of an SPDX JSON SBOM.
pub const SPDX_MEDIA_TYPE: &str = "text/spdx+json";

/// A module from `go version -m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Version (`(devel)` for the main module of a local build).
    pub version: String,
    /// `go.sum`'s `h1:` hash, if any.
    pub sum: Option<String>,
}

/// What `go version -m` says about a binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The Go version that built it (`go1.27`).
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module.
    pub main: Option<Module>,
    /// Module dependencies (after `=>` replacements).
    pub deps: Vec<Module>,
}

/// Parses `go version -m BINARY`'s output.
pub fn parse_version_m(text: &str) -> BuildInfo {
    let mut info = BuildInfo::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).filter(|f| !f.is_empty()).collect();
        match fields.as_slice() {
            [first] if !line.starts_with('\t') => {
                info.go_version = first.rsplit(": ").next().unwrap_or("").to_string();
            }
            ["path", path, ..] => info.path = path.to_string(),
            ["mod", path, version, rest @ ..] => {
                info.main = Some(Module { path: path.to_string(), version: version.to_string(), sum: sum(rest) })
            }
            ["dep", path, version, rest @ ..] => {
                info.deps.push(Module { path: path.to_string(), version: version.to_string(), sum: sum(rest) })
            }
            ["=>", path, version, rest @ ..] => {
                if let Some(last) = info.deps.last_mut() {
                    *last = Module { path: path.to_string(), version: version.to_string(), sum: sum(rest) };
                }
            }
            _ => {}
        }
    }
    info
}

fn sum(rest: &[&str]) -> Option<String> {
    rest.first().filter(|s| s.starts_with("h1:")).map(|s| s.to_string())
}

/// `h1:<base64 of a SHA-256>` → its hex, as SPDX checksums want it.
fn h1_to_sha256(sum: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(sum.strip_prefix("h1:")?).ok()?;
    (raw.len() == 32).then(|| hex::encode(raw))
}

/// An SPDX identifier: letters, digits, `.` and `-` only.
fn spdx_id(kind: &str, name: &str, version: &str) -> String {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect::<String>();
    format!("SPDXRef-{kind}-{}-{}", clean(name), clean(version))
}

fn module_package(m: &Module) -> Value {
    let mut p = json!({
        "SPDXID": spdx_id("Package", &m.path, &m.version),
        "name": m.path,
        "versionInfo": m.version,
        "downloadLocation": format!("https://proxy.golang.org/{}/@v/{}.zip", m.path, m.version),
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:golang/{}@{}?type=module", m.path, m.version),
        }],
    });
    if m.version == "(devel)" {
        p["downloadLocation"] = json!("NOASSERTION");
    }
    if let Some(hex) = m.sum.as_deref().and_then(h1_to_sha256) {
        p["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
    }
    p
}

/// The SPDX 2.3 document of an image (`image_digest`, `sha256:…`, of media
/// type `media_type`, created at `created`) whose binary has `info`.
pub fn spdx(info: &BuildInfo, image_digest: &str, media_type: &str, created: &str, tool: &str) -> Vec<u8> {
    let image_id = format!("SPDXRef-Package-image-{}", image_digest.trim_start_matches("sha256:"));
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": image_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/image@{image_digest}?mediaType={}", media_type.replace('+', "%2B")),
        }],
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}),
    ];
    let main = info.main.clone().unwrap_or(Module { path: info.path.clone(), version: "(devel)".into(), sum: None });
    let main_id = spdx_id("Package", &main.path, &main.version);
    packages.push(module_package(&main));
    relationships
        .push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": main_id}));
    for dep in &info.deps {
        packages.push(module_package(dep));
        relationships.push(json!({
            "spdxElementId": main_id,
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": spdx_id("Package", &dep.path, &dep.version),
        }));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("sbom-{image_digest}"),
        "documentNamespace": format!("https://spdx.org/spdxdocs/gohot/{image_digest}"),
        "creationInfo": {"created": created, "creators": [format!("Tool: {tool}")], "comment": info.go_version},
        "packages": packages,
        "relationships": relationships,
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

/// The SPDX document of a built image whose binary's `go version -m` is
/// `build_info`, dated by the image config's `created`.
pub fn image_spdx(img: &crate::oci::Image, build_info: &str) -> Vec<u8> {
    let tool = concat!("gohot-", env!("CARGO_PKG_VERSION"));
    spdx(&parse_version_m(build_info), &img.digest(), crate::oci::MEDIA_MANIFEST, &image_created(img), tool)
}

/// The image config's `created` (the epoch when it has none).
pub fn image_created(img: &crate::oci::Image) -> String {
    let config: Value = serde_json::from_slice(&img.config).unwrap_or_default();
    config["created"].as_str().unwrap_or("1970-01-01T00:00:00Z").to_string()
}

/// Cosign's tag for an attachment of the image with `digest`.
pub fn sbom_tag(digest: &str) -> String {
    format!("{}.sbom", digest.replacen(':', "-", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "/cache/out: go1.27.0\n\tpath\texample.com/app\n\tmod\texample.com/app\t(devel)\t\n\
        \tdep\tgolang.org/x/text\tv0.3.0\th1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg=\n\
        \tdep\texample.com/lib\tv1.0.0\n\t=>\t../lib\t(devel)\t\n\tbuild\tCGO_ENABLED=0\n";

    #[test]
    fn parses_go_version_m() {
        let info = parse_version_m(OUT);
        assert_eq!(info.go_version, "go1.27.0");
        assert_eq!(info.path, "example.com/app");
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[0].sum.as_deref(), Some("h1:g61tztE5qeGQ89tm6NTjjM9VPIm088od1l6aSorWRWg="));
        assert_eq!(info.deps[1], Module { path: "../lib".into(), version: "(devel)".into(), sum: None });
    }

    #[test]
    fn spdx_document_names_image_module_and_dependencies() {
        let doc = spdx(
            &parse_version_m(OUT),
            "sha256:ab",
            "application/vnd.oci.image.manifest.v1+json",
            "1970-01-01T00:00:00Z",
            "gohot-0",
        );
        let v: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(v["spdxVersion"], "SPDX-2.3");
        let names: Vec<&str> = v["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["sha256:ab", "example.com/app", "golang.org/x/text", "../lib"]);
        assert_eq!(v["packages"][2]["checksums"][0]["checksumValue"].as_str().unwrap().len(), 64);
        for p in v["packages"].as_array().unwrap() {
            let id = p["SPDXID"].as_str().unwrap();
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'), "{id}");
        }
        assert_eq!(v["relationships"].as_array().unwrap().len(), 4);
        assert_eq!(sbom_tag("sha256:ab"), "sha256-ab.sbom");
    }
}
