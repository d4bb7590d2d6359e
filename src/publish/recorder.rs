//! `--image-refs FILE`: a wrapper that writes every reference the wrapped
//! publisher returns to a file, one per line, as ko's `recorder.go` does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Publish, PublishError};
use crate::builder::Built;

/// Records references on the way out.
pub struct Recorder {
    inner: Box<dyn Publish>,
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Recorder {
    /// Wraps `inner`, creating (truncating) `path`.
    pub fn create(inner: Box<dyn Publish>, path: &Path) -> Result<Self, PublishError> {
        let file = std::fs::File::create(path).map_err(|source| PublishError::Io { path: path.into(), source })?;
        Ok(Recorder { inner, path: path.into(), file: Mutex::new(file) })
    }
}

#[async_trait]
impl Publish for Recorder {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let reference = self.inner.publish(built).await?;
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(file, "{reference}")
            .and_then(|_| file.flush())
            .map_err(|source| PublishError::Io { path: self.path.clone(), source })?;
        Ok(reference)
    }
}
