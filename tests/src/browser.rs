//! Headless Chromium (Debian's `chromium`), for what a browser shows:
//! the page after its scripts ran, and a screenshot of it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long (in the page's own virtual time) scripts may run and fetch
/// before the page is read: long enough for a few dashboard refreshes.
const BUDGET: Duration = Duration::from_secs(10);

fn chromium(args: &[&str]) -> std::process::Output {
    let binary = crate::packages::installed("chromium", "chromium");
    let profile = tempfile::tempdir().expect("a profile folder");
    let output = Command::new(binary)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={}", BUDGET.as_millis()))
        .args(args)
        .output()
        .expect("running chromium");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The page's DOM, serialised, once its scripts have run.
pub fn rendered_dom(url: &str) -> String {
    String::from_utf8_lossy(&chromium(&["--dump-dom", url]).stdout).into_owned()
}

/// Saves a screenshot of the page, `width`×`height`, to `path`.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    chromium(&[&format!("--screenshot={}", path.display()), &format!("--window-size={width},{height}"), url]);
    assert!(path.is_file(), "chromium wrote no screenshot at {}", path.display());
}
