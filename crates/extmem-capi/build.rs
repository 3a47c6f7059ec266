//! Gives the shared library its SONAME, `libextmem.so.<major>` (0 while the ABI is 0.x), so
//! that programs linked against it record the ABI they were built for, as C libraries do.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libextmem.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
