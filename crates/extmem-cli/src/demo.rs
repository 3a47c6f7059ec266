//! `extmem demo`: the producer side of the cross-process sharing demo.
//!
//! The producer (this process) makes an image exportable through VK_NV_external_memory (the
//! layer translates it), writes a pattern with the GPU's copy engine, moves it to `GENERAL`
//! released to `VK_QUEUE_FAMILY_EXTERNAL`, exports it and sends it over a Unix socket. The
//! consumer (a second process, its own VkInstance) imports it, checks every byte, writes its
//! own pattern back, and the producer checks that.

use crate::child::Peer;
use crate::timing::monotonic_ns;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::writeback_seed;
use extmem::sync::SharedSemaphore;
use extmem::transport::Message;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, ImageDesc, PathKind, QueueKind,
    SharedMemory,
};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `extmem demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Frames to hand back and forth (each checked byte for byte on both sides).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Image width.
    #[arg(long, default_value_t = 1920, value_parser = clap::value_parser!(u32).range(1..=65536))]
    width: u32,
    /// Image height.
    #[arg(long, default_value_t = 1080, value_parser = clap::value_parser!(u32).range(1..=65536))]
    height: u32,
    /// Share a buffer of width*height*4 bytes instead of an image.
    #[arg(long)]
    buffer: bool,
    /// Share a buffer in host memory (VK_EXT_external_memory_host: a memfd each process maps
    /// and imports by pointer; works across devices and drivers). With --cuda, CUDA registers
    /// the pages (cuMemHostRegister).
    #[arg(long, conflicts_with = "torch")]
    host_memory: bool,
    /// The consumer is CUDA (a process without Vulkan) instead of a second VkInstance; shares a
    /// buffer (CUDA sees linear bytes, not an image's tiling).
    #[arg(long, conflicts_with = "torch")]
    cuda: bool,
    /// The consumer is this Python script (run with python3), e.g.
    /// python/examples/torch_consumer.py: PyTorch gets each frame as a tensor through DLPack.
    #[arg(long, value_name = "SCRIPT")]
    torch: Option<std::path::PathBuf>,
    /// The reverse direction: this Python script (run with python3, e.g.
    /// python/examples/torch_producer.py) is a PyTorch producer that makes CUDA memory
    /// exportable and fills it; this process imports it into Vulkan and checks it (NVIDIA only).
    /// The buffer holds width*height*4 bytes.
    #[arg(long, value_name = "SCRIPT", conflicts_with_all = ["cuda", "torch", "host_memory", "gl", "khr", "buffer"])]
    torch_producer: Option<std::path::PathBuf>,
    /// With --torch-producer: after the checked frames, the script times this many round trips
    /// that touch 4 bytes each and prints the first hand-off and the per-frame cost.
    #[arg(long, default_value_t = 0, requires = "torch_producer")]
    bench: u64,
    /// The consumer is an OpenGL process (EGL without a window): it imports the image as a
    /// texture (the buffer as a buffer object), checks it and writes back through GL.
    #[arg(long, conflicts_with_all = ["cuda", "torch", "host_memory"])]
    gl: bool,
    /// Make the memory exportable with the core KHR structures instead of the NV extension.
    #[arg(long)]
    khr: bool,
    /// Enable the Khronos validation layer in both processes; any message fails the demo.
    #[arg(long)]
    validate: bool,
    /// Print a JSON summary instead of the step log.
    #[arg(long)]
    json: bool,
    /// How the two sides order their GPU work: `semaphore` (a shared timeline semaphore, GPU
    /// waits), `host` (each side waits for its own fence, then says so on the socket), or
    /// `auto` (semaphore where both drivers can share one).
    #[arg(long, value_enum, default_value_t = SyncMode::Auto)]
    sync: SyncMode,
    /// The Vulkan queue both Vulkan processes submit to: general, compute, or transfer (a
    /// transfer-only family, the copy engines: the fast choice when CUDA works on the same GPU,
    /// see `extmem bench --cuda`).
    #[arg(long, default_value = "general")]
    queue: QueueKind,
    #[command(flatten)]
    timeouts: crate::child::Timeouts,
    /// Multi-GPU options (every GPU at once, a CUDA consumer on another GPU).
    #[command(flatten)]
    gpus: crate::demo_gpus::GpuArgs,
}

/// Frame synchronisation between the two processes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Semaphore where supported, else host.
    Auto,
    /// Host fences and socket messages only.
    Host,
    /// A shared timeline semaphore (fails where the driver cannot export one).
    Semaphore,
}

#[derive(Serialize)]
struct Step {
    ms: f64,
    what: String,
}

struct Log {
    t0: u64,
    steps: Vec<Step>,
    quiet: bool,
}

impl Log {
    fn step(&mut self, what: impl Into<String>) {
        let ms = monotonic_ns().saturating_sub(self.t0) as f64 / 1e6;
        let what = what.into();
        if !self.quiet {
            println!("[producer] {ms:>9.3} ms  {what}");
            let _ = std::io::stdout().flush();
        }
        self.steps.push(Step { ms, what });
    }
}

pub fn main(args: Args) -> extmem::Result<ExitCode> {
    crate::child::set_timeouts(args.timeouts);
    if args.gpus.all_gpus {
        return crate::demo_gpus::all_gpus(args.cuda || args.torch.is_some());
    }
    let path = if args.khr { PathKind::Khr } else { PathKind::Nv };
    let mut log = Log { t0: monotonic_ns(), steps: Vec::new(), quiet: args.json };
    if args.json {
        // The consumer's step lines would mix into the JSON.
        // SAFETY: no other thread exists yet; the child inherits the variable.
        unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    }
    let ctx = Context::new(
        &ContextOptions::default().path(path).validation(args.validate).app_name("extmem demo").queue(args.queue),
    )?;
    if let Some(script) = &args.torch_producer {
        let options = crate::demo_torch_producer::Options {
            script,
            frames: args.frames,
            bench: args.bench,
            bytes: args.width as u64 * args.height as u64 * 4,
            sync: args.sync,
            t0: log.t0,
        };
        return crate::demo_torch_producer::run(&ctx, &options);
    }
    log.step(match path {
        PathKind::Nv => format!("{}: instance with VK_NV_external_memory_capabilities, device with VK_NV_external_memory (through the extmem layer)", ctx.device_name()),
        _ => format!("{}: core external memory (no layer)", ctx.device_name()),
    });
    let peer = match &args.torch {
        Some(script) => {
            let mut cmd = std::process::Command::new("python3");
            cmd.arg(script);
            Peer::spawn_command(cmd, log.t0)?
        }
        None => {
            let queue = format!("{:?}", args.queue).to_lowercase();
            let mut extra: Vec<String> = if args.cuda {
                vec!["--cuda".into()]
            } else if args.gl {
                vec!["--gl".into()]
            } else {
                vec!["--queue".into(), queue]
            };
            extra.extend(args.gpus.peer_args());
            Peer::spawn(args.validate, log.t0, &extra.iter().map(String::as_str).collect::<Vec<_>>())?
        }
    };
    let consumer_kind = if args.torch.is_some() {
        "PyTorch"
    } else if args.gl {
        "OpenGL"
    } else if args.cuda {
        "CUDA"
    } else {
        "Vulkan"
    };
    let buffer = args.buffer || args.cuda || args.host_memory;
    let handle_type = if args.host_memory { HandleType::HostAllocation } else { HandleType::OpaqueFd };
    log.step(format!("{consumer_kind} consumer process {} connected (same uid checked)", peer.child.id()));

    let mut usage =
        vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::SAMPLED;
    if args.gl {
        usage |= vk::ImageUsageFlags::COLOR_ATTACHMENT; // GL writes it through a framebuffer
    }
    let shared = if buffer {
        let size = args.width as u64 * args.height as u64 * 4;
        let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
        SharedMemory::new_buffer(&ctx, desc, handle_type, Dedicated::Always)?
    } else {
        let mut desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, args.width, args.height, usage);
        if args.torch.is_some() {
            // PyTorch addresses the texels: a LINEAR image, whose row pitch travels with it.
            desc.tiling = vk::ImageTiling::LINEAR;
            desc.usage = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
        }
        SharedMemory::new_image(&ctx, desc, HandleType::OpaqueFd, Dedicated::Always)?
    };
    let len = shared.data_len()? as usize;
    log.step(format!(
        "created {} ({}), {} bytes of {}",
        if buffer {
            format!("a {len}-byte buffer")
        } else {
            let linear = if args.torch.is_some() {
                format!(" LINEAR (row pitch {})", shared.row_pitch())
            } else {
                String::new()
            };
            format!("a {}x{} R8G8B8A8_UNORM{linear} image", args.width, args.height)
        },
        match (path, buffer) {
            _ if args.host_memory => "a memfd mapped here and imported with VkImportMemoryHostPointerInfoEXT",
            (PathKind::Nv, false) =>
                "VkExternalMemoryImageCreateInfoNV + VkExportMemoryAllocateInfoNV, OPAQUE_WIN32 backed by an opaque fd",
            (PathKind::Nv, true) => "VkExportMemoryAllocateInfoNV, OPAQUE_WIN32 backed by an opaque fd",
            _ => "VkExternalMemory*CreateInfo + VkExportMemoryAllocateInfo, OPAQUE_FD",
        },
        shared.allocation_size(),
        if args.host_memory { "host memory" } else { "dedicated exportable memory" }
    ));

    let semaphore = match args.sync {
        SyncMode::Host => None,
        SyncMode::Semaphore => Some(SharedSemaphore::new_timeline(&ctx)?),
        SyncMode::Auto => extmem::sync::can_share_semaphores(&ctx, extmem::sync::SemaphoreKind::Timeline)
            .then(|| SharedSemaphore::new_timeline(&ctx))
            .transpose()?,
    };
    let progress = args.frames > 1 && !args.json;
    let tty = std::io::stderr().is_terminal();
    let mut failure = None;
    let loop_start = Instant::now();
    let frames = FrameProtocol::new(&peer.channel, Role::Producer).semaphore(semaphore.as_ref());
    for frame in 0..args.frames {
        // With a semaphore: this frame's write waits for the consumer's previous write-back on
        // the GPU and signals `ready`; the read-back waits for the consumer's `done`.
        let f = Frame::new(frame);
        shared.write(&pattern::fill(len, frame), frames.around(f))?;
        if frame == 0 {
            log.step(
                "frame 0: pattern written by the GPU's copy engine; GENERAL, released to VK_QUEUE_FAMILY_EXTERNAL",
            );
            let (desc, fd) = shared.export()?;
            peer.channel.send(&Message::Share(desc), &[std::os::fd::AsFd::as_fd(&fd)])?;
            drop(fd); // the consumer holds its own copy of the descriptor now
            log.step(if args.host_memory {
                "sent the descriptor and a duplicate of the memfd over the socket"
            } else {
                "exported with vkGetMemoryFdKHR and sent the descriptor and fd over the socket"
            });
            match peer.channel.recv_plain("Verdict")? {
                Message::Verdict { ok: true, .. } => log.step("consumer imported it"),
                other => return Err(extmem::Error::Protocol(format!("expected the import verdict, got {other:?}"))),
            }
            if let Some(s) = &semaphore {
                let fd = s.export()?;
                peer.channel.send(&Message::ShareSemaphore, &[std::os::fd::AsFd::as_fd(&fd)])?;
                drop(fd);
                log.step("shared a timeline semaphore (opaque fd): the two sides' GPU work is ordered on the GPU");
            } else {
                log.step("synchronisation: host fences + socket messages (the driver cannot share semaphores)");
            }
        }
        frames.signal_ready(f)?;
        frames.wait_done(f)?;
        let back = shared.read(frames.after_peer(f))?;
        if let Some((at, seen, want)) = pattern::first_mismatch(&back, writeback_seed(frame)) {
            failure = Some(format!(
                "frame {frame}: the consumer's write-back differs at byte {at}: {seen:#04x}, expected {want:#04x}"
            ));
            break;
        }
        if frame == 0 {
            log.step(format!("frame 0: the consumer's write-back verified, all {len} bytes"));
        }
        if progress && (frame + 1) % (args.frames / 20).max(1) == 0 {
            let fps = (frame + 1) as f64 / loop_start.elapsed().as_secs_f64();
            if tty {
                eprint!("\r[producer] frames {}/{} ({fps:.1} frames/s)   ", frame + 1, args.frames);
            } else {
                eprintln!("[producer] frames {}/{} ({fps:.1} frames/s)", frame + 1, args.frames);
            }
        }
    }
    if progress && tty {
        eprintln!();
    }
    let frames_per_s = args.frames as f64 / loop_start.elapsed().as_secs_f64();
    let semaphore_used = semaphore.is_some();
    drop(shared);
    drop(semaphore);
    let consumer_ok = peer.finish()?;
    let messages = ctx.validation_messages();
    if failure.is_none() && !consumer_ok {
        failure = Some("the consumer process failed".into());
    }
    if failure.is_none() && !messages.is_empty() {
        failure = Some(format!("{} validation message(s)", messages.len()));
    }
    let summary = format!(
        "{} frame(s) of {len} bytes, each checked byte for byte by the consumer and its write-back by the producer ({frames_per_s:.1} round trips/s)",
        args.frames
    );
    if args.json {
        let out = serde_json::json!({
            "result": if failure.is_none() { "PASS" } else { "FAIL" },
            "failure": failure,
            "path": if path == PathKind::Nv { "nv" } else { "khr" },
            "consumer": consumer_kind,
            "sync": if semaphore_used { "timeline-semaphore" } else { "host" },
            "handle_type": handle_type.name(),
            "device": ctx.device_name(),
            "frames": args.frames,
            "bytes_per_frame": len,
            "round_trips_per_s": frames_per_s,
            "steps": log.steps,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
    } else {
        match &failure {
            None => println!("PASS: {summary}"),
            Some(f) => println!("FAIL: {f}"),
        }
    }
    Ok(if failure.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
