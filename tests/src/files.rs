//! File edits as operators make them, and variants of a plugin component.

use std::path::Path;

use crate::plugins::FIXTURE_VERSION_STAMP;

/// The version string baked into the version-stamp fixture.
pub const STAMP_V1: &str = "stamp-v0000001";

/// The version-stamp component with its version string replaced (same
/// length): a different component, as a rebuild would give.
pub fn stamp_component(version: &str) -> Vec<u8> {
    assert_eq!(version.len(), STAMP_V1.len(), "a version must keep the length");
    let mut bytes = std::fs::read(FIXTURE_VERSION_STAMP).expect("the version-stamp fixture is built");
    let at = bytes
        .windows(STAMP_V1.len())
        .position(|w| w == STAMP_V1.as_bytes())
        .expect("the fixture holds its version string");
    bytes[at..at + version.len()].copy_from_slice(version.as_bytes());
    bytes
}

/// Writes a file the way a deploy does: a temporary file renamed over it.
pub fn replace_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
