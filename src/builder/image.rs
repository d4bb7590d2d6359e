//! Assembling an image the way ko lays it out: the base's layers, a kodata
//! layer at `/var/run/ko`, optional dev-only layers, and the binary layer at
//! `/ko-app/<name>` last (so a rebuild only ever changes the top layer).
//!
//! Pure: values in, an [`Image`] out.

use bytes::Bytes;
use serde_json::{json, Value};

use super::layer::{self, Entry, EntryKind};
use crate::oci::Image;
use crate::platform::Platform;

use crate::layout::{APP_DIR, KODATA_PATH};
use crate::oci::Layer;

/// A resolved base image for one platform.
#[derive(Clone, Debug)]
pub struct BaseImage {
    /// The reference it came from (`scratch` for the empty base).
    pub reference: String,
    /// Its config file, to be extended.
    pub config: Value,
    /// Its layers, in order.
    pub layers: Vec<Layer>,
}

impl BaseImage {
    /// The empty base: no layers, an empty config.
    pub fn scratch(platform: &Platform) -> Self {
        let mut config = serde_json::json!({
            "architecture": platform.arch,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        if let Some(v) = &platform.variant {
            config["variant"] = Value::String(v.clone());
        }
        BaseImage { reference: "scratch".into(), config, layers: Vec::new() }
    }
}

/// Everything that goes into one platform's image.
pub struct ImageInputs<'a> {
    /// The base.
    pub base: &'a BaseImage,
    /// The platform.
    pub platform: &'a Platform,
    /// The binary's name (`/ko-app/<name>`).
    pub name: &'a str,
    /// The binary.
    pub binary: Bytes,
    /// Files of the package's `kodata` directory, relative to it.
    pub kodata: Vec<(String, u32, Bytes)>,
    /// Extra layers (dev mode), placed between kodata and the binary.
    pub extra_layers: Vec<Vec<Entry>>,
    /// Dev mode: `/ko-app` (and kodata's directories) are writable by any
    /// user so a new binary (or kodata file) can be renamed in whatever uid
    /// the container runs as.
    pub dev: bool,
    /// The import path, for the image history.
    pub import_path: &'a str,
    /// Labels added to the config's (a key the base has is replaced).
    pub labels: &'a [(String, String)],
    /// The user to run as, replacing the base's.
    pub user: Option<&'a str>,
}

/// The creation time written into configs: `SOURCE_DATE_EPOCH` or the epoch.
fn created(mtime: u64) -> String {
    chrono::DateTime::from_timestamp(mtime as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Builds the image.
pub fn assemble(inputs: ImageInputs<'_>) -> std::io::Result<Image> {
    let mtime = layer::layer_mtime();
    let created = created(mtime);

    let kodata_dir = KODATA_PATH.trim_start_matches('/');
    let mut kodata_entries = layer::with_parents(kodata_dir, 0o755);
    for (rel, mode, data) in inputs.kodata {
        let path = format!("{kodata_dir}/{rel}");
        if let Some((parent, _)) = path.rsplit_once('/') {
            kodata_entries.extend(layer::with_parents(parent, 0o755));
        }
        kodata_entries.push(Entry { path, mode, uid: 0, gid: 0, kind: EntryKind::File(data) });
    }
    if inputs.dev {
        // Like /ko-app: a kodata sync renames files in as the container's uid.
        for e in kodata_entries.iter_mut().filter(|e| matches!(e.kind, EntryKind::Dir)) {
            if e.path == kodata_dir || e.path.starts_with(&format!("{kodata_dir}/")) {
                e.mode = 0o777;
            }
        }
    }
    let kodata_layer = layer::build(kodata_entries, mtime)?;

    let app_dir = APP_DIR.trim_start_matches('/');
    let binary_layer = layer::build(
        vec![
            Entry::dir(app_dir, if inputs.dev { 0o777 } else { 0o755 }),
            Entry::file(&format!("{app_dir}/{}", inputs.name), 0o755, inputs.binary),
        ],
        mtime,
    )?;

    let mut layers = inputs.base.layers.clone();
    let mut history = vec![("kodata contents, at $KO_DATA_PATH".to_string(), &kodata_layer)];
    layers.push(kodata_layer.clone());
    let extra: Vec<_> = inputs.extra_layers.into_iter().map(|e| layer::build(e, mtime)).collect::<Result<_, _>>()?;
    for l in &extra {
        layers.push(l.clone());
        history.push(("gohot dev tools".into(), l));
    }
    layers.push(binary_layer.clone());
    history.push((format!("go build {}", inputs.import_path), &binary_layer));

    let mut config = inputs.base.config.clone();
    config["architecture"] = json!(inputs.platform.arch);
    config["os"] = json!(inputs.platform.os);
    match &inputs.platform.variant {
        Some(v) => config["variant"] = json!(v),
        None => {
            if let Some(o) = config.as_object_mut() {
                o.remove("variant");
            }
        }
    }
    config["created"] = json!(created);
    config["author"] = json!("gohot");
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let mut diff_ids = diff_ids;
    for (_, l) in &history {
        diff_ids.push(json!(l.diff_id));
    }
    config["rootfs"]["diff_ids"] = Value::Array(diff_ids);
    // History is optional, but when the base has it, it must keep describing
    // every layer; when it has none, adding some would make it inconsistent.
    if let Some(h) = config.get_mut("history").and_then(Value::as_array_mut) {
        for (comment, _) in &history {
            h.push(json!({"created": created, "created_by": "gohot", "comment": comment, "author": "gohot"}));
        }
    }
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let c = &mut config["config"];
    let entrypoint = format!("{APP_DIR}/{}", inputs.name);
    c["Entrypoint"] = json!([entrypoint]);
    if let Some(o) = c.as_object_mut() {
        o.remove("Cmd");
    }
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    update_path(&mut env, APP_DIR);
    if inputs.dev {
        prepend_path(&mut env, crate::layout::DEV_BIN_DIR);
    }
    env.retain(|e| !e.starts_with("KO_DATA_PATH="));
    env.push(format!("KO_DATA_PATH={KODATA_PATH}"));
    c["Env"] = json!(env);
    if !inputs.labels.is_empty() {
        if !c["Labels"].is_object() {
            c["Labels"] = json!({});
        }
        for (k, v) in inputs.labels {
            c["Labels"][k] = json!(v);
        }
    }
    if let Some(user) = inputs.user {
        c["User"] = json!(user);
    }

    let config = Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
    Ok(Image::new(inputs.platform.clone(), config, layers))
}

/// Appends `dir` to PATH (adding `PATH=<dir>` when the base has none), as ko does.
fn update_path(env: &mut Vec<String>, dir: &str) {
    for e in env.iter_mut() {
        if let Some(v) = e.strip_prefix("PATH=") {
            if !v.split(':').any(|p| p == dir) {
                *e = format!("PATH={v}:{dir}");
            }
            return;
        }
    }
    env.push(format!("PATH={dir}"));
}

/// Puts `dir` first on PATH (dev images: the helper's `tar` and `rm`
/// answer before any the base has, so syncs are atomic on every base).
fn prepend_path(env: &mut Vec<String>, dir: &str) {
    for e in env.iter_mut() {
        if let Some(v) = e.strip_prefix("PATH=") {
            let rest: Vec<&str> = v.split(':').filter(|p| *p != dir && !p.is_empty()).collect();
            *e = if rest.is_empty() { format!("PATH={dir}") } else { format!("PATH={dir}:{}", rest.join(":")) };
            return;
        }
    }
    env.push(format!("PATH={dir}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_formats_rfc3339() {
        assert_eq!(created(0), "1970-01-01T00:00:00Z");
        assert_eq!(created(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn path_is_extended_like_ko() {
        let mut env = vec!["PATH=/usr/bin:/bin".to_string()];
        update_path(&mut env, "/ko-app");
        assert_eq!(env, ["PATH=/usr/bin:/bin:/ko-app"]);
        let mut none = vec![];
        update_path(&mut none, "/ko-app");
        assert_eq!(none, ["PATH=/ko-app"]);
    }

    #[test]
    fn dev_tools_come_first_on_path() {
        let mut env = vec!["PATH=/usr/bin:/bin:/ko-app".to_string()];
        prepend_path(&mut env, "/var/run/gohot/bin");
        prepend_path(&mut env, "/var/run/gohot/bin");
        assert_eq!(env, ["PATH=/var/run/gohot/bin:/usr/bin:/bin:/ko-app"]);
        let mut none = vec![];
        prepend_path(&mut none, "/var/run/gohot/bin");
        assert_eq!(none, ["PATH=/var/run/gohot/bin"]);
    }

    #[test]
    fn scratch_image_has_ko_layout() {
        let p = Platform::linux("amd64");
        let base = BaseImage::scratch(&p);
        let img = assemble(ImageInputs {
            base: &base,
            platform: &p,
            name: "hello",
            binary: Bytes::from_static(b"\x7fELF"),
            kodata: vec![("index.html".into(), 0o644, Bytes::from_static(b"hi"))],
            extra_layers: vec![],
            dev: false,
            import_path: "example.com/hello",
            labels: &[],
            user: None,
        })
        .unwrap();
        let cfg: Value = serde_json::from_slice(&img.config).unwrap();
        assert_eq!(cfg["config"]["Entrypoint"], json!(["/ko-app/hello"]));
        assert_eq!(cfg["config"]["Env"], json!(["PATH=/ko-app", "KO_DATA_PATH=/var/run/ko"]));
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(img.layers.len(), 2);
        let again = assemble(ImageInputs {
            base: &base,
            platform: &p,
            name: "hello",
            binary: Bytes::from_static(b"\x7fELF"),
            kodata: vec![("index.html".into(), 0o644, Bytes::from_static(b"hi"))],
            extra_layers: vec![],
            dev: false,
            import_path: "example.com/hello",
            labels: &[],
            user: None,
        })
        .unwrap();
        assert_eq!(img.digest(), again.digest());
    }
}
