//! The Python module as Python loads it: it imports, its helpers work, and bad input comes back
//! as a Python exception rather than a crash. (The zero-copy path to torch needs an NVIDIA GPU:
//! `scripts/gpu-check.sh` runs `extmem demo --torch` there.)

use std::path::PathBuf;
use std::process::Command;

fn module_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .ancestors()
        .map(|d| d.join("libextmem.so"))
        .find(|p| p.is_file())
        .expect("libextmem.so above the test binary: cargo build -p extmem-py first");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&lib, dir.join("extmem.abi3.so")).unwrap();
    dir
}

#[test]
fn the_module_imports_and_reports_errors_as_exceptions() {
    let script = r#"
import extmem
p = extmem.pattern(4096, 7)
assert isinstance(p, bytes) and len(p) == 4096 and p != extmem.pattern(4096, 8)
assert extmem.writeback_seed(3) != 3
try:
    extmem.Consumer("/nonexistent/extmem.sock")
    raise SystemExit("connecting to a missing socket did not fail")
except RuntimeError as e:
    assert "connecting to /nonexistent/extmem.sock" in str(e), e
print("ok", p[:4].hex())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", module_dir())
        .output()
        .expect("python3 (install python3)");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    // The same pattern as the Rust side writes.
    let first: String = extmem::pattern::fill(4, 7).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {first}"));
}
