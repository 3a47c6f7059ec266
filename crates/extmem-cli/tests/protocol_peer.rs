//! A peer written from `docs/src/protocol.md` alone, with Python's standard library
//! (`tests/protocol/stdlib_producer.py`, which does not import extmem), against `extmem peer`:
//! the document is enough to implement a producer, and `extmem peer` refuses what the document
//! says a receiver must refuse, with the reason on the socket.

use std::path::PathBuf;
use std::process::{Command, Output};

fn producer(extra: &[&str]) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("EXTMEM_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(root.join("tests/protocol/stdlib_producer.py")).args(extra);
    cmd.args(["--", env!("CARGO_BIN_EXE_extmem"), "peer", "--socket", "{socket}", "--validate"]);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = cmd.output().expect("run python3");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_stdlib_python_producer_written_from_the_protocol_document_hands_frames_to_extmem_peer() {
    let out = producer(&["--frames", "4", "--width", "64", "--height", "32"]);
    assert!(out.status.success(), "the stdlib producer failed");
    assert_eq!(last_line(&out), "PASS: 4 frame(s) of 8192 bytes of host memory crossed both ways");
}

#[test]
fn extmem_peer_refuses_an_unsealed_memfd_and_says_why_on_the_socket() {
    let out = producer(&["--no-seal"]);
    assert!(out.status.success(), "the refusal did not reach the producer with its reason");
    assert!(last_line(&out).starts_with("PASS: the unsealed memfd was refused"), "{}", last_line(&out));
}
