//! Resident memory of this process (for tests that run alone in their
//! binary) or of a gateway process a test started.

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// Resident set size of process `pid`, in bytes.
pub fn process_rss_bytes(pid: u32) -> u64 {
    rss_of(&pid.to_string())
}

fn rss_of(process: &str) -> u64 {
    let path = format!("/proc/{process}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("VmRSS in {path}"));
    kb * 1024
}
