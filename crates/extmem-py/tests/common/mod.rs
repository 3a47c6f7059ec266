//! Shared set-up of the Python module's tests: the freshly built module laid out as the
//! `extmem` package, and the Python that runs it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// A folder holding the `extmem` package made of `python/extmem` and the `lib_extmem.so` built
/// beside the test binary (as `extmem/_extmem.abi3.so`), for `PYTHONPATH`.
pub fn module_dir() -> PathBuf {
    // Once per test binary: tests of one binary run in parallel and must not see a half-copied
    // module.
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(lay_out).clone()
}

fn lay_out() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .ancestors()
        .map(|d| d.join("lib_extmem.so"))
        .find(|p| p.is_file())
        .expect("lib_extmem.so above the test binary: cargo build -p extmem-py first");
    // One folder per test binary: the binaries of this crate may run at the same time.
    let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("python-{name}"));
    let package = dir.join("extmem");
    std::fs::create_dir_all(&package).unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/extmem");
    for f in ["__init__.py", "_extmem.pyi", "py.typed"] {
        std::fs::copy(source.join(f), package.join(f)).unwrap();
    }
    std::fs::copy(&lib, package.join("_extmem.abi3.so")).unwrap();
    dir
}

/// `$EXTMEM_PYTHON` (scripts/test.sh points it at the virtual environment it makes, which has
/// numpy), else `python3`.
pub fn python() -> Command {
    let mut cmd = Command::new(std::env::var_os("EXTMEM_PYTHON").unwrap_or_else(|| "python3".into()));
    cmd.env("PYTHONPATH", module_dir());
    cmd
}
