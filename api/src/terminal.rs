//! Lines for the operator's terminal that never stop the server: standard
//! output or error that cannot be written (a full disk, a closed pipe)
//! costs the line, where `println!` and `eprintln!` would panic.

/// Writes one line to standard output, as `println!` does, passing over a
/// failure to write it.
#[macro_export]
macro_rules! stdout_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Writes one line to standard error, as `eprintln!` does, passing over a
/// failure to write it.
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
