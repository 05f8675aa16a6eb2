//! Programs the tests drive for real (redis-server, Chromium, promtool):
//! installed from Debian's packages when missing and running as root (as
//! benches/common.sh installs wrk and nginx), else the test fails saying
//! how to install them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// `binary` on PATH, after installing `package` if it is missing and we may.
pub fn installed(binary: &str, package: &str) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(binary) {
        return found;
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    assert!(
        root,
        "{binary} is not installed and this is not root: install it with \
         `sudo apt-get install {package}` (Debian/Ubuntu) or put {binary} on PATH"
    );
    let apt = |args: &[&str]| {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{binary} is missing and apt-get cannot run: {e}"));
        assert!(status.success(), "apt-get {args:?} failed: install {package} by hand");
    };
    apt(&["update", "-qq"]);
    apt(&["install", "-y", "-qq", "--no-install-recommends", package]);
    find(binary).unwrap_or_else(|| panic!("{package} installed but {binary} is not on PATH"))
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}
