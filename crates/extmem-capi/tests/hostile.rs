//! tests/c/hostile_consumer.c, an importer written against include/extmem.h alone, against
//! every class of bad input `extmem-hostile-peer` sends: each is refused with a status and a
//! message naming what was wrong (also answered to the producer), with no crash, hang,
//! leaked descriptor or validation message; the good cases pass.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{crate_dir, lib_dir, profile_dir, show, Listening};

fn compile() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile_consumer");
    let lib = lib_dir();
    let o = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/c/hostile_consumer.c"))
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lextmem")
        .output()
        .expect("cc");
    assert!(o.status.success(), "{}", show("cc", &o));
    out
}

#[test]
fn every_class_of_hostile_input_is_refused_with_a_status_and_its_reason() {
    let consumer = compile();
    let peer = profile_dir().join("extmem-hostile-peer");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile-sockets");
    // The cases of crates/extmem-testkit/tests/hostile_peer.rs that reach an importer, and
    // what the refusal must say ("" for the good ones).
    let cases: [(&str, &str); 21] = [
        ("good", ""),
        ("pipe", "a pipe or FIFO"),
        ("fifo", "a pipe or FIFO"),
        ("socket", "a socket"),
        ("eventfd", "an anonymous inode"),
        ("directory", "a directory"),
        ("unsealed-host", "not sealed"),
        ("shrink-host", "not sealed"),
        ("zero-size", "allocation size 0"),
        ("3d-layers", "array_layers"),
        ("too-wide", "extent"),
        ("drm-tiling", "tiling"),
        ("undefined-usage", "usage"),
        ("die-after-share", "EXTMEM_ERROR_PEER: extmem_channel_recv: peer: the peer closed the connection"),
        ("die-mid-frames", "EXTMEM_ERROR_PEER"),
        ("pool-good", ""),
        ("pool-pipe", "a pipe or FIFO"),
        ("pool-block-twice", "EXTMEM_ERROR_POOL: extmem_pool_importer_add_block: pool: block 0 was sent twice"),
        ("pool-unknown-block", "never sent"),
        ("pool-outside", "outside"),
        ("pool-overlap", "overlaps"),
    ];
    let mut failures = Vec::new();
    for (case, says) in cases {
        let socket = dir.join(format!("hostile-{}-{case}.sock", std::process::id()));
        let mut cmd = Command::new(&consumer);
        cmd.arg(&socket);
        let listening = Listening::start(cmd);
        let p = Command::new(&peer).arg(&listening.socket).arg(case).output().expect("run extmem-hostile-peer");
        let (code, text) = listening.finish();
        let fds = text.lines().find_map(|l| l.strip_prefix("FDS ")).unwrap_or("? ?").to_owned();
        let fds: Vec<&str> = fds.split(' ').collect();
        let good = says.is_empty();
        let verdict_ok =
            if good { code == Some(0) && text.contains("CLEAN") } else { code == Some(3) && text.contains(says) };
        if !verdict_ok || fds.len() != 2 || fds[0] != fds[1] || !text.contains("VALIDATION 0") {
            failures.push(format!("--- {case} (exit {code:?}, fds {fds:?}):\n{text}\n{}", show("peer", &p)));
        } else {
            println!("{case}: {}", text.lines().find(|l| l.starts_with("REFUSED") || l == &"CLEAN").unwrap_or(""));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
