//! `extmem demo`: the producer side of the cross-process sharing demo.
//!
//! The producer (this process) makes an image exportable through VK_NV_external_memory (the
//! layer translates it), writes a pattern with the GPU's copy engine, moves it to `GENERAL`
//! released to `VK_QUEUE_FAMILY_EXTERNAL`, exports it and sends it over a Unix socket. The
//! consumer (a second process: Vulkan, CUDA, OpenGL, PyTorch or numpy) imports it, checks
//! every byte, writes its own pattern back, and the producer checks that. The run, step by
//! step: resolve the flags, start the consumer, create the memory, share it (frame 0), hand
//! the frames back and forth, report.

mod consumer;
#[cfg(test)]
mod flags_test;
mod gpus;
mod log;
mod sync;
mod torch_producer;

use crate::demo::consumer::{Consumer, Flags, Memory, Plan};
use crate::demo::log::Log;
use crate::demo::sync::SyncMode;
use crate::support::child::Peer;
use crate::support::error::{CliError, Result};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::writeback_seed;
use extmem::sync::SharedSemaphore;
use extmem::transport::Message;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, ImageDesc, PathKind, QueueKind, SharedMemory,
};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Cross-process demo: a producer shares an image made exportable through VK_NV_external_memory
/// with a consumer process that checks every byte and writes back.
#[derive(clap::Parser)]
#[command(name = "demo")]
struct Args {
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
    /// The consumer process [default: vulkan].
    #[arg(long, value_enum, value_name = "CONSUMER")]
    consumer: Option<Consumer>,
    /// The memory shared [default: device; host with --consumer numpy]. Host memory is a
    /// buffer (with --consumer cuda, CUDA registers the pages: cuMemHostRegister).
    #[arg(long, value_enum, value_name = "MEMORY")]
    memory: Option<Memory>,
    /// The Python consumer's script (run with $EXTMEM_PYTHON, $PYTHON or python3): needed by
    /// --consumer torch (python/examples/torch_consumer.py), optional for numpy.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Old spelling of --consumer cuda.
    #[arg(long, hide = true, conflicts_with_all = ["consumer", "torch"])]
    cuda: bool,
    /// Old spelling of --consumer torch --script SCRIPT.
    #[arg(long, hide = true, value_name = "SCRIPT", conflicts_with_all = ["consumer", "script"])]
    torch: Option<PathBuf>,
    /// Old spelling of --consumer gl.
    #[arg(long, hide = true, conflicts_with_all = ["consumer", "cuda", "torch", "host_memory"])]
    gl: bool,
    /// Old spelling of --memory host.
    #[arg(long, hide = true, conflicts_with_all = ["memory", "torch"])]
    host_memory: bool,
    /// The reverse direction: this Python script (e.g. python/examples/torch_producer.py) is a
    /// PyTorch producer that makes CUDA memory exportable and fills it; this process imports it
    /// into Vulkan and checks it (NVIDIA only). The buffer holds width*height*4 bytes.
    #[arg(long, value_name = "SCRIPT", conflicts_with_all = [
        "consumer", "memory", "script", "cuda", "torch", "host_memory", "gl", "khr", "buffer"
    ])]
    torch_producer: Option<PathBuf>,
    /// With --torch-producer: after the checked frames, the script times this many round trips
    /// that touch 4 bytes each and prints the first hand-off and the per-frame cost.
    #[arg(long, default_value_t = 0, requires = "torch_producer")]
    bench: u64,
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
    /// `auto` (semaphore where both sides can share one).
    #[arg(long, value_enum, default_value_t = SyncMode::Auto)]
    sync: SyncMode,
    /// The Vulkan queue both Vulkan processes submit to: general, compute, or transfer (a
    /// transfer-only family, the copy engines: the fast choice when CUDA works on the same GPU,
    /// see `extmem bench cuda`).
    #[arg(long, default_value = "general")]
    queue: QueueKind,
    #[command(flatten)]
    timeouts: crate::support::child::Timeouts,
    /// Multi-GPU options (every GPU at once, a CUDA consumer on another GPU).
    #[command(flatten)]
    gpus: gpus::GpuArgs,
}

