//! `extmem caps`: the capability matrix of every physical device.

use extmem::caps::{self, Capabilities, Features};
use std::process::ExitCode;

/// Arguments of `extmem caps`.
#[derive(clap::Args)]
pub struct Args {
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

fn print(c: &Capabilities) {
    println!("device {}: {} ({}, Vulkan {})", c.index, c.name, c.device_type, c.api_version);
    println!("  device UUID {}  driver UUID {}", c.device_uuid, c.driver_uuid);
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

pub fn main(args: Args) -> extmem::Result<ExitCode> {
    let q = caps::Query::default();
    let (list, nv_note) = if args.no_nv {
        (caps::query_all(false, &q)?, None)
    } else {
        match caps::query_all(true, &q) {
            Ok(l) => (l, None),
            Err(e) => (caps::query_all(false, &q)?, Some(format!("NV view unavailable: {e}"))),
        }
    };
    if args.json {
        let out = serde_json::json!({ "devices": list, "note": nv_note });
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
    } else {
        for c in &list {
            print(c);
        }
        if let Some(n) = nv_note {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
