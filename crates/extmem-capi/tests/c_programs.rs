//! The C and C++ programs of this crate, compiled with the system's `cc` / `c++` against
//! include/extmem.h (C11 / C++17, `-Wall -Wextra -Werror`) and the freshly built
//! `libextmem.so.0`, and run: under the Khronos validation layer on every Vulkan instance
//! (the programs fail on any message), and under AddressSanitizer on the C side (the Rust
//! library built normally).
//!
//! - tests/c/api_test.c: misuse refused with a status, checked import, pools across threads.
//! - tests/c/borrowed_test.c: the borrowed context's refusals, record-only, queue callbacks.
//! - examples/producer.c (its own VkDevice, lent to extmem) with `extmem peer --validate` and
//!   with examples/consumer.cpp; and against a peer that dies mid-frame.
//! - examples/pool_producer.c with `extmem peer --pool --validate`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{build, crate_dir, lib_dir, profile_dir, show, Listening};

/// Compiles `source` (C11 or, for .cpp, C++17) with warnings as errors: the program's path.
fn compile(source: &str, asan: bool) -> PathBuf {
    let src = crate_dir().join(source);
    let cpp = source.ends_with(".cpp");
    let stem = Path::new(source).file_stem().unwrap().to_string_lossy().into_owned();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{stem}{}", if asan { "-asan" } else { "" }));
    let mut cmd = Command::new(if cpp { "c++" } else { "cc" });
    cmd.arg(if cpp { "-std=c++17" } else { "-std=c11" }).args(["-Wall", "-Wextra", "-Werror", "-g"]);
    if asan {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg("-I").arg(crate_dir().join("include")).arg(&src).arg("-o").arg(&out);
    cmd.arg("-L").arg(lib_dir()).arg(format!("-Wl,-rpath,{}", lib_dir().display()));
    cmd.args(["-lextmem", "-lvulkan", "-lpthread"]);
    let o = cmd.output().expect("run the compiler");
    assert!(o.status.success(), "compiling {source}:\n{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// `extmem` (the CLI, for `extmem peer`).
fn extmem_cli() -> PathBuf {
    build();
    let cli = profile_dir().join("extmem");
    assert!(cli.exists(), "{}", cli.display());
    cli
}

/// Starts the producer (it prints "LISTENING <path>").
fn start_producer(program: &Path, frames: u32, extra: &[&str]) -> Listening {
    let mut cmd = Command::new(program);
    cmd.args(["--frames", &frames.to_string()]).args(extra);
    Listening::start(cmd)
}

#[test]
fn the_header_compiles_pedantic_as_c11_and_cpp17() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, compiler, std) in [("h.c", "cc", "-std=c11"), ("h.cpp", "c++", "-std=c++17")] {
        let src = dir.join(name);
        std::fs::write(&src, "#include \"extmem.h\"\nint main(void) { return extmem_abi_version() == 1 ? 0 : 1; }\n")
            .unwrap();
        let o = Command::new(compiler)
            .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
            .arg(crate_dir().join("include"))
            .arg(&src)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(name, &o));
    }
}

fn api_test(asan: bool) {
    let program = compile("tests/c/api_test.c", asan);
    let o = Command::new(&program).output().unwrap();
    let text = show("api_test", &o);
    assert!(o.status.success() && text.contains("PASS"), "{text}");
}

#[test]
fn api_test_refuses_misuse_and_moves_memory() {
    api_test(false);
}

#[test]
fn api_test_under_address_sanitizer() {
    api_test(true);
}

#[test]
fn borrowed_context_refusals_record_only_and_queue_callbacks() {
    for asan in [false, true] {
        let program = compile("tests/c/borrowed_test.c", asan);
        let o = Command::new(&program).output().unwrap();
        let text = show("borrowed_test", &o);
        assert!(o.status.success() && text.contains("PASS"), "{text}");
    }
}

fn producer_to_peer(asan: bool, extra: &[&str]) {
    // Built before the producer listens (its accept waits 60 s).
    let peer_cli = extmem_cli();
    let producer = compile("examples/producer.c", asan);
    let p = start_producer(&producer, 3, extra);
    let peer = Command::new(&peer_cli).args(["peer", "--socket", &p.socket, "--validate"]).output().unwrap();
    let (code, text) = p.finish();
    let ok = code == Some(0);
    assert!(peer.status.success(), "{}\n--- producer\n{text}", show("extmem peer", &peer));
    assert!(ok && text.contains("PASS: 3 frames"), "{text}");
}

#[test]
fn c_producer_with_its_own_device_feeds_extmem_peer() {
    producer_to_peer(false, &[]);
}

#[test]
fn c_producer_shares_an_image_with_extmem_peer() {
    producer_to_peer(false, &["--image"]);
}

#[test]
fn c_producer_under_address_sanitizer_feeds_extmem_peer() {
    producer_to_peer(true, &[]);
}

#[test]
fn c_producer_feeds_the_cpp_consumer_a_buffer_and_an_image() {
    let producer = compile("examples/producer.c", false);
    let consumer = compile("examples/consumer.cpp", false);
    for extra in [&[][..], &["--image"][..]] {
        let p = start_producer(&producer, 4, extra);
        let c = Command::new(&consumer).args(["--socket", &p.socket, "--frames", "4"]).output().unwrap();
        let (code, text) = p.finish();
        let ctext = show("consumer", &c);
        assert!(c.status.success() && ctext.contains("PASS: 4 frames"), "{extra:?}: {ctext}\n--- producer\n{text}");
        assert!(code == Some(0) && text.contains("PASS: 4 frames"), "{extra:?}: {text}");
    }
}

#[test]
fn c_pool_producer_feeds_extmem_peer_pool() {
    let peer_cli = extmem_cli();
    let program = compile("examples/pool_producer.c", true);
    let p = Listening::start(Command::new(&program));
    let peer = Command::new(&peer_cli).args(["peer", "--pool", "--validate", "--socket", &p.socket]).output().unwrap();
    let (code, text) = p.finish();
    assert!(peer.status.success(), "{}\n--- producer\n{text}", show("extmem peer --pool", &peer));
    assert!(code == Some(0) && text.contains("PASS: 6 pooled hand-offs"), "{text}");
}

#[test]
fn a_consumer_that_dies_mid_frame_is_an_error_not_a_hang() {
    let peer_cli = extmem_cli();
    let producer = compile("examples/producer.c", false);
    let p = start_producer(&producer, 3, &[]);
    let peer = Command::new(&peer_cli)
        .args(["peer", "--socket", &p.socket])
        .env("EXTMEM_PEER_DIE_AT", "frame")
        .output()
        .unwrap();
    assert!(!peer.status.success(), "{}", show("extmem peer", &peer));
    let (code, text) = p.finish();
    let ok = code == Some(0);
    assert!(!ok, "the producer must fail when its consumer died:\n{text}\n{}", show("extmem peer", &peer));
    assert!(
        text.contains("extmem_frames_wait_done(ch, n): EXTMEM_ERROR_PEER"),
        "{text}\n{}",
        show("extmem peer", &peer)
    );
}
