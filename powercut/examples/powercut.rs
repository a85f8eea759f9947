//! The long power-cut run: `cargo run --release -p powercut --example
//! powercut -- [CUTS]` (default 1000 under appends, then as many under the
//! command path). See the `powercut` test.

use powercut::cuts::{run, Scenario};

fn main() {
    powercut::cuts::child_if_asked();
    let cuts = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    for scenario in [Scenario::Appends, Scenario::Commands] {
        match run(scenario, cuts) {
            Ok(report) => println!("powercut {scenario:?}: {report:?}"),
            Err(e) => {
                eprintln!("powercut: mounting the filesystem (needs /dev/fuse and root): {e}");
                std::process::exit(2);
            }
        }
    }
}
