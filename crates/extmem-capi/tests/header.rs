//! include/extmem.h is what the pinned cbindgen generates from the crate's source: any
//! difference fails (`EXTMEM_BLESS=1` rewrites the file instead).

use std::path::PathBuf;

#[test]
fn the_checked_in_header_is_what_cbindgen_generates() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("UTF-8");
    let path = crate_dir.join("include/extmem.h");
    if std::env::var_os("EXTMEM_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/extmem.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != fresh {
        let line = checked_in.lines().zip(fresh.lines()).position(|(a, b)| a != b).unwrap_or(0) + 1;
        panic!(
            "include/extmem.h differs from a fresh generation (first at line {line}): run \
             `EXTMEM_BLESS=1 cargo test -p extmem-capi --test header` and commit the header"
        );
    }
}
