//! The Python module as Python loads it: it imports, has a version, its helpers work, and bad
//! input comes back as the matching `extmem` exception rather than a crash. (The zero-copy path
//! to torch needs an NVIDIA GPU: `scripts/gpu-check.sh` runs `extmem demo --torch` there.)

mod common;

#[test]
fn the_module_imports_and_reports_errors_as_typed_exceptions() {
    let script = r#"
import extmem
assert extmem.__version__ == "@VERSION@", extmem.__version__
assert extmem.DLPACK_VERSION == (1, 0)
p = extmem._testing.pattern(4096, 7)
assert isinstance(p, bytes) and len(p) == 4096 and p != extmem._testing.pattern(4096, 8)
assert extmem._testing.writeback_seed(3) != 3
# The test helpers are not in the public module, and a huge pattern raises.
assert not hasattr(extmem, "pattern") and not hasattr(extmem, "writeback_seed")
assert "pattern" not in extmem.__all__ and "pattern" not in dir(extmem._extmem)
for huge in (1 << 40, 1 << 31):
    try:
        extmem._testing.pattern(huge, 0)
        raise SystemExit(f"pattern({huge}) did not raise")
    except ValueError as e:
        assert "over the" in str(e), e
for kind in ["VulkanError", "LoaderError", "NoDeviceError", "UnsupportedError", "LayerError", "ImportRefusedError",
             "ProtocolError", "PeerError", "EndOfStream", "IoError", "CudaError", "LayoutError"]:
    assert issubclass(getattr(extmem, kind), extmem.Error), kind
assert issubclass(extmem.EndOfStream, extmem.PeerError)
try:
    extmem.Consumer("/nonexistent/extmem.sock")
    raise SystemExit("connecting to a missing socket did not fail")
except extmem.IoError as e:
    assert "connecting to /nonexistent/extmem.sock" in str(e), e
assert extmem.Consumer.__doc__ and extmem.Producer.share.__doc__ and extmem.SharedBuffer.__dlpack__.__doc__
print("ok", p[:4].hex())
"#
    .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    let out = common::python().arg("-c").arg(script).output().expect("python3 (install python3)");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    // The same pattern as the Rust side writes.
    let first: String = extmem::pattern::fill(4, 7).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {first}"));
}

#[test]
fn a_producer_without_cuda_gets_a_cuda_error_not_a_crash() {
    if extmem_cuda::available() {
        skipped(format_args!(
            "SKIPPED the no-CUDA error: this machine has a CUDA driver (scripts/gpu-check.sh runs the producer)"
        ));
        return;
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test binary reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let path = extmem::transport::socket::socket_dir().join(format!("producer-test-{}.sock", std::process::id()));
    let listener = extmem::transport::socket::Listener::bind(&path).unwrap();
    let script = r#"
import sys, extmem
producer = extmem.Producer(sys.argv[1])
try:
    producer.share(1 << 20)
    raise SystemExit("share() without CUDA did not fail")
except extmem.CudaError as e:
    assert "CUDA driver" in str(e), e
print("ok")
"#;
    let child = common::python().arg("-c").arg(script).arg(&path).spawn().unwrap();
    let _channel = listener.accept(std::time::Duration::from_secs(60)).expect("the producer connects");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

/// Says a test was skipped, past the test harness's output capture (which would hide it).
fn skipped(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
