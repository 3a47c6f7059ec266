//! The CLI's multi-GPU parts as a user runs them: `caps` pairing each Vulkan device with its
//! CUDA ordinal (table and JSON), `demo --all-gpus` (one producer/consumer pair per device at
//! once, per-device figures) and the argument rules of `--consumer-gpu` / `--peer-copy`. On a
//! host with two GPUs, `scripts/gpu-check-multi.sh` runs the CUDA and PyTorch variants.

use std::process::{Command, Output};

fn extmem(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.args(args);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = cmd.output().expect("run extmem");
    eprintln!("--- extmem {args:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON only on stdout")
}

#[test]
fn caps_pairs_every_vulkan_device_with_its_cuda_ordinal_or_says_why_not() {
    let out = extmem(&["caps", "--json", "--no-nv"]);
    assert!(out.status.success());
    let v = json(&out);
    let devices = v["devices"].as_array().expect("a device list");
    assert!(!devices.is_empty());
    let cuda_here = v["cuda_note"].is_null();
    for d in devices {
        let ordinal = d.get("cuda_ordinal").expect("every device says its CUDA ordinal");
        if !cuda_here {
            assert!(ordinal.is_null(), "no CUDA driver, no ordinal: {d}");
        }
    }
    if !cuda_here {
        assert!(v["cuda_note"].as_str().unwrap().contains("no CUDA driver"), "{v}");
    }
    let table = String::from_utf8_lossy(&extmem(&["caps", "--no-nv"]).stdout).into_owned();
    let cuda_lines = table.lines().filter(|l| l.trim_start().starts_with("CUDA")).count();
    assert_eq!(cuda_lines, devices.len(), "one CUDA line per device:\n{table}");
}

#[test]
fn demo_all_gpus_runs_a_pair_per_device_at_once_and_reports_each() {
    let caps = json(&extmem(&["caps", "--json", "--no-nv"]));
    let devices = caps["devices"].as_array().unwrap();
    let gpus = devices.iter().filter(|d| !d["device_type"].as_str().unwrap().contains("CPU")).count();
    let expected = if gpus == 0 { devices.len() } else { gpus };
    let small = ["demo", "--all-gpus", "--width", "64", "--height", "32", "--frames", "3", "--validate"];
    let out = extmem(&small);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("device ") && l.contains("PASS 3 frame(s) of 8192 bytes")).count(),
        expected,
        "{text}"
    );
    assert_eq!(text.lines().last(), Some(format!("PASS: the demo on {expected} device(s) at once").as_str()));

    let mut with_json = small.to_vec();
    with_json.push("--json");
    let v = json(&extmem(&with_json));
    assert_eq!(v["result"], "PASS");
    let per_gpu = v["gpus"].as_array().unwrap();
    assert_eq!(per_gpu.len(), expected);
    for g in per_gpu {
        assert_eq!(g["result"], "PASS", "{g}");
        assert!(g["round_trips_per_s"].as_f64().unwrap() > 0.0, "{g}");
        assert_eq!(g["bytes_per_frame"], 8192);
    }
}

#[test]
fn consumer_gpu_and_peer_copy_are_refused_without_what_they_need() {
    for (args, needs) in [
        (&["demo", "--peer-copy"][..], "--consumer-gpu"),
        (&["demo", "--consumer-gpu", "1"][..], "--consumer cuda"),
        (&["demo", "--consumer", "gl", "--consumer-gpu", "1"][..], "--consumer cuda"),
        (&["demo", "--cuda", "--all-gpus", "--consumer-gpu", "1"][..], "cannot be used with"),
    ] {
        let out = extmem(args);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needs), "{args:?}: {err}");
    }
}

/// The distributed example's launcher: it insists on the env:// rendezvous variables, then
/// finds its GPU's Vulkan device through `extmem caps --json`, saying so where none is a CUDA
/// device (a machine without NVIDIA GPUs; the training itself runs on GPU hosts).
#[test]
fn distributed_example_needs_the_rendezvous_variables_and_a_cuda_paired_device() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/examples/distributed_train.py");
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new("python3");
        cmd.arg(script).env("EXTMEM_BIN", env!("CARGO_BIN_EXE_extmem"));
        for var in ["MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"] {
            cmd.env_remove(var);
        }
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("python3");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&[("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500"), ("WORLD_SIZE", "1")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("RANK is not set"), "{err}");
    let caps = json(&extmem(&["caps", "--json", "--no-nv"]));
    if caps["devices"].as_array().unwrap().iter().any(|d| d["cuda_ordinal"] == 0) {
        eprintln!("SKIPPED the no-CUDA-device case: this host has a CUDA device 0 (scripts/gpu-check-multi.sh trains)");
        return;
    }
    let full = [
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", "29500"),
        ("WORLD_SIZE", "1"),
        ("RANK", "0"),
        ("LOCAL_RANK", "0"),
    ];
    let (code, err) = run(&full);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no Vulkan device is CUDA device 0"), "{err}");
}