/// The definition of `extmem demo`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem demo`.
pub fn run(matches: &ArgMatches, _tree: &Command) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(args.timeouts);
    let plan = Flags {
        consumer: args.consumer,
        memory: args.memory,
        script: args.script.clone(),
        cuda: args.cuda,
        gl: args.gl,
        torch: args.torch.clone(),
        host_memory: args.host_memory,
    }
    .resolve()?;
    if args.gpus.consumer_gpu.is_some() && plan.consumer != Consumer::Cuda {
        return Err(CliError::Usage("--consumer-gpu is for --consumer cuda".into()));
    }
    // Refused before any process starts: a CPU consumer cannot wait for a GPU semaphore.
    args.sync.check(plan.gpu_waits())?;
    if args.gpus.all_gpus {
        return gpus::all_gpus(matches!(plan.consumer, Consumer::Cuda | Consumer::Torch));
    }
    let path = if args.khr { PathKind::Khr } else { PathKind::Nv };
    let mut log = Log::new(args.json);
    if args.json {
        // The consumer's step lines would mix into the JSON.
        // SAFETY: no other thread exists yet; the child inherits the variable.
        unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    }
    let ctx = Context::new(
        &ContextOptions::default().path(path).validation(args.validate).app_name("extmem demo").queue(args.queue),
    )?;
    if let Some(script) = &args.torch_producer {
        let options = torch_producer::Options {
            script,
            frames: args.frames,
            bench: args.bench,
            bytes: args.width as u64 * args.height as u64 * 4,
            sync: args.sync,
            t0: log.t0,
        };
        return torch_producer::run(&ctx, &options);
    }
    log.step(match path {
        PathKind::Nv => format!("{}: instance with VK_NV_external_memory_capabilities, device with VK_NV_external_memory (through the extmem layer)", ctx.device_name()),
        _ => format!("{}: core external memory (no layer)", ctx.device_name()),
    });
    let peer = plan.start(args.validate, log.t0, args.queue, args.gpus.peer_args())?;
    log.step(format!("{} consumer process {} connected (same uid checked)", plan.name(), peer.child.id()));
    let shared = create(&ctx, &args, &plan, &mut log)?;
    let semaphore = args.sync.semaphore(&ctx, plan.gpu_waits())?;
    let run = hand_frames(&args, &plan, &peer, &shared, semaphore.as_ref(), &mut log)?;
    let len = shared.data_len()? as usize;
    drop(shared);
    let semaphore_used = semaphore.is_some();
    drop(semaphore);
    let consumer_ok = peer.finish()?;
    report(&args, &plan, &ctx, log, run, Finish { len, semaphore_used, consumer_ok })
}

/// Step: the shared memory, a buffer or an image, described in the log.
fn create(ctx: &Arc<Context>, args: &Args, plan: &Plan, log: &mut Log) -> Result<SharedMemory> {
    let buffer = plan.buffer(args.buffer);
    let host = plan.memory == Memory::Host;
    let torch = plan.consumer == Consumer::Torch;
    let mut usage =
        vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::SAMPLED;
    if plan.consumer == Consumer::Gl {
        usage |= vk::ImageUsageFlags::COLOR_ATTACHMENT; // GL writes it through a framebuffer
    }
    let shared = if buffer {
        let size = args.width as u64 * args.height as u64 * 4;
        let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
        SharedMemory::new_buffer(ctx, desc, plan.handle_type(), Dedicated::Always)?
    } else {
        let mut desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, args.width, args.height, usage);
        if torch {
            // PyTorch addresses the texels: a LINEAR image, whose row pitch travels with it.
            desc.tiling = vk::ImageTiling::LINEAR;
            desc.usage = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
        }
        SharedMemory::new_image(ctx, desc, plan.handle_type(), Dedicated::Always)?
    };
    let len = shared.data_len()?;
    let what = if buffer {
        format!("a {len}-byte buffer")
    } else {
        let linear = if torch { format!(" LINEAR (row pitch {})", shared.row_pitch()) } else { String::new() };
        format!("a {}x{} R8G8B8A8_UNORM{linear} image", args.width, args.height)
    };
    let how = match (args.khr, buffer) {
        _ if host => "a memfd mapped here and imported with VkImportMemoryHostPointerInfoEXT",
        (false, false) => {
            "VkExternalMemoryImageCreateInfoNV + VkExportMemoryAllocateInfoNV, OPAQUE_WIN32 backed by an opaque fd"
        }
        (false, true) => "VkExportMemoryAllocateInfoNV, OPAQUE_WIN32 backed by an opaque fd",
        _ => "VkExternalMemory*CreateInfo + VkExportMemoryAllocateInfo, OPAQUE_FD",
    };
    let memory = if host { "host memory" } else { "dedicated exportable memory" };
    log.step(format!("created {what} ({how}), {} bytes of {memory}", shared.allocation_size()));
    Ok(shared)
}

