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

/// A route `/v` answered by the version-stamp plugin (`stamp.wasm`).
pub const STAMP_CONFIG: &str = "[plugins.stamp]\npath = \"stamp.wasm\"\n[[routes]]\nname = \"v\"\npath = \"/v\"\npipeline = [{ plugin = \"stamp\", config = { respond = true } }]\n";

/// A folder with `stamp.wasm` (version [`STAMP_V1`]) and `gateway.toml`
/// holding `config`: the set-up of every reload test.
pub struct StampSite {
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
    pub plugin: std::path::PathBuf,
}

impl StampSite {
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Self { config: dir.path().join("gateway.toml"), plugin: dir.path().join("stamp.wasm"), dir };
        std::fs::write(&site.plugin, stamp_component(STAMP_V1)).unwrap();
        std::fs::write(&site.config, config).unwrap();
        site
    }
}
