//! A hostile producer against the GL consumer: descriptors GL cannot import, wrong UUIDs,
//! forged sizes and descriptors, and a producer that goes away mid-frame. Each ends in a clear
//! error before GL is asked (or, for the producer going, when the socket says so), with this
//! process's descriptor count unchanged.

use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::{Channel, Message};
use extmem::{vk, Context, Dedicated, Descriptor, HandleType, ImageDesc, ResourceDesc, SharedMemory};
use extmem_gl::{Gl, GlMemory};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn image(ctx: &Arc<Context>) -> SharedMemory {
    let usage = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::SAMPLED;
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 64, usage);
    SharedMemory::new_image(ctx, desc, HandleType::OpaqueFd, Dedicated::Always).unwrap()
}

/// A memfd of `len` bytes whose first 32 bytes are `real`'s (lavapipe's header) with the size
/// field saying `claimed`; sealed as lavapipe seals its exports when `sealed`.
fn forged(real: &OwnedFd, len: u64, claimed: u64, sealed: bool) -> OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let mut header = [0u8; 32];
    rustix::io::pread(real, &mut header, 0).unwrap();
    header[..8].copy_from_slice(&claimed.to_le_bytes());
    let fd = rustix::fs::memfd_create("forged", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    rustix::io::pwrite(&fd, &header, 0).unwrap();
    if sealed {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW).unwrap();
    }
    fd
}

/// Every hostile case against `gl`.
pub fn run(ctx: &Arc<Context>, gl: &Gl) {
    let shared = image(ctx);
    // One good import first: lazily made state exists before counting descriptors.
    let (desc, fd) = shared.export().unwrap();
    drop(GlMemory::import(gl, &desc, fd).expect("a good image imports"));
    let before = open_fds();
    // Every case runs; what went wrong is listed at the end.
    let failed = std::cell::RefCell::new(Vec::new());
    let refuse = |what: &str, change: &dyn Fn(&mut Descriptor, OwnedFd) -> OwnedFd, want: &str| {
        let (mut desc, fd) = shared.export().unwrap();
        let fd = change(&mut desc, fd);
        let outcome = GlMemory::import(gl, &desc, fd).map(drop);
        eprintln!("{what}: {outcome:?}");
        match outcome {
            Ok(()) => failed.borrow_mut().push(format!("{what}: accepted")),
            Err(e) if !want.split('|').any(|w| e.to_string().contains(w)) => {
                failed.borrow_mut().push(format!("{what}: {e} (should say {want:?})"))
            }
            Err(_) => {}
        }
        if open_fds() != before {
            failed.borrow_mut().push(format!("{what}: descriptors leaked"));
        }
    };
    let with_image = |d: &mut Descriptor, edit: &dyn Fn(&mut ImageDesc)| {
        if let ResourceDesc::Image(i) = &mut d.resource {
            edit(i);
        }
    };
    // Descriptors GL cannot import.
    refuse(
        "dma-buf",
        &|d, fd| {
            d.handle_type = HandleType::DmaBuf;
            fd
        },
        "not a dma-buf",
    );
    refuse(
        "3D image",
        &|d, fd| {
            with_image(d, &|i| i.extent.depth = 4);
            fd
        },
        "single-layer 2D",
    );
    refuse(
        "layers",
        &|d, fd| {
            with_image(d, &|i| i.array_layers = 6);
            fd
        },
        "single-layer 2D",
    );
    refuse(
        "format",
        &|d, fd| {
            with_image(d, &|i| i.format = vk::Format::BC1_RGB_UNORM_BLOCK);
            fd
        },
        "no GL format",
    );
    refuse(
        "too wide",
        &|d, fd| {
            with_image(d, &|i| i.extent.width = 1 << 20);
            fd
        },
        "extent",
    );
    refuse(
        "tiling",
        &|d, fd| {
            with_image(d, &|i| i.tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT);
            fd
        },
        "tiling",
    );
    // Wrong UUIDs.
    refuse(
        "device UUID",
        &|d, fd| {
            d.device_uuid = [7; 16];
            fd
        },
        "runs on device",
    );
    refuse(
        "driver UUID",
        &|d, fd| {
            d.driver_uuid = [9; 16];
            fd
        },
        "with driver",
    );
    // Forged sizes and descriptors.
    refuse(
        "zero size",
        &|d, fd| {
            d.allocation_size = 0;
            fd
        },
        "allocation_size",
    );
    refuse(
        "offset past the end",
        &|d, fd| {
            d.offset = d.allocation_size;
            d.dedicated = false;
            fd
        },
        "offset",
    );
    refuse(
        "claims 1 GiB",
        &|d, fd| {
            d.allocation_size = 1 << 30;
            fd
        },
        "holds",
    );
    refuse(
        "unsealed, header claims 1 GiB",
        &|d, fd| {
            d.allocation_size = 1 << 30;
            forged(&fd, 8192, (1 << 30) + 4136, false)
        },
        "not sealed",
    );
    refuse(
        "sealed, 8 KiB claiming 1 GiB",
        &|d, fd| {
            d.allocation_size = 1 << 30;
            forged(&fd, 8192, (1 << 30) + 4136, true)
        },
        "holds 8192 bytes",
    );
    refuse("a pipe", &|_, _| rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap().0, "a pipe or FIFO");
    refuse(
        "an eventfd",
        &|_, _| rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap(),
        "anonymous inode",
    );
    refuse("a directory", &|_, _| OwnedFd::from(std::fs::File::open("/").unwrap()), "a directory");
    let failed = failed.into_inner();
    assert!(failed.is_empty(), "{} case(s) failed:\n{}", failed.len(), failed.join("\n"));
    producer_dies_mid_frame(ctx, gl);
    assert_eq!(open_fds(), before, "descriptors leaked");
    gl.check("the hostile cases").unwrap();
}

