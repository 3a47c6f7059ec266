//! The second process of `demo` and `bench` (the hidden `extmem peer`): started by them,
//! connected over a Unix socket, with a VkInstance of its own (core KHR path: the importer
//! needs no NV extension), or CUDA ([`crate::peer_cuda`]).

use crate::timing::{monotonic_ns, step, T0_VAR};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::{self, writeback_seed};
use extmem::transport::{Channel, Message};
use extmem::Handoff;
use extmem::{Context, ContextOptions, SharedMemory};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of the hidden `extmem peer`.
#[derive(clap::Args)]
pub struct Args {
    /// The producer's socket.
    #[arg(long)]
    socket: PathBuf,
    /// Enable the Khronos validation layer and fail on any message.
    #[arg(long)]
    validate: bool,
    /// On FrameReady only probe the first 4 KiB (benchmarks), instead of checking every byte
    /// and writing back (demo).
    #[arg(long)]
    probe: bool,
    /// Consume with CUDA instead of a second VkInstance.
    #[arg(long)]
    cuda: bool,
    /// Consume with OpenGL (EGL, no window) instead of a second VkInstance.
    #[arg(long, conflicts_with = "cuda")]
    gl: bool,
    /// Consume pooled hand-offs (`bench --pool`): see `peer_pool`.
    #[arg(long)]
    pool: bool,
    /// The Vulkan queue kind (general, compute, transfer).
    #[arg(long, default_value = "general")]
    queue: extmem::QueueKind,
    /// With --cuda: consume on this CUDA device, whichever GPU the memory is on.
    #[arg(long, requires = "cuda")]
    consumer_gpu: Option<usize>,
    /// With --consumer-gpu: copy memory of another GPU peer to peer instead of refusing it.
    #[arg(long, requires = "consumer_gpu")]
    peer_copy: bool,
}

/// Fault injection for the tests: `EXTMEM_PEER_DIE_AT=<step>` makes the peer die at once
/// (SIGKILL, as a crash or the OOM killer would; no unwinding, no core file) at that step:
/// `connected`, `share`, `frame` or `pool-share`.
pub(crate) fn maybe_die(step: &str) {
    if std::env::var("EXTMEM_PEER_DIE_AT").is_ok_and(|s| s == step) {
        eprintln!("[consumer] dying at {step} (EXTMEM_PEER_DIE_AT)");
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

fn fail(channel: &Channel, detail: String) -> extmem::Result<ExitCode> {
    let _ = channel.send(&Message::Verdict { ok: false, detail: detail.clone() }, &[]);
    eprintln!("[consumer] FAIL: {detail}");
    Ok(ExitCode::FAILURE)
}

pub fn main(args: Args) -> extmem::Result<ExitCode> {
    let start = std::env::var(T0_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or_else(monotonic_ns);
    let channel = Channel::connect(&args.socket)?;
    maybe_die("connected");
    let quiet = std::env::var_os("EXTMEM_PEER_QUIET").is_some();
    if let Some(ordinal) = args.consumer_gpu {
        return crate::peer_cuda_other_gpu::run(&channel, start, quiet, ordinal, args.peer_copy);
    }
    if args.pool {
        return crate::peer_pool::run(&channel, args.cuda, args.validate);
    }
    if args.cuda {
        return crate::peer_cuda::run(&channel, start, quiet, args.probe);
    }
    if args.gl {
        return crate::peer_gl::run(&channel, start, quiet);
    }
    let ctx =
        Context::new(&ContextOptions::default().validation(args.validate).app_name("extmem peer").queue(args.queue))?;
    let mut shared: Option<SharedMemory> = None;
    let mut semaphore: Option<extmem::sync::SharedSemaphore> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        match message {
            Message::Share(desc) => {
                maybe_die("share");
                let fd = fds.pop().expect("checked by recv");
                let imported = SharedMemory::import(&ctx, &desc, fd)?;
                if !quiet {
                    step(
                        start,
                        format_args!(
                            "imported {} bytes ({}, dedicated {}) into its own VkInstance on {}",
                            desc.allocation_size,
                            desc.handle_type,
                            desc.dedicated,
                            ctx.device_name()
                        ),
                    );
                }
                let previous = shared.replace(imported);
                channel.send(&Message::Verdict { ok: true, detail: "imported".into() }, &[])?;
                if args.probe {
                    // Benchmarks time the hand-off up to the first verdict; releasing the
                    // previous import is reported apart, so it stays out of the next timing.
                    drop(previous);
                    channel.send(&Message::Verdict { ok: true, detail: "released".into() }, &[])?;
                }
            }
            Message::ShareSemaphore => {
                let fd = fds.pop().expect("checked by recv");
                semaphore = Some(extmem::sync::SharedSemaphore::import(&ctx, fd)?);
                if !quiet {
                    step(start, "imported the timeline semaphore");
                }
            }
            Message::FrameReady { frame } => {
                maybe_die("frame");
                let Some(s) = shared.as_ref() else { return fail(&channel, "FrameReady before Share".into()) };
                let frames = FrameProtocol::new(&channel, Role::Consumer).semaphore(semaphore.as_ref());
                let f = Frame::new(frame);
                if args.probe {
                    let head = s.read_prefix(4096, Handoff::host())?;
                    if let Some((at, seen, want)) = pattern::first_mismatch(&head, 0) {
                        return fail(
                            &channel,
                            format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"),
                        );
                    }
                    frames.signal_done(f)?;
                    continue;
                }
                let data = s.read(frames.before(f))?;
                if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
                    return fail(&channel, format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"));
                }
                s.write(&pattern::fill(data.len(), writeback_seed(frame)), frames.after(f))?;
                if !quiet {
                    step(
                        start,
                        format_args!(
                            "frame {frame}: all {} bytes match the pattern; wrote its own pattern back",
                            data.len()
                        ),
                    );
                }
                frames.signal_done(f)?;
            }
            Message::HostBytes { len } => {
                // The copying baseline: map the host copy and upload it into memory of our own.
                let fd = fds.pop().expect("checked by recv");
                let local = match &shared {
                    Some(s) if s.data_len()? == len => s,
                    _ => {
                        let desc = extmem::BufferDesc {
                            size: len,
                            usage: extmem::vk::BufferUsageFlags::TRANSFER_DST
                                | extmem::vk::BufferUsageFlags::TRANSFER_SRC,
                        };
                        shared = Some(SharedMemory::new_buffer(
                            &ctx,
                            desc,
                            extmem::HandleType::OpaqueFd,
                            extmem::Dedicated::Always,
                        )?);
                        shared.as_ref().expect("just set")
                    }
                };
                let map = extmem::host::HostMapping::open(fd, len as usize)?;
                // SAFETY: the producer wrote the bytes before sending them; nothing writes now.
                local.write(unsafe { map.bytes() }, Handoff::host())?;
                // Unmapped and closed before the reply: the last close frees the memfd's pages
                // (tens of ms per GiB), which otherwise delayed the next hand-off's import and
                // was counted in the zero-copy timing.
                drop(map);
                channel.send(&Message::Verdict { ok: true, detail: "copied".into() }, &[])?;
            }
            Message::Bye => break,
            other => return fail(&channel, format!("unexpected {}", other.name())),
        }
    }
    drop(shared);
    drop(semaphore);
    let messages = ctx.validation_messages();
    if !messages.is_empty() {
        eprintln!("[consumer] FAIL: {} validation message(s)", messages.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
