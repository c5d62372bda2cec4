//! What the benchmarks share: peak memory from `/proc`, and writing a report to `bench/`.

/// This process's peak resident set (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak to what is resident now, so that the next peak is of what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// KiB as MiB, to a tenth.
pub fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// Prints the report and writes it to `bench/<file>`.
pub fn write_report(file: &str, report: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    println!("{text}");
    let out = crate::workspace_root().join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(file), text + "\n")?;
    Ok(())
}
