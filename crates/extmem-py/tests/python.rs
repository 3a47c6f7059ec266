//! The Python module as Python loads it: it imports, has a version, its helpers work, and bad
//! input comes back as the matching `extmem` exception rather than a crash. (The zero-copy path
//! to torch needs an NVIDIA GPU: `scripts/gpu-check.sh` runs `extmem demo --torch` there.)

mod common;

#[test]
fn the_module_imports_and_reports_errors_as_typed_exceptions() {
    let script = r#"
import extmem
assert extmem.__version__ == "VERSION", extmem.__version__
assert extmem.DLPACK_VERSION == (1, 0)
p = extmem.pattern(4096, 7)
assert isinstance(p, bytes) and len(p) == 4096 and p != extmem.pattern(4096, 8)
assert extmem.writeback_seed(3) != 3
for kind in ["VulkanError", "LoaderError", "NoDeviceError", "UnsupportedError", "LayerError", "ImportRefusedError",
             "ProtocolError", "PeerError", "EndOfStream", "IoError", "CudaError", "LayoutError"]:
    assert issubclass(getattr(extmem, kind), extmem.Error), kind
assert issubclass(extmem.EndOfStream, extmem.PeerError)
try:
    extmem.Consumer("/nonexistent/extmem.sock")
    raise SystemExit("connecting to a missing socket did not fail")
except extmem.IoError as e:
    assert "connecting to /nonexistent/extmem.sock" in str(e), e
assert extmem.Consumer.__doc__ and extmem.SharedBuffer.__dlpack__.__doc__
print("ok", p[:4].hex())
"#
    .replace("VERSION", env!("CARGO_PKG_VERSION"));
    let out = common::python().arg("-c").arg(script).output().expect("python3 (install python3)");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    // The same pattern as the Rust side writes.
    let first: String = extmem::pattern::fill(4, 7).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {first}"));
}
