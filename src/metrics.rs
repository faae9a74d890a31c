//! Process metrics reported by summaries and benchmarks.

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The 1-minute load average (from /proc/loadavg), as text; "?" where unknown.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// CPU time (user + system) in seconds, of this process (`RUSAGE_SELF`) or of
/// its waited-for children (`RUSAGE_CHILDREN`); None where unknown.
fn rusage_cpu_seconds(who: libc::c_int) -> Option<f64> {
    // SAFETY: getrusage only writes the struct we pass; zeroed is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// CPU seconds this process has used so far.
pub fn cpu_seconds() -> Option<f64> {
    rusage_cpu_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds used by this process's children that have been waited for:
/// the difference around running a child is that child's CPU time.
pub fn children_cpu_seconds() -> Option<f64> {
    rusage_cpu_seconds(libc::RUSAGE_CHILDREN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work() {
        let before = super::cpu_seconds().expect("getrusage");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(7));
        }
        std::hint::black_box(x);
        let after = super::cpu_seconds().expect("getrusage");
        assert!(after > before, "{before} → {after}");
        assert!(super::children_cpu_seconds().is_some());
    }
}
