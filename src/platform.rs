//! Target platforms (`linux/amd64`, `linux/arm/v7`) as Go and OCI name them.

use std::fmt;
use std::str::FromStr;

/// An OS/architecture pair, with an optional variant (`arm/v7`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, as GOOS names it (`linux`).
    pub os: String,
    /// Architecture, as GOARCH names it (`amd64`, `arm64`).
    pub arch: String,
    /// Architecture variant (`v7` for `arm/v7`), if any.
    pub variant: Option<String>,
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64")]
pub struct PlatformParseError(pub String);

impl Platform {
    /// `linux/<arch>` for the given GOARCH.
    pub fn linux(arch: &str) -> Self {
        Platform { os: "linux".into(), arch: arch.into(), variant: None }
    }

    /// Linux on the architecture of the machine gohot runs on.
    pub fn host_linux() -> Self {
        Self::linux(goarch_of(std::env::consts::ARCH))
    }

    /// Path segment used in ko's cache layout: `linux/amd64` or `linux/arm/v7`.
    pub fn cache_path(&self) -> String {
        self.to_string()
    }

    /// Whether an OCI index entry's platform fields describe this platform.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.arch == arch
            && match (&self.variant, variant) {
                (None, _) => true,
                (Some(a), Some(b)) => a == b,
                (Some(_), None) => false,
            }
    }
}

/// Maps Rust's `std::env::consts::ARCH` to Go's GOARCH.
pub fn goarch_of(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let ok = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform { os: (*os).into(), arch: (*arch).into(), variant: None }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
                Ok(Platform { os: (*os).into(), arch: (*arch).into(), variant: Some((*v).into()) })
            }
            _ => Err(PlatformParseError(s.into())),
        }
    }
}

/// Parses a comma-separated platform list (`linux/amd64,linux/arm64`).
pub fn parse_list(s: &str) -> Result<Vec<Platform>, PlatformParseError> {
    let mut out: Vec<Platform> = Vec::new();
    for p in s.split(',').filter(|p| !p.trim().is_empty()) {
        let p: Platform = p.parse()?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(PlatformParseError(s.into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_platforms() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/../x".parse::<Platform>().is_err());
        let list = parse_list("linux/amd64, linux/arm64,linux/amd64").unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn variant_matching() {
        let arm: Platform = "linux/arm/v7".parse().unwrap();
        assert!(arm.matches("linux", "arm", Some("v7")));
        assert!(!arm.matches("linux", "arm", Some("v6")));
        assert!(Platform::linux("arm64").matches("linux", "arm64", Some("v8")));
    }
}
