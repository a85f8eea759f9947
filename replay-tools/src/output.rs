//! Standard output for commands: buffered, JSON or text, with a closed pipe
//! (`| head`) reported as such so the boundary can treat it as success.

use std::io::{BufWriter, Stdout, Write};

use serde::Serialize;

use crate::error::ReplayError;

/// Writes one line to standard error, as `eprintln!` does, but a standard
/// error that cannot be written (full, closed) is passed over instead of
/// panicking: the exit code still says how the command ended.
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `result` of writing a command's verdict, with a reader that stopped
/// early (a closed pipe) not counted as a failure: the verdict reaches the
/// exit code even when its report could not reach the reader.
///
/// # Errors
/// Any other write error.
pub fn unless_reader_left(result: Result<(), ReplayError>) -> Result<(), ReplayError> {
    match result {
        Err(e) if e.is_broken_pipe() => Ok(()),
        other => other,
    }
}

/// Buffered standard output.
#[derive(Debug)]
pub struct Out {
    writer: BufWriter<Stdout>,
}

impl Default for Out {
    fn default() -> Self {
        Self::stdout()
    }
}

impl Out {
    /// Standard output with a 256 KiB buffer.
    pub fn stdout() -> Self {
        Self {
            writer: BufWriter::with_capacity(256 * 1024, std::io::stdout()),
        }
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<(), ReplayError> {
        writeln!(self.writer, "{text}").map_err(write_error)
    }

    /// Writes one value as one line of JSON.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ReplayError> {
        write_json_line(&mut self.writer, value)
    }

    /// Writes a command's report, an object, as one line of JSON with
    /// `"ok": true` beside its fields, as every other command's answer
    /// and every error (`"ok": false`) carries it.
    pub fn report<T: Serialize + ?Sized>(&mut self, report: &T) -> Result<(), ReplayError> {
        let mut value = serde_json::to_value(report).map_err(|e| {
            ReplayError::Usage(format!("the report cannot be written as JSON: {e}"))
        })?;
        if let Some(fields) = value.as_object_mut() {
            fields.insert("ok".to_owned(), serde_json::Value::Bool(true));
        }
        self.json(&value)
    }

    /// The underlying writer, for commands that stream lines.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }

    /// Flushes everything written so far.
    pub fn flush(&mut self) -> Result<(), ReplayError> {
        self.writer.flush().map_err(write_error)
    }
}

/// Writes `value` as one line of JSON to `writer`.
pub fn write_json_line<T: Serialize + ?Sized>(
    writer: &mut dyn Write,
    value: &T,
) -> Result<(), ReplayError> {
    serde_json::to_writer(&mut *writer, value).map_err(|e| match e.io_error_kind() {
        Some(kind) => write_error(std::io::Error::new(kind, e.to_string())),
        None => ReplayError::Usage(format!("value does not serialise as JSON: {e}")),
    })?;
    writer.write_all(b"\n").map_err(write_error)
}

/// The error for a failed write to the output.
pub fn write_error(error: std::io::Error) -> ReplayError {
    ReplayError::io(crate::error::OUTPUT_WRITE, error)
}
