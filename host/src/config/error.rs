//! Config errors that point at the file, line and key to fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where something was written: file, 1-based line and column, and the
/// dotted key (`routes[2].upstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: usize,
    pub column: usize,
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// Turns byte offsets of one source file into locations.
pub(crate) struct SourceMap {
    file: Arc<Path>,
    line_starts: Vec<usize>,
}

impl SourceMap {
    pub(crate) fn new(file: &Path, text: &str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { file: file.into(), line_starts }
    }

    pub(crate) fn file(&self) -> &Arc<Path> {
        &self.file
    }

    pub(crate) fn locate(&self, span: Range<usize>, key: impl Into<String>) -> Location {
        let line = self.line_starts.partition_point(|&s| s <= span.start).max(1);
        Location { file: self.file.clone(), line, column: span.start - self.line_starts[line - 1] + 1, key: key.into() }
    }
}

/// One mistake in a config, with the place it was found: displayed as
/// `file:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(crate) at: Location,
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Every problem found in one config, reported together so one edit can
/// fix them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrors {
    /// The file could not be read at all.
    #[error("cannot read config {path}: {reason}")]
    Unreadable {
        /// The config file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The file was read; these are its mistakes, in file order.
    #[error("{}", list(.0))]
    Invalid(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl ConfigErrors {
    /// The mistakes found (none when the file could not be read).
    pub fn errors(&self) -> &[ConfigError] {
        match self {
            Self::Unreadable { .. } => &[],
            Self::Invalid(errors) => errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let map = SourceMap::new(Path::new("a.toml"), "x = 1\n\ny = 2\n");
        let at = map.locate(7..8, "y");
        assert_eq!((at.line, at.column), (3, 1));
        assert_eq!(at.to_string(), "a.toml:3:1: y");
        assert_eq!(map.locate(4..5, "x").column, 5);
    }
}
