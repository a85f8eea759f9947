//! Power-loss proof (issue 17): power cuts on the FUSE filesystem that
//! drops every unsynced write, under eight concurrent writers
//! (`POWERCUT_CUTS`, default 100) and under the command path (half as
//! many); after each, every acknowledged append is present, every
//! acknowledged command is answered with its first outcome when sent
//! again, verify is clean and no position is missing or repeated. The long
//! run is `cargo run --release -p powercut --example powercut -- 1000`.

use powercut::cuts::{run, Scenario};

fn main() {
    powercut::cuts::child_if_asked();
    let cuts: u32 = std::env::var("POWERCUT_CUTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    let mut passed = 0;
    for (scenario, cuts) in [
        (Scenario::Appends, cuts),
        (Scenario::Commands, cuts.div_ceil(2)),
    ] {
        let started = std::time::Instant::now();
        let report = run(scenario, cuts).unwrap_or_else(|e| {
            panic!("mounting the power-cut filesystem (needs /dev/fuse and root): {e}")
        });
        assert!(
            report.acknowledged > 0,
            "nothing was acknowledged: {report:?}"
        );
        assert!(
            report.dropped_bytes > 0,
            "no cut dropped a write: {report:?}"
        );
        println!(
            "test powercut::{scenario:?} ({} cuts, {} acknowledged appends or commands intact, {} events, {} unsynced bytes dropped, {} journal turns by full files, {:.1?}) ... ok",
            report.cuts,
            report.acknowledged,
            report.events,
            report.dropped_bytes,
            report.turns,
            started.elapsed()
        );
        passed += 1;
    }
    println!("powercut: {passed} passed, 0 failed");
}
