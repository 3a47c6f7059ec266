//! `extmem demo --torch-producer SCRIPT`: the reverse direction. A PyTorch process (the script)
//! makes CUDA memory exportable and fills it; this process is the Vulkan consumer: it imports
//! the memory as an opaque fd (NVIDIA only; outside the letter of the Vulkan specification, see
//! `Descriptor::NO_DRIVER_UUID`), checks every byte of each frame, writes its own pattern back,
//! and hands the frame back; the script checks that.
//!
//! Synchronisation: CUDA imports semaphores but cannot export them, so this side makes the
//! timeline semaphore and sends it to the script (before its import verdict), and the frame
//! protocol runs with the roles swapped: the script signals each frame's `ready` value on
//! torch's stream, this side's GPU waits for it and signals `done`, which torch's stream waits
//! for. With host synchronisation the script waits for its stream and
//! this side for its fences before each message.

use crate::demo::sync::SyncMode;
use crate::support::child::Peer;
use crate::support::error::Result;
use crate::support::timing::monotonic_ns;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::{self, writeback_seed};
use extmem::sync::SharedSemaphore;
use extmem::transport::Message;
use extmem::{Context, SharedMemory};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// What the demo was asked for.
pub struct Options<'a> {
    /// The producer script.
    pub script: &'a Path,
    /// Frames checked byte for byte.
    pub frames: u64,
    /// Round trips the script times after them (4 bytes probed each).
    pub bench: u64,
    /// Bytes of the shared buffer.
    pub bytes: u64,
    /// How the two sides synchronise.
    pub sync: SyncMode,
    /// The demo's start (`monotonic_ns`).
    pub t0: u64,
}

fn say(t0: u64, text: std::fmt::Arguments<'_>) {
    println!("[vulkan]   {:>9.3} ms  {text}", monotonic_ns().saturating_sub(t0) as f64 / 1e6);
}

/// Runs the Vulkan side on `ctx` until the script's Bye.
pub fn run(ctx: &Arc<Context>, o: &Options<'_>) -> Result<ExitCode> {
    let mut cmd = crate::support::python::command();
    cmd.arg(o.script).args(["--frames", &o.frames.to_string(), "--bytes", &o.bytes.to_string()]);
    if o.bench > 0 {
        cmd.args(["--bench", &o.bench.to_string()]);
    }
    let peer = Peer::spawn_command(cmd, o.t0)?;
    say(o.t0, format_args!("PyTorch producer process {} connected (same uid checked)", peer.child.id()));
    let (desc, fd) = peer.channel.recv_share()?;
    let shared = match SharedMemory::import(ctx, &desc, fd) {
        Ok(s) => s,
        Err(e) => {
            let _ = peer.channel.send(&Message::Verdict { ok: false, detail: e.to_string() }, &[]);
            return Err(e.into());
        }
    };
    let memory_type = ctx.memory_properties().memory_types[shared.descriptor().memory_type_index as usize];
    say(
        o.t0,
        format_args!(
            "imported {} bytes of CUDA memory (opaque fd from cuMemExportToShareableHandle{}) into memory type {} ({:?})",
            desc.allocation_size,
            if desc.from_other_api() { ", no driver UUID: device UUID checked" } else { "" },
            shared.descriptor().memory_type_index,
            memory_type.property_flags
        ),
    );
    let semaphore: Option<SharedSemaphore> = o.sync.semaphore(ctx, true)?;
    if let Some(s) = &semaphore {
        let fd = s.export()?;
        peer.channel.send(&Message::ShareSemaphore, &[fd.as_fd()])?;
        say(
            o.t0,
            format_args!("sent a timeline semaphore the other way (CUDA cannot export one): GPU waits on both sides"),
        );
    } else {
        say(o.t0, format_args!("synchronisation: host (torch's stream and this side's fences waited for)"));
    }
    peer.channel.send(&Message::Verdict { ok: true, detail: "imported into Vulkan".into() }, &[])?;
    let len = shared.data_len()? as usize;
    let frames = FrameProtocol::new(&peer.channel, Role::Consumer).semaphore(semaphore.as_ref());
    let mut failure = None;
    let mut next = 0;
    loop {
        // The script ends with Bye where FrameReady would come: `recv_plain` treats that as a
        // failure, so the message is taken as it is (a descriptor with it is refused).
        let frame = match peer.channel.recv()? {
            (Message::FrameReady { frame }, fds) if frame == next && fds.is_empty() => frame,
            (Message::Bye, fds) if fds.is_empty() => break,
            (other, _) => {
                return Err(extmem::Error::Protocol(format!("expected FrameReady {next} or Bye, got {other:?}")).into())
            }
        };
        next += 1;
        let f = Frame::new(frame);
        if frame >= o.frames {
            // A timed round trip: the script touched 4 bytes; read them after its work.
            let data = shared.read(frames.around(f))?;
            if data[..4] != [frame as u8; 4] {
                failure = Some(format!("round trip {frame}: the first bytes are {:?}", &data[..4]));
                break;
            }
            frames.signal_done(f)?;
            continue;
        }
        let data = shared.read(frames.before(f))?;
        if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
            failure = Some(format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}"));
            break;
        }
        shared.write(&pattern::fill(len, writeback_seed(frame)), frames.after(f))?;
        say(o.t0, format_args!("frame {frame}: all {len} bytes torch wrote match; wrote this side's pattern back"));
        frames.signal_done(f)?;
    }
    drop(shared);
    drop(semaphore);
    let script_ok = peer.finish()?;
    let messages = ctx.validation_messages();
    for m in &messages {
        eprintln!("[vulkan] validation: {m}");
    }
    let failure = failure
        .or_else(|| (!script_ok).then(|| "the PyTorch process failed".into()))
        .or_else(|| (next < o.frames).then(|| format!("the script stopped after {next} of {} frames", o.frames)))
        .or_else(|| (!messages.is_empty()).then(|| format!("{} validation message(s)", messages.len())));
    match failure {
        None => {
            println!("PASS: {} frame(s) of {len} bytes written by PyTorch, checked byte for byte by Vulkan, its write-back by PyTorch", o.frames);
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            println!("FAIL: {f}");
            Ok(ExitCode::FAILURE)
        }
    }
}
