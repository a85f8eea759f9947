//! The long power-cut run: `cargo run --release -p powercut --example
//! powercut -- [CUTS]` (default 1000). See the `powercut` test.

fn main() {
    powercut::cuts::child_if_asked();
    let cuts = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    match powercut::cuts::run(cuts) {
        Ok(report) => println!("powercut: {report:?}"),
        Err(e) => {
            eprintln!("powercut: mounting the filesystem (needs /dev/fuse and root): {e}");
            std::process::exit(2);
        }
    }
}