/// A producer that shares, hands over two frames and is gone in the middle of the third: the
/// GL consumer's loop ends with the socket's "closed the connection", and what it imported is
/// still readable (the memory outlives its exporter).
fn producer_dies_mid_frame(ctx: &Arc<Context>, gl: &Gl) {
    let (producer, consumer) = Channel::pair().unwrap();
    let ctx = ctx.clone();
    let thread = std::thread::spawn(move || {
        let shared = image(&ctx);
        let (desc, fd) = shared.export().unwrap();
        producer.send(&Message::Share(desc), &[fd.as_fd()]).unwrap();
        let frames = FrameProtocol::new(&producer, Role::Producer);
        let _ = producer.recv_plain("Verdict").unwrap();
        for frame in 0..2 {
            frames.signal_ready(Frame::new(frame)).unwrap();
            frames.wait_done(Frame::new(frame)).unwrap();
        }
        frames.signal_ready(Frame::new(2)).unwrap();
        // Gone: the socket and the exporter's memory with it.
    });
    let (desc, fd) = consumer.recv_share().unwrap();
    let memory = GlMemory::import(gl, &desc, fd).unwrap();
    consumer.send(&Message::Verdict { ok: true, detail: "imported".into() }, &[]).unwrap();
    let frames = FrameProtocol::new(&consumer, Role::Consumer);
    let mut seen = 0;
    let end = loop {
        match consumer.recv_plain("FrameReady") {
            Ok(Message::FrameReady { frame }) => {
                memory.read().unwrap();
                seen += 1;
                if frames.signal_done(Frame::new(frame)).is_err() {
                    continue;
                }
            }
            Ok(other) => panic!("unexpected {}", other.name()),
            Err(e) => break e,
        }
    };
    thread.join().unwrap();
    assert!(end.to_string().contains("closed the connection"), "{end}");
    assert_eq!(seen, 3, "three frames were announced");
    memory.read().expect("imported memory outlives its exporter");
}
