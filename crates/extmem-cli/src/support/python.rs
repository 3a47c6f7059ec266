//! The Python interpreter for Python consumers and producers: `$EXTMEM_PYTHON`, else
//! `$PYTHON`, else `python3` (a virtual environment's interpreter has its packages).

use std::process::Command;

/// A command that runs the Python interpreter.
pub fn command() -> Command {
    let python = std::env::var_os("EXTMEM_PYTHON").or_else(|| std::env::var_os("PYTHON"));
    Command::new(python.unwrap_or_else(|| "python3".into()))
}
