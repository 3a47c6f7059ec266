//! The `extmem` binary as a user runs it: the cross-process demo (two real processes) for
//! images and buffers on the NV and KHR paths with validation on in both, a consumer that dies
//! at each step of the hand-off, `caps --json`, `run` and `--help`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn extmem(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.args(args);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run extmem");
    eprintln!("--- extmem {args:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_round_trips_images_and_buffers_on_both_paths_between_two_processes() {
    let small = ["--width", "96", "--height", "64", "--frames", "3", "--validate"];
    let host: &[&str] = &["--memory", "host", "--queue", "transfer"];
    let old_host: &[&str] = &["--host-memory", "--queue", "transfer"];
    for extra in [&[][..], &["--buffer"][..], &["--khr"][..], &["--khr", "--buffer"][..], host, old_host] {
        let mut args = vec!["demo"];
        args.extend_from_slice(&small);
        args.extend_from_slice(extra);
        let out = extmem(&args, &[]);
        assert!(out.status.success(), "demo {extra:?} failed");
        let text = stdout(&out);
        assert!(text.lines().last().is_some_and(|l| l.starts_with("PASS: 3 frame(s)")), "demo {extra:?}: no PASS line");
        assert!(
            text.contains("[consumer]") && text.contains("frame 2: all"),
            "demo {extra:?}: the consumer checked every frame"
        );
        if extra.is_empty() {
            assert!(text.contains("VkExternalMemoryImageCreateInfoNV"), "the default demo uses the NV extension");
        }
        if extra == host || extra == old_host {
            assert!(
                text.contains("VkImportMemoryHostPointerInfoEXT") && text.contains("(host-allocation"),
                "demo {extra:?}: {text}"
            );
        }
    }
}

#[test]
fn demo_json_summary() {
    let out = extmem(&["demo", "--width", "32", "--height", "32", "--json"], &[]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("demo --json prints JSON only");
    assert_eq!(v["result"], "PASS");
    assert_eq!(v["schema_version"], 1, "every JSON output names its schema");
    assert_eq!(v["path"], "nv");
    assert_eq!(v["bytes_per_frame"], 32 * 32 * 4);
    assert_eq!(v["handle_type"], "opaque-fd");
    assert!(v["steps"].as_array().is_some_and(|s| s.len() >= 5));
}

#[test]
fn a_consumer_that_dies_at_any_step_fails_the_demo_cleanly() {
    for step in ["connected", "share", "frame"] {
        let started = Instant::now();
        let out = extmem(&["demo", "--width", "32", "--height", "32"], &[("EXTMEM_PEER_DIE_AT", step)]);
        assert!(!out.status.success(), "dying at {step} must fail the demo");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("extmem: error: peer:"), "dying at {step}: the error names the peer: {err}");
        assert!(!err.contains("panicked"), "dying at {step}: no panic");
        assert!(started.elapsed() < Duration::from_secs(25), "dying at {step}: reported at once, not after a timeout");
    }
}

#[test]
fn caps_json_lists_the_matrix_and_the_nv_view() {
    let out = extmem(&["caps", "--json"], &[]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1, "every JSON output names its schema");
    let dev = &v["devices"][0];
    let opaque =
        dev["memory"].as_array().unwrap().iter().find(|m| m["handle_type"] == "opaque-fd").expect("opaque-fd row");
    assert_eq!(opaque["image"]["exportable"], true);
    assert_eq!(dev["device_uuid"].as_str().map(str::len), Some(32));
    let nv = dev["nv"].as_array().expect("NV view through the layer");
    assert_eq!(nv[0]["handle_type"], "opaque-win32");
    assert_eq!(nv[0]["image"]["exportable"], true);
    assert!(nv[2]["image"].is_null(), "D3D11 has no backing on Linux");
    // Every queue kind picks some family, and the general one can do graphics or compute.
    let queues = dev["queues"].as_array().expect("queue families");
    for kind in ["general", "compute", "transfer"] {
        assert!(
            queues.iter().any(|q| q["picked_by"].as_str().is_some_and(|b| b.contains(kind))),
            "{kind} picks no family: {queues:?}"
        );
    }
    let general = queues.iter().find(|q| q["picked_by"].as_str().is_some_and(|b| b.contains("general"))).unwrap();
    assert!(general["flags"].as_str().is_some_and(|f| f.contains("GRAPHICS") || f.contains("COMPUTE")), "{general}");
    let table = extmem(&["caps", "--no-nv"], &[]);
    assert!(table.status.success() && stdout(&table).contains("opaque-fd"));
}

#[test]
fn run_enables_the_layer_for_the_program() {
    let show = "echo \"$XDG_DATA_DIRS|$EXTMEM_ENABLE_NV|$VK_INSTANCE_LAYERS|$VK_ADD_LAYER_PATH\"";
    // Implicit (the default): the manifest folder first in XDG_DATA_DIRS, switched on.
    let out = extmem(&["run", "--", "sh", "-c", show], &[]);
    assert!(out.status.success());
    let line = stdout(&out);
    let f: Vec<&str> = line.trim().split('|').collect();
    let manifest =
        std::path::Path::new(f[0].split(':').next().unwrap()).join("vulkan/implicit_layer.d/VkLayer_extmem.json");
    assert!(manifest.is_file(), "{}", manifest.display());
    assert_eq!(f[1], "1");
    // Explicit: through VK_INSTANCE_LAYERS and VK_ADD_LAYER_PATH, validation first when asked.
    let out = extmem(&["run", "--explicit", "--validate", "--", "sh", "-c", show], &[]);
    let line = stdout(&out);
    let f: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(f[2], "VK_LAYER_KHRONOS_validation:VK_LAYER_EXTMEM_external_memory");
    assert!(std::path::Path::new(f[3].split(':').next().unwrap()).join("VkLayer_extmem.json").is_file(), "{}", f[3]);
    let missing = extmem(&["run", "--", "/nonexistent/program"], &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("running /nonexistent/program"));
}

#[test]
fn every_subcommand_has_help() {
    let bench: Vec<[&str; 3]> = ["first-handoff", "steady", "pool", "cuda", "peer", "soak"]
        .into_iter()
        .map(|mode| ["bench", mode, "--help"])
        .collect();
    let subs = [&["--help"][..], &["caps", "--help"], &["demo", "--help"], &["run", "--help"], &["bench", "--help"]];
    for sub in subs.into_iter().chain(bench.iter().map(|b| &b[..])) {
        let out = extmem(sub, &[]);
        assert!(out.status.success() && stdout(&out).contains("Usage"), "{sub:?}");
    }
}

/// The old spelling `extmem bench --json ...` (no mode): first hand-off and steady state in one run.
#[test]
fn bench_prints_json_and_draws_a_png() {
    let png = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench.png");
    let _ = std::fs::remove_file(&png);
    let out = extmem(
        &["bench", "--sizes", "4K,64K", "--repeat", "1", "--frames", "2", "--json", "--png", png.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench --json prints JSON only");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["handoff"].as_array().map(Vec::len), Some(2));
    assert!(v["handoff"][1]["copy_over_zero_copy"].as_f64().is_some_and(|r| r > 0.0));
    assert_eq!(v["steady_state"].as_array().map(Vec::len), Some(2));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"), "a PNG file");
    let bad = extmem(&["bench", "--sizes", "4X"], &[]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("size \"4X\""));
}
