//! `extmem caps`: the capability matrix of every physical device.

use crate::support::error::Result;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::caps::{self, Capabilities, Features};
use std::process::ExitCode;

/// Print what every Vulkan device can export and import (memory, semaphores, fences, NV view).
#[derive(clap::Parser)]
#[command(name = "caps")]
struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Leave out the NV view (no layer).
    #[arg(long)]
    no_nv: bool,
}

fn features(f: &Option<Features>) -> String {
    match f {
        None => "-".into(),
        Some(f) => {
            let mut s = String::new();
            if f.exportable {
                s.push_str("export ");
            }
            if f.importable {
                s.push_str("import ");
            }
            if f.dedicated_only {
                s.push_str("dedicated-only ");
            }
            s.trim_end().to_owned()
        }
    }
}

/// The CUDA device ordinal of each Vulkan device (same device UUID), in this process's CUDA
/// numbering (`CUDA_VISIBLE_DEVICES` reorders it); `Err` says why CUDA could not be asked.
fn cuda_ordinals(list: &[Capabilities]) -> std::result::Result<Vec<Option<usize>>, String> {
    if !extmem_cuda::available() {
        return Err("no CUDA driver (libcuda.so.1) here".into());
    }
    let uuids = extmem_cuda::device_uuids().map_err(|e| e.to_string())?;
    Ok(list.iter().map(|c| uuids.iter().position(|u| caps::hex(u) == c.device_uuid)).collect())
}

fn print(c: &Capabilities, cuda: std::result::Result<Option<usize>, &str>) {
    println!("device {}: {} ({}, Vulkan {})", c.index, c.name, c.device_type, c.api_version);
    println!("  device UUID {}  driver UUID {}", c.device_uuid, c.driver_uuid);
    match cuda {
        Ok(Some(n)) => println!("  CUDA device {n} (same device UUID: CUDA consumers of its memory run there)"),
        Ok(None) => println!("  CUDA: no device with this UUID"),
        Err(why) => println!("  CUDA: not asked ({why})"),
    }
    println!("  images: {}", c.image_query);
    println!("  buffers: {}", c.buffer_query);
    println!("  {:<16} {:<10} {:<28} {:<28}", "memory handle", "extension", "image", "buffer");
    for m in &c.memory {
        println!(
            "  {:<16} {:<10} {:<28} {:<28}",
            m.handle_type.name(),
            if m.extension { "yes" } else { "no" },
            features(&m.image),
            features(&m.buffer)
        );
    }
    for (what, list) in
        [("semaphore", &c.semaphores), ("timeline semaphore", &c.timeline_semaphores), ("fence", &c.fences)]
    {
        let s: Vec<String> = list
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.handle_type,
                    match (s.exportable, s.importable) {
                        (true, true) => "export+import",
                        (true, false) => "export",
                        (false, true) => "import",
                        (false, false) => "no",
                    }
                )
            })
            .collect();
        println!("  {what}: {}", s.join(", "));
    }
    for q in &c.queues {
        let by = q.picked_by.as_ref().map(|b| format!("  (--queue {b})")).unwrap_or_default();
        println!("  queue family {}: {} x{}{by}", q.index, q.flags, q.count);
    }
    match &c.nv {
        None => println!("  VK_NV_external_memory: not asked (--no-nv)"),
        Some(nv) => {
            println!("  VK_NV_external_memory (through the extmem layer):");
            for n in nv {
                match &n.image {
                    None => println!("    {:<18} VK_ERROR_FORMAT_NOT_SUPPORTED", n.handle_type),
                    Some(f) => println!(
                        "    {:<18} {}{}{}compatible NV bits {:#x}",
                        n.handle_type,
                        if f.exportable { "export " } else { "" },
                        if f.importable { "import " } else { "" },
                        if f.dedicated_only { "dedicated-only " } else { "" },
                        f.compatible_bits
                    ),
                }
            }
        }
    }
}

/// The definition of `extmem caps`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem caps`.
pub fn run(matches: &ArgMatches, _tree: &Command) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    let q = caps::Query::default();
    let (list, nv_note) = if args.no_nv {
        (caps::query_all(false, &q)?, None)
    } else {
        match caps::query_all(true, &q) {
            Ok(l) => (l, None),
            Err(e) => (caps::query_all(false, &q)?, Some(format!("NV view unavailable: {e}"))),
        }
    };
    let cuda = cuda_ordinals(&list);
    if args.json {
        let mut devices = serde_json::to_value(&list).expect("serialisable");
        for (i, d) in devices.as_array_mut().into_iter().flatten().enumerate() {
            d["cuda_ordinal"] = serde_json::json!(cuda.as_ref().ok().and_then(|o| o[i]));
        }
        crate::support::json::print(
            serde_json::json!({ "devices": devices, "note": nv_note, "cuda_note": cuda.as_ref().err() }),
        );
    } else {
        for (i, c) in list.iter().enumerate() {
            print(c, cuda.as_ref().map(|o| o[i]).map_err(|e| e.as_str()));
        }
        if let Some(n) = nv_note {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