/// Step (frame 0): export, send, the consumer's import verdict, then the semaphore.
fn share(
    peer: &Peer,
    shared: &SharedMemory,
    semaphore: Option<&SharedSemaphore>,
    host: bool,
    log: &mut Log,
) -> Result<()> {
    let (desc, fd) = shared.export()?;
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd); // the consumer holds its own copy of the descriptor now
    log.step(if host {
        "sent the descriptor and a duplicate of the memfd over the socket"
    } else {
        "exported with vkGetMemoryFdKHR and sent the descriptor and fd over the socket"
    });
    match peer.channel.recv_plain("Verdict")? {
        Message::Verdict { ok: true, .. } => log.step("consumer imported it"),
        other => return Err(extmem::Error::Protocol(format!("expected the import verdict, got {other:?}")).into()),
    }
    match semaphore {
        Some(s) => {
            let fd = s.export()?;
            peer.channel.send(&Message::ShareSemaphore, &[fd.as_fd()])?;
            log.step("shared a timeline semaphore (opaque fd): the two sides' GPU work is ordered on the GPU");
        }
        None => log.step("synchronisation: host fences + socket messages (no semaphore both sides can share)"),
    }
    Ok(())
}

/// What the frames gave: the first failure, and the rate.
struct Frames {
    failure: Option<String>,
    frames_per_s: f64,
}

/// Step: every frame written, handed over, checked by the consumer, written back, checked here.
fn hand_frames(
    args: &Args,
    plan: &Plan,
    peer: &Peer,
    shared: &SharedMemory,
    semaphore: Option<&SharedSemaphore>,
    log: &mut Log,
) -> Result<Frames> {
    let len = shared.data_len()? as usize;
    let progress = args.frames > 1 && !args.json;
    let tty = std::io::stderr().is_terminal();
    let mut failure = None;
    let loop_start = Instant::now();
    let frames = FrameProtocol::new(&peer.channel, Role::Producer).semaphore(semaphore);
    for frame in 0..args.frames {
        // With a semaphore: this frame's write waits for the consumer's previous write-back on
        // the GPU and signals `ready`; the read-back waits for the consumer's `done`.
        let f = Frame::new(frame);
        shared.write(&pattern::fill(len, frame), frames.around(f))?;
        if frame == 0 {
            log.step(
                "frame 0: pattern written by the GPU's copy engine; GENERAL, released to VK_QUEUE_FAMILY_EXTERNAL",
            );
            share(peer, shared, semaphore, plan.memory == Memory::Host, log)?;
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
    Ok(Frames { failure, frames_per_s: args.frames as f64 / loop_start.elapsed().as_secs_f64() })
}

/// How the run ended, beside the frames.
struct Finish {
    len: usize,
    semaphore_used: bool,
    consumer_ok: bool,
}

/// Step: the verdict, as a PASS/FAIL line or a JSON summary.
fn report(args: &Args, plan: &Plan, ctx: &Context, log: Log, run: Frames, end: Finish) -> Result<ExitCode> {
    let messages = ctx.validation_messages();
    let failure = run
        .failure
        .or_else(|| (!end.consumer_ok).then(|| "the consumer process failed".to_string()))
        .or_else(|| (!messages.is_empty()).then(|| format!("{} validation message(s)", messages.len())));
    let len = end.len;
    if args.json {
        crate::support::json::print(serde_json::json!({
            "result": if failure.is_none() { "PASS" } else { "FAIL" },
            "failure": failure,
            "path": if args.khr { "khr" } else { "nv" },
            "consumer": plan.name(),
            "sync": if end.semaphore_used { "timeline-semaphore" } else { "host" },
            "handle_type": plan.handle_type().name(),
            "device": ctx.device_name(),
            "frames": args.frames,
            "bytes_per_frame": len,
            "round_trips_per_s": run.frames_per_s,
            "steps": log.steps,
        }));
    } else {
        match &failure {
            None => println!(
                "PASS: {} frame(s) of {len} bytes, each checked byte for byte by the consumer and its write-back by the producer ({:.1} round trips/s)",
                args.frames, run.frames_per_s
            ),
            Some(f) => println!("FAIL: {f}"),
        }
    }
    Ok(if failure.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
