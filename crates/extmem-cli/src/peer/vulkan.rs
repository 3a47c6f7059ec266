//! The Vulkan consumer (`extmem peer`, the default): a VkInstance of its own (core KHR path:
//! the importer needs no NV extension) that imports what the producer shares, checks every
//! byte of each frame and writes its own pattern back (demo), or probes it (benchmarks), and
//! takes the copying baseline's host bytes.

use crate::peer::verdict::fail;
use crate::support::error::Result;
use crate::support::fault::maybe_die;
use crate::support::timing::step;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::{self, writeback_seed};
use extmem::transport::{Channel, Message};
use extmem::Handoff;
use extmem::{Context, ContextOptions, QueueKind, SharedMemory};
use std::process::ExitCode;

/// What the Vulkan consumer was asked for.
pub struct Options {
    /// The producer's start (`monotonic_ns`).
    pub start: u64,
    /// No step lines.
    pub quiet: bool,
    /// Probe 4 KiB per frame instead of checking and writing back.
    pub probe: bool,
    /// The Khronos validation layer on; any message fails.
    pub validate: bool,
    /// The queue kind.
    pub queue: QueueKind,
}

/// Runs the Vulkan consumer on `channel` until the producer's Bye.
pub fn run(channel: &Channel, o: &Options) -> Result<ExitCode> {
    let (start, quiet) = (o.start, o.quiet);
    let ctx =
        Context::new(&ContextOptions::default().validation(o.validate).app_name("extmem peer").queue(o.queue))?;
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
                if o.probe {
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
                let Some(s) = shared.as_ref() else { return fail(channel, "FrameReady before Share".into()) };
                let frames = FrameProtocol::new(channel, Role::Consumer).semaphore(semaphore.as_ref());
                let f = Frame::new(frame);
                if o.probe {
                    let head = s.read_prefix(4096, Handoff::host())?;
                    if let Some((at, seen, want)) = pattern::first_mismatch(&head, 0) {
                        return fail(
                            channel,
                            format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"),
                        );
                    }
                    frames.signal_done(f)?;
                    continue;
                }
                let data = s.read(frames.before(f))?;
                if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
                    return fail(channel, format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"));
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
            other => return fail(channel, format!("unexpected {}", other.name())),
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
