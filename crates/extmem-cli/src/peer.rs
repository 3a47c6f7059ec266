//! The second process of `demo` and `bench`: started by them, connected over a Unix socket,
//! with a VkInstance of its own (core KHR path: the importer needs no NV extension).

use extmem::transport::socket::{socket_dir, Listener};
use extmem::transport::{Channel, Message};
use extmem::{pattern, Context, ContextOptions, SharedMemory};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

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
    /// The Vulkan queue kind (general, compute, transfer).
    #[arg(long, default_value = "general")]
    queue: extmem::QueueKind,
}

pub use extmem::pattern::writeback_seed;

/// A started peer process and the connection to it.
pub struct Peer {
    pub child: Child,
    pub channel: Channel,
    _listener: Listener,
}

impl Peer {
    /// Starts `extmem peer` and waits for it to connect.
    pub fn spawn(validate: bool, t0: u64, extra: &[&str]) -> extmem::Result<Peer> {
        let exe =
            std::env::current_exe().map_err(|e| extmem::Error::Io { context: "current_exe".into(), source: e })?;
        let mut cmd = Command::new(exe);
        cmd.arg("peer").args(extra);
        if validate {
            cmd.arg("--validate");
        }
        Self::spawn_command(cmd, t0)
    }

    /// Starts `cmd --socket <path>` (any consumer that speaks the protocol, a Python one say)
    /// and waits for it to connect.
    pub fn spawn_command(mut cmd: Command, t0: u64) -> extmem::Result<Peer> {
        let path = socket_dir().join(format!("peer-{}-{}.sock", std::process::id(), monotonic_ns()));
        let listener = Listener::bind(&path)?;
        cmd.arg("--socket").arg(&path).env(T0_VAR, t0.to_string());
        let mut child =
            cmd.spawn().map_err(|e| extmem::Error::Io { context: "starting the peer process".into(), source: e })?;
        match listener.accept(Duration::from_secs(60)) {
            Ok(channel) => Ok(Peer { child, channel, _listener: listener }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Says Bye and waits for the process; `Ok(true)` when it exited successfully.
    pub fn finish(mut self) -> extmem::Result<bool> {
        let _ = self.channel.send(&Message::Bye, &[]);
        let status =
            self.child.wait().map_err(|e| extmem::Error::Io { context: "waiting for the peer".into(), source: e })?;
        Ok(status.success())
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: one time base for both processes, so that their step
/// lines read as one timeline.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The environment variable through which the producer passes its start time.
pub const T0_VAR: &str = "EXTMEM_T0_NS";

/// Prints one step of the consumer, timed from the producer's start.
pub fn step(t0: u64, text: impl std::fmt::Display) {
    println!("[consumer] {:>9.3} ms  {text}", monotonic_ns().saturating_sub(t0) as f64 / 1e6);
    let _ = std::io::stdout().flush();
}

/// Fault injection for the tests: `EXTMEM_PEER_DIE_AT=<step>` makes the peer die at once
/// (SIGKILL, as a crash or the OOM killer would; no unwinding, no core file) at that step:
/// `connected`, `share` or `frame`.
fn maybe_die(step: &str) {
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
    if args.cuda {
        return crate::peer_cuda::run(&channel, start, quiet, args.probe);
    }
    if args.gl {
        return crate::peer_gl::run(&channel, start, quiet);
    }
    let ctx = Context::new(&ContextOptions {
        validation: args.validate,
        app_name: "extmem peer".into(),
        queue: args.queue,
        ..Default::default()
    })?;
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
                if args.probe {
                    let head = s.read_prefix(4096)?;
                    if let Some((at, seen, want)) = pattern::first_mismatch(&head, 0) {
                        return fail(
                            &channel,
                            format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"),
                        );
                    }
                    extmem::sync::signal_done(&channel, frame)?;
                    continue;
                }
                let sem = semaphore.as_ref();
                let data = s.read_synced(sem.map(|x| (x, 2 * frame + 1)), None)?;
                if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
                    return fail(&channel, format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"));
                }
                s.write_synced(
                    &pattern::fill(data.len(), writeback_seed(frame)),
                    None,
                    sem.map(|x| (x, 2 * frame + 2)),
                )?;
                if !quiet {
                    step(
                        start,
                        format_args!(
                            "frame {frame}: all {} bytes match the pattern; wrote its own pattern back",
                            data.len()
                        ),
                    );
                }
                extmem::sync::signal_done(&channel, frame)?;
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
                local.write(unsafe { map.bytes() })?;
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
