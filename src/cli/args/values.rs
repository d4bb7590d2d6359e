//! Parsers for flag values shared by several commands.

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

/// `500ms`, `2s`, `1.5m`, `1h` or plain seconds: one parser for every duration flag.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 500ms, 2s, 5m or 1h");
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs > 366.0 * 86_400.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `KEY=VALUE` for `--image-label`.
pub(super) fn parse_label(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("--image-label {s:?}: write KEY=VALUE, e.g. org.opencontainers.image.source=https://…")),
    }
}

/// `--insecure-registry[=BOOL]`: ko's switch. A host after it is the old
/// gohot form (a list of hosts), refused with the way to write it now.
pub(super) fn parse_insecure(s: &str) -> std::result::Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!(
            "--insecure-registry is a switch, as in ko (for the destination registry), and takes no registry: \
             write `--insecure-registry` (or `--insecure-registry=true`) without {other:?}; loopback registries \
             need no flag. To build a package right after it, write `--insecure-registry=true PKG`"
        )),
    }
}

/// A polling interval: a duration from 50ms to 24h.
pub(super) fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if !(0.05..=86_400.0).contains(&d.as_secs_f64()) {
        return Err(format!("interval {s:?} out of range (50ms to 24h)"));
    }
    Ok(d)
}
