//! `extmem demo` on hosts with several GPUs: `--all-gpus` runs one producer/consumer pair per
//! GPU at once and reports each GPU's figures; `--consumer-gpu N` puts a CUDA consumer on
//! another GPU than the memory's (refused naming both GPUs, or copied peer to peer with
//! `--peer-copy`).

use crate::support::error::{CliError, Result};
use extmem::caps;
use std::process::{Command, ExitCode, Stdio};

/// The demo's multi-GPU options.
#[derive(clap::Args)]
pub struct GpuArgs {
    /// Run the demo on every GPU at once: one producer/consumer pair per GPU (each producer
    /// with EXTMEM_DEVICE set to its Vulkan device; with --consumer cuda or torch, every Vulkan
    /// device that is a CUDA device), then print each GPU's round trips per second.
    #[arg(long, conflicts_with = "consumer_gpu")]
    pub all_gpus: bool,
    /// With --consumer cuda: the consumer runs on this CUDA device (see `extmem caps` for which Vulkan
    /// device each pairs with). Memory of another GPU is refused, naming both GPUs, unless
    /// --peer-copy.
    #[arg(long, value_name = "CUDA_ORDINAL")]
    pub consumer_gpu: Option<usize>,
    /// With --consumer-gpu: import the memory on the GPU that owns it and copy each frame peer
    /// to peer (cuMemcpyPeerAsync, NVLink or PCIe) into memory of the consumer's GPU.
    #[arg(long, requires = "consumer_gpu")]
    pub peer_copy: bool,
}

impl GpuArgs {
    /// The arguments that pass these options on to `extmem peer`.
    pub fn peer_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(n) = self.consumer_gpu {
            v.extend(["--consumer-gpu".to_owned(), n.to_string()]);
        }
        if self.peer_copy {
            v.push("--peer-copy".into());
        }
        v
    }
}

/// One GPU's demo: the Vulkan device, its CUDA ordinal (where asked) and the child.
struct Run {
    vulkan: usize,
    name: String,
    cuda: Option<usize>,
    child: std::process::Child,
}

/// The devices to run on: with CUDA consumers, every Vulkan device that is a CUDA device;
/// else every GPU (every device where there is no GPU, as under a software driver).
fn devices(cuda: bool) -> Result<Vec<(caps::Capabilities, Option<usize>)>> {
    let list = caps::query_all(false, &caps::Query::default())?;
    if cuda {
        let uuids = extmem_cuda::device_uuids()?;
        let paired: Vec<_> = list
            .into_iter()
            .filter_map(|c| {
                let n = uuids.iter().position(|u| caps::hex(u) == c.device_uuid)?;
                Some((c, Some(n)))
            })
            .collect();
        if paired.is_empty() {
            return Err(extmem::Error::Unsupported("no Vulkan device is a CUDA device (see `extmem caps`)".into()).into());
        }
        return Ok(paired);
    }
    let gpus: Vec<_> = list.iter().filter(|c| !c.device_type.contains("CPU")).cloned().collect();
    Ok(if gpus.is_empty() { list } else { gpus }.into_iter().map(|c| (c, None)).collect())
}

/// The JSON summary at the end of a child demo's output (a Python consumer may print lines
/// before it).
fn summary(stdout: &str) -> Option<serde_json::Value> {
    let start = stdout.rfind("\n{\n").map(|i| i + 1).or_else(|| stdout.starts_with("{\n").then_some(0))?;
    serde_json::from_str(&stdout[start..]).ok()
}

/// Runs this same `extmem demo` command line, less `--all-gpus`, once per GPU at once.
pub fn all_gpus(cuda: bool) -> Result<ExitCode> {
    let exe = std::env::current_exe().map_err(CliError::io("current_exe"))?;
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--all-gpus").collect();
    let json = args.iter().any(|a| a == "--json");
    if !json {
        args.push("--json".into());
    }
    let mut runs = Vec::new();
    for (c, ordinal) in devices(cuda)? {
        let child = Command::new(&exe)
            .args(&args)
            .env("EXTMEM_DEVICE", c.index.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(CliError::io(format!("starting the demo on device {}", c.index)))?;
        runs.push(Run { vulkan: c.index, name: c.name, cuda: ordinal, child });
    }
    let mut all_ok = true;
    let mut results = Vec::new();
    for run in runs {
        let out = run
            .child
            .wait_with_output()
            .map_err(CliError::io(format!("waiting for the demo on device {}", run.vulkan)))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let s = summary(&text);
        let pass = out.status.success() && s.as_ref().is_some_and(|s| s["result"] == "PASS");
        all_ok &= pass;
        if !pass && !json {
            eprintln!("[device {}] output:\n{text}", run.vulkan);
        }
        results.push(serde_json::json!({
            "vulkan_device": run.vulkan,
            "name": run.name,
            "cuda_ordinal": run.cuda,
            "result": if pass { "PASS" } else { "FAIL" },
            "round_trips_per_s": s.as_ref().map(|s| s["round_trips_per_s"].clone()),
            "bytes_per_frame": s.as_ref().map(|s| s["bytes_per_frame"].clone()),
            "frames": s.as_ref().map(|s| s["frames"].clone()),
            "consumer": s.as_ref().map(|s| s["consumer"].clone()),
            "failure": s.as_ref().map(|s| s["failure"].clone()),
        }));
    }
    if json {
        crate::support::json::print(
            serde_json::json!({ "result": if all_ok { "PASS" } else { "FAIL" }, "gpus": results }),
        );
    } else {
        for r in &results {
            let cuda = r["cuda_ordinal"].as_u64().map(|n| format!(", CUDA device {n}")).unwrap_or_default();
            println!(
                "device {} ({}{cuda}): {} {} frame(s) of {} bytes, {:.1} round trips/s, {} consumer",
                r["vulkan_device"],
                r["name"].as_str().unwrap_or("?"),
                r["result"].as_str().unwrap_or("?"),
                r["frames"],
                r["bytes_per_frame"],
                r["round_trips_per_s"].as_f64().unwrap_or(0.0),
                r["consumer"].as_str().unwrap_or("?"),
            );
        }
        println!("{}: the demo on {} device(s) at once", if all_ok { "PASS" } else { "FAIL" }, results.len());
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
