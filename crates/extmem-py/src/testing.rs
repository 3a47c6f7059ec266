//! `extmem._testing`: the test and example helpers (the check pattern the demo's producer
//! writes), kept out of the public module.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest pattern asked for (1 GiB): more is a mistake, not a test.
const MAX_PATTERN: usize = 1 << 30;

/// `len` bytes of extmem's check pattern for `seed` (what the demo's producer writes). Raises
/// `ValueError` above 1 GiB and `MemoryError` where the bytes cannot be had.
#[pyfunction]
fn pattern(py: Python<'_>, len: usize, seed: u64) -> PyResult<Py<pyo3::types::PyBytes>> {
    if len > MAX_PATTERN {
        return Err(PyValueError::new_err(format!("a pattern of {len} bytes is over the {MAX_PATTERN} bytes allowed")));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| pyo3::exceptions::PyMemoryError::new_err(format!("{len} bytes for a pattern")))?;
    bytes.extend((0..len).map(|i| ::extmem::pattern::byte(i, seed)));
    Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
}

/// The seed the consumer writes back for `frame` in the demo.
#[pyfunction]
fn writeback_seed(frame: u64) -> u64 {
    ::extmem::pattern::writeback_seed(frame)
}

/// Adds the private `_testing` submodule to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let testing = PyModule::new(m.py(), "_testing")?;
    testing.add_function(wrap_pyfunction!(pattern, &testing)?)?;
    testing.add_function(wrap_pyfunction!(writeback_seed, &testing)?)?;
    m.add_submodule(&testing)
}
