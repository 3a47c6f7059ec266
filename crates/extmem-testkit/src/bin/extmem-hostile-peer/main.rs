//! A hostile producer for the tests: `extmem-hostile-peer SOCKET CASE` connects to an importer
//! and sends one class of bad input (see [`CASES`]), or dies at a step of the hand-off.

use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::{Channel, Message};
use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, Descriptor, HandleType, ResourceDesc, SharedMemory};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

/// Every case this peer knows.
const CASES: [&str; 38] = [
    "good",
    "pipe",
    "fifo",
    "socket",
    "eventfd",
    "directory",
    "unsealed-host",
    "shrink-host",
    "host-bytes-zero",
    "host-bytes-huge",
    "zero-size",
    "huge-allocation",
    "3d-layers",
    "too-wide",
    "drm-tiling",
    "undefined-usage",
    "opaque-unsealed-huge",
    "opaque-sealed-small",
    "opaque-shrink",
    "flood-never-reads",
    "die-connected",
    "die-after-share",
    "die-mid-frames",
    "pool-good",
    "pool-pipe",
    "pool-block-twice",
    "pool-unknown-block",
    "pool-outside",
    "pool-overlap",
    "pool-die-after-block",
    "pool-block-unsealed-shrink",
    "pool-block-huge",
    "pool-many-blocks",
    "pool-heap",
    "pool-too-wide",
    "pool-undefined-usage",
    "pool-drm-tiling",
    "pool-buffer-usage",
];

mod forge;
mod pool;

pub(crate) fn die() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}

fn buffer(ctx: &Arc<Context>, h: HandleType) -> SharedMemory {
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    SharedMemory::new_buffer(ctx, BufferDesc { size: 65536, usage }, h, Dedicated::Never).expect("a buffer")
}

