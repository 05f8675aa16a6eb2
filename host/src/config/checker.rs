//! What every check of a config shares: the errors found so far, located
//! in the file, and the files its plugin configs embed.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, SourceMap};

/// Collects every error of one config, each at the key it blames, so one
/// pass reports them all.
pub(super) struct Checker<'a> {
    pub(super) map: &'a SourceMap,
    pub(super) errors: Vec<ConfigError>,
    pub(super) files: EmbeddedFiles,
}

/// Files whose contents plugin configs embed: a table `{ "$file" = "path" }`
/// in a plugin config becomes the file's text. Plugins have no filesystem,
/// so this is how they get key material (JWKS, PEM) and the like; the
/// files are watched for reloads with the config.
pub(super) struct EmbeddedFiles {
    pub(super) base: PathBuf,
    pub(super) read: Vec<PathBuf>,
}

impl EmbeddedFiles {
    const KEY: &'static str = "$file";

    pub(super) fn embed(&mut self, value: &mut toml::Value) -> Result<(), String> {
        match value {
            toml::Value::Table(t) if t.len() == 1 && t.contains_key(Self::KEY) => {
                let Some(toml::Value::String(rel)) = t.get(Self::KEY) else {
                    return Err(format!("{:?} must name a file", Self::KEY));
                };
                let path = self.base.join(rel);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if !self.read.contains(&path) {
                    self.read.push(path);
                }
                *value = toml::Value::String(text);
                Ok(())
            }
            toml::Value::Table(t) => t.iter_mut().try_for_each(|(_, v)| self.embed(v)),
            toml::Value::Array(a) => a.iter_mut().try_for_each(|v| self.embed(v)),
            _ => Ok(()),
        }
    }
}

impl Checker<'_> {
    pub(super) fn error<T>(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Option<T> {
        self.errors.push(ConfigError { at: self.map.locate(span, key), message: message.into() });
        None
    }

    pub(super) fn positive<T: Copy + PartialOrd + Default + std::fmt::Display>(
        &mut self,
        value: &Option<Spanned<T>>,
        key: &str,
        default: T,
    ) -> T {
        match value {
            Some(v) if *v.get_ref() <= T::default() => {
                self.error::<()>(v.span(), key, format!("must be greater than 0, got {}", v.get_ref()));
                default
            }
            Some(v) => *v.get_ref(),
            None => default,
        }
    }

    /// A positive number of milliseconds.
    pub(super) fn ms(&mut self, value: &Option<Spanned<u64>>, key: &str, default: Duration) -> Duration {
        Duration::from_millis(self.positive(value, key, default.as_millis() as u64))
    }
}
