//! A disk probe printed beside each benchmark cell: this machine's
//! `fdatasync` latency flips between about 0.2 ms and 4 ms for minutes at
//! a time, and a figure means little without the weather it was taken in.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The median latency, in milliseconds, of five 4 KiB writes each followed
/// by `fdatasync`, in a file under `dir` (removed afterwards); `None` when
/// the file cannot be written.
pub fn fdatasync_ms(dir: &Path) -> Option<f64> {
    let path = dir.join(format!("disk-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path).ok()?;
    let block = [0x5a_u8; 4096];
    let mut samples = Vec::with_capacity(5);
    for _ in 0..5 {
        let started = Instant::now();
        file.write_all(&block).ok()?;
        file.sync_data().ok()?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied()
}