fn memfd(len: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("hostile", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    fd
}

/// Sends `desc` with `fd`, then waits until the importer answers or hangs up.
fn share(channel: &Channel, desc: Descriptor, fd: impl AsFd) {
    channel.send(&Message::Share(desc), &[fd.as_fd()]).expect("send");
    let _ = channel.recv();
}

fn with_image(mut desc: Descriptor, edit: impl FnOnce(&mut extmem::ImageDesc)) -> Descriptor {
    let mut image = extmem::ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 64, vk::ImageUsageFlags::TRANSFER_SRC);
    edit(&mut image);
    desc.resource = ResourceDesc::Image(image);
    desc.dedicated = false;
    desc
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(socket), Some(case)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: extmem-hostile-peer SOCKET CASE (one of {})", CASES.join(", "));
        std::process::exit(2);
    };
    if !CASES.contains(&case.as_str()) {
        eprintln!("unknown case {case:?} (one of {})", CASES.join(", "));
        std::process::exit(2);
    }
    let channel = Channel::connect(&PathBuf::from(socket)).expect("connect");
    if case == "die-connected" {
        die();
    }
    let ctx = Context::new(&ContextOptions::default().app_name("hostile peer")).expect("context");
    let opaque = buffer(&ctx, HandleType::OpaqueFd);
    let (desc, real) = opaque.export().expect("export");
    let host_desc = || {
        let host = buffer(&ctx, HandleType::HostAllocation);
        host.descriptor()
    };
    if let Some(pool_case) = case.strip_prefix("pool-") {
        return pool::run(&ctx, &channel, pool_case);
    }
    match case.as_str() {
        "good" | "die-after-share" | "die-mid-frames" => {
            channel.send(&Message::Share(desc), &[real.as_fd()]).expect("send");
            if case == "die-after-share" {
                die();
            }
            match channel.recv_plain("Verdict") {
                Ok(Message::Verdict { ok: true, .. }) => {}
                other => panic!("the importer refused a good share: {other:?}"),
            }
            let frames = FrameProtocol::new(&channel, Role::Producer);
            for frame in 0..3 {
                frames.signal_ready(Frame::new(frame)).expect("ready");
                frames.wait_done(Frame::new(frame)).expect("done");
                if case == "die-mid-frames" && frame == 1 {
                    die();
                }
            }
            channel.send(&Message::Bye, &[]).expect("bye");
        }
        "pipe" => {
            let (reader, _writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
            share(&channel, desc, reader);
        }
        "fifo" => {
            let path = std::env::temp_dir().join(format!("hostile-fifo-{}", std::process::id()));
            rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::from_raw_mode(0o600)).expect("mkfifo");
            let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC;
            let fifo = rustix::fs::open(&path, flags, rustix::fs::Mode::empty()).expect("open fifo");
            let _ = std::fs::remove_file(&path);
            share(&channel, desc, fifo);
        }
        "socket" => share(&channel, desc, channel.as_fd()),
        "eventfd" => {
            share(&channel, desc, rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd"))
        }
        "directory" => share(&channel, desc, std::fs::File::open("/").expect("open /")),
        "unsealed-host" => share(&channel, host_desc(), memfd(65536)),
        "shrink-host" => {
            let fd = memfd(65536);
            channel.send(&Message::Share(host_desc()), &[fd.as_fd()]).expect("send");
            // Once the importer says it mapped the memory, take the pages away under it.
            if let Ok((Message::Verdict { .. }, _)) = channel.recv() {
                rustix::fs::ftruncate(&fd, 0).expect("shrink");
                let _ = channel.send(&Message::Bye, &[]);
            }
            let _ = channel.recv();
        }
        "host-bytes-zero" | "host-bytes-huge" => {
            let fd = extmem::host::sealed_memfd("hostile", 4096).expect("memfd");
            let len = if case == "host-bytes-zero" { 0 } else { 1 << 40 };
            channel.send(&Message::HostBytes { len }, &[fd.as_fd()]).expect("send");
            let _ = channel.recv();
        }
        "zero-size" => share(&channel, Descriptor { allocation_size: 0, ..desc }, &real),
        "huge-allocation" => {
            let big = 1u64 << 40;
            let d = Descriptor {
                allocation_size: big,
                resource: ResourceDesc::Buffer(BufferDesc { size: big, usage: vk::BufferUsageFlags::TRANSFER_SRC }),
                dedicated: false,
                ..desc
            };
            share(&channel, d, &real);
        }
        "3d-layers" => share(
            &channel,
            with_image(desc, |i| {
                i.extent.depth = 4;
                i.array_layers = 2;
            }),
            &real,
        ),
        "too-wide" => share(&channel, with_image(desc, |i| i.extent.width = 65536), &real),
        "drm-tiling" => {
            share(&channel, with_image(desc, |i| i.tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT), &real)
        }
        "undefined-usage" => {
            share(&channel, with_image(desc, |i| i.usage = vk::ImageUsageFlags::from_raw(0x8000_0000)), &real)
        }
        "opaque-unsealed-huge" | "opaque-sealed-small" => {
            // lavapipe-style: a header claiming 1 GiB in an 8 KiB file.
            let fd =
                forge::memfd_claiming(forge::header_of(&real), 8192, (1 << 30) + 4136, case.contains("sealed-small"));
            let d = Descriptor { allocation_size: 1 << 30, dedicated: false, ..desc };
            share(&channel, d, fd)
        }
        "opaque-shrink" => {
            // A copy of a real export, unsealed: it imports, then shrinks under the mapping.
            let copy = forge::unsealed_copy(&real);
            channel.send(&Message::Share(desc), &[copy.as_fd()]).expect("send");
            if let Ok((Message::Verdict { .. }, _)) = channel.recv() {
                rustix::fs::ftruncate(&copy, 0).expect("shrink");
                let _ = channel.send(&Message::Bye, &[]);
            }
            let _ = channel.recv();
        }
        "flood-never-reads" => {
            // Frames as fast as the socket takes them, never reading the answers: the
            // importer's sends fill this side's buffer.
            channel.send(&Message::Share(desc), &[real.as_fd()]).expect("send");
            let _ = channel.recv();
            let frames = FrameProtocol::new(&channel, Role::Producer);
            for frame in 0..1_000_000 {
                if frames.signal_ready(Frame::new(frame)).is_err() {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        other => {
            eprintln!("case {other:?} has no sender");
            std::process::exit(2);
        }
    }
}
