//! Careless callers and broken drivers, on the system's driver with validation on: a failed
//! import closes its descriptor exactly once (lavapipe closes it itself, NVIDIA's driver leaves
//! it with us), descriptors that cannot be memory are refused before any driver sees them
//! (lavapipe would block reading a pipe forever), host memory must come sealed, and the safe
//! constructors refuse every description that breaks Vulkan's rules without a crash or a
//! validation message.

mod common;

use common::{assert_clean, context, fd_lock, open_fds};
use extmem::fdkind::{self, FdKind, FdOwner};
use extmem::{vk, BufferDesc, Dedicated, Error, HandleType, ImageDesc, PathKind, SharedMemory};
use proptest::prelude::*;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

fn usage() -> vk::BufferUsageFlags {
    vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST
}

fn exported(ctx: &Arc<extmem::Context>) -> SharedMemory {
    SharedMemory::new_buffer(ctx, BufferDesc { size: 65536, usage: usage() }, HandleType::OpaqueFd, Dedicated::Always)
        .unwrap()
}

/// Runs `f` on a thread and fails the test if it does not return within two minutes (a
/// generous bound: a hang is what is tested, not a time).
fn within_bound<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let r = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("{what}: hung (no answer in 120 s)"));
    // Its exit too (thread-local destructors of the driver), before the driver may unload.
    worker.join().expect("the worker thread");
    r
}

fn is_open(raw: i32) -> bool {
    // SAFETY: only asks whether the number is open; the borrowed descriptor is not used otherwise.
    rustix::io::fcntl_getfd(unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }).is_ok()
}

/// A descriptor of the same kind as the driver's own opaque export that is not memory the
/// driver exported: a memfd of zeros on lavapipe, the same device file opened anew on NVIDIA.
fn not_exported_memory_of_the_right_kind(shared: &SharedMemory) -> OwnedFd {
    let (_, fd) = shared.export().unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    if link.starts_with("/dev/") {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&link).unwrap();
        return OwnedFd::from(file);
    }
    let junk = rustix::fs::memfd_create("junk", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&junk, 1 << 20).unwrap();
    junk
}

#[test]
fn a_failed_import_closes_the_descriptor_exactly_once_on_this_driver() {
    let _lock = fd_lock();
    let ctx = context(PathKind::Khr);
    let shared = exported(&ctx);
    let driver = fdkind::driver_id(&ctx);
    println!(
        "driver {driver:?}: the fd after a failed import belongs to {:?}",
        fdkind::owner_after_failed_import(driver)
    );
    match driver {
        Some(vk::DriverId::MESA_LLVMPIPE) => assert_eq!(fdkind::owner_after_failed_import(driver), FdOwner::Driver),
        Some(vk::DriverId::NVIDIA_PROPRIETARY) => {
            assert_eq!(fdkind::owner_after_failed_import(driver), FdOwner::Driver)
        }
        _ => {}
    }
    let before = open_fds();
    for round in 0..20 {
        let fd = not_exported_memory_of_the_right_kind(&shared);
        let raw = fd.as_raw_fd();
        let desc = shared.descriptor();
        let ctx2 = ctx.clone();
        let e = within_bound("import of a descriptor that is not exported memory", move || {
            SharedMemory::import(&ctx2, &desc, fd).err()
        })
        .expect("the driver accepted memory it never exported");
        assert!(matches!(e, Error::Vulkan { .. } | Error::Import(_)), "round {round}: {e}");
        assert!(!is_open(raw), "round {round}: descriptor {raw} is still open after the failed import");
    }
    assert_eq!(open_fds(), before, "descriptors leaked by failed imports");
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn a_failed_import_of_the_drivers_own_export_closes_each_descriptor_exactly_once() {
    // The driver's own export with a descriptor that does not fit it (twice the size): the
    // driver refuses it, and may close it on the way (lavapipe and NVIDIA's driver do, against
    // the specification). Nothing may be closed twice and nothing may leak, whatever it does.
    // Where the export is a memfd (lavapipe), the gate sees first that the file is too small
    // for the size, and refuses it before the driver does.
    let _lock = fd_lock();
    let ctx = context(PathKind::Khr);
    // Not dedicated: a dedicated allocation's size is checked before the driver sees it.
    let buffer = BufferDesc { size: 65536, usage: usage() };
    let shared = SharedMemory::new_buffer(&ctx, buffer, HandleType::OpaqueFd, Dedicated::Never).unwrap();
    let (mut dedicated_desc, fd) = exported(&ctx).export().unwrap();
    dedicated_desc.allocation_size *= 2;
    let e = SharedMemory::import(&ctx, &dedicated_desc, fd).err().expect("a dedicated allocation of the wrong size");
    assert!(["allocation_size must be", "fault past its end"].iter().any(|s| e.to_string().contains(s)), "{e}");
    let before = open_fds();
    for round in 0..20 {
        let (mut desc, fd) = shared.export().unwrap();
        desc.allocation_size *= 2;
        let raw = fd.as_raw_fd();
        // A descriptor of ours that must survive: it takes the next free number, which a double
        // close of `raw` would hit.
        let bystander = rustix::io::fcntl_dupfd_cloexec(&fd, 0).unwrap();
        let ctx2 = ctx.clone();
        let e = within_bound("import of an export that does not fit its descriptor", move || {
            SharedMemory::import(&ctx2, &desc, fd).err()
        })
        .expect("the driver accepted an allocation twice its memory's size");
        println!("round {round}: {e}");
        assert!(!is_open(raw) || raw == bystander.as_raw_fd(), "round {round}: descriptor {raw} still open");
        assert!(rustix::io::fcntl_getfd(&bystander).is_ok(), "round {round}: another descriptor was closed");
        drop(bystander);
    }
    assert_eq!(open_fds(), before, "descriptors leaked or closed twice by failed imports");
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn the_driver_export_kind_is_probed_and_other_kinds_are_refused_before_the_driver() {
    let _lock = fd_lock();
    let ctx = context(PathKind::Khr);
    let kind = fdkind::opaque_export_kind(&ctx).expect("the driver exports opaque fds");
    println!("{}: opaque fds are {kind:?}", ctx.device_name());
    match fdkind::driver_id(&ctx) {
        Some(vk::DriverId::MESA_LLVMPIPE) => assert_eq!(kind, FdKind::MemFile),
        Some(vk::DriverId::NVIDIA_PROPRIETARY) => assert!(matches!(kind, FdKind::CharDevice { .. }), "{kind:?}"),
        _ => {}
    }
    let shared = exported(&ctx);
    let before = open_fds();
    let dir = std::env::temp_dir().join(format!("extmem-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    rustix::fs::mkfifoat(rustix::fs::CWD, &dir, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    let rw = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let fifo = rustix::fs::open(&dir, rw, rustix::fs::Mode::empty()).unwrap();
    std::fs::remove_file(&dir).unwrap();
    let (pipe, _writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let (sock, _other) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let event = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    let directory: OwnedFd = std::fs::File::open(std::env::temp_dir()).unwrap().into();
    let cases: Vec<(&str, OwnedFd, &str)> = vec![
        ("pipe", pipe, "a pipe or FIFO"),
        ("FIFO", fifo, "a pipe or FIFO"),
        ("socket", sock, "a socket"),
        ("eventfd", event, "an anonymous inode"),
        ("directory", directory, "a directory"),
    ];
    for (name, fd, says) in cases {
        let seen = fdkind::classify(fd.as_fd()).unwrap();
        assert!(seen.describe().starts_with(says), "{name} classified as {seen:?}");
        for h in [HandleType::OpaqueFd, HandleType::HostAllocation] {
            let (mut desc, _real) = shared.export().unwrap();
            desc.handle_type = h;
            // Host memory comes as a plain allocation: only the descriptor's kind is wrong here.
            desc.dedicated &= h != HandleType::HostAllocation;
            let dup = fd.try_clone().unwrap();
            let ctx2 = ctx.clone();
            let e = within_bound(name, move || SharedMemory::import(&ctx2, &desc, dup).err())
                .unwrap_or_else(|| panic!("{name} imported as memory"));
            assert!(e.to_string().contains(says), "{name} as {h}: {e}");
        }
    }
    drop((_writer, _other));
    assert_eq!(open_fds(), before, "refused descriptors leaked");
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn host_memory_comes_sealed_and_an_unsealed_or_empty_memfd_is_refused() {
    let _lock = fd_lock();
    let before = open_fds();
    let sealed = extmem::host::sealed_memfd("test", 65536).unwrap();
    assert!(rustix::fs::fcntl_get_seals(&sealed).unwrap().contains(extmem::host::SEALS));
    assert!(rustix::fs::ftruncate(&sealed, 4096).is_err(), "a sealed memfd shrank");
    let mapping = extmem::host::HostMapping::open(sealed, 65536).unwrap();
    let copy = mapping.dup_fd().unwrap();
    assert!(rustix::fs::ftruncate(&copy, 0).is_err(), "the memfd a mapping shares can shrink");
    drop((mapping, copy));
    let created = extmem::host::HostMapping::create(4096).unwrap();
    assert!(rustix::fs::fcntl_get_seals(created.dup_fd().unwrap()).unwrap().contains(extmem::host::SEALS));
    drop(created);
    let plain = rustix::fs::memfd_create("plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&plain, 65536).unwrap();
    let e = extmem::host::HostMapping::open(plain, 65536).unwrap_err();
    assert!(e.to_string().contains("not sealed"), "{e}");
    let empty = extmem::host::sealed_memfd("empty", 4096).unwrap();
    let e = extmem::host::HostMapping::open(empty, 0).unwrap_err();
    assert!(e.to_string().contains("0 bytes"), "{e}");
    let small = extmem::host::sealed_memfd("small", 4096).unwrap();
    let e = extmem::host::HostMapping::open(small, 1 << 40).unwrap_err();
    assert!(e.to_string().contains("holds 4096 bytes"), "{e}");
    assert_eq!(open_fds(), before);
}

fn image_strategy() -> impl Strategy<Value = ImageDesc> {
    // Mostly values a device takes, so that many descriptions reach the driver; now and then
    // one that breaks a rule or a limit.
    let side = prop_oneof![8 => 1u32..=96, 1 => Just(0u32), 1 => Just(16_385u32), 1 => Just(u32::MAX)];
    let depth = prop_oneof![6 => Just(1u32), 2 => 2u32..=8, 1 => Just(0u32), 1 => Just(70_000u32)];
    let format = prop_oneof![
        3 => Just(vk::Format::R8G8B8A8_UNORM),
        2 => Just(vk::Format::R32_SFLOAT),
        1 => Just(vk::Format::D32_SFLOAT),
        1 => Just(vk::Format::BC1_RGB_UNORM_BLOCK),
        1 => Just(vk::Format::UNDEFINED),
        1 => any::<i32>().prop_map(vk::Format::from_raw),
    ];
    let tiling = prop_oneof![
        4 => Just(vk::ImageTiling::OPTIMAL),
        3 => Just(vk::ImageTiling::LINEAR),
        1 => Just(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT),
        1 => Just(vk::ImageTiling::from_raw(7)),
    ];
    let usage = prop_oneof![6 => 1u32..=0x0f, 4 => 0u32..=0xff, 1 => any::<u32>()];
    let mips = prop_oneof![8 => 1u32..=8, 1 => Just(0u32), 1 => 9u32..40];
    let layers = prop_oneof![8 => 1u32..=4, 1 => Just(0u32), 1 => Just(5000u32)];
    (format, side.clone(), side, depth, mips, layers, tiling, usage).prop_map(
        |(format, width, height, depth, mip_levels, array_layers, tiling, usage)| ImageDesc {
            format,
            extent: vk::Extent3D { width, height, depth },
            mip_levels,
            array_layers,
            tiling,
            usage: vk::ImageUsageFlags::from_raw(usage),
        },
    )
}

fn buffer_strategy() -> impl Strategy<Value = BufferDesc> {
    let size = prop_oneof![8 => 1u64..=(1 << 20), 1 => Just(0u64), 1 => Just((1u64 << 31) + 1), 1 => Just(u64::MAX)];
    let usage = prop_oneof![8 => 0u32..=0x1ff, 1 => Just(0x20000u32), 1 => any::<u32>()];
    (size, usage).prop_map(|(size, usage)| BufferDesc { size, usage: vk::BufferUsageFlags::from_raw(usage) })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the fields, the safe constructors return (a resource or an error naming the
    /// field) with no crash and no validation message.
    #[test]
    fn safe_constructors_take_any_fields_without_a_crash_or_a_validation_message(
        image in image_strategy(),
        buffer in buffer_strategy(),
    ) {
        // Host memory opens memfds: no other test of this binary may count descriptors meanwhile.
        let _lock = fd_lock();
        let ctx = shared_context();
        for h in [HandleType::OpaqueFd, HandleType::HostAllocation] {
            match SharedMemory::new_image(&ctx, image, h, Dedicated::Always) {
                Ok(made) => prop_assert!(image.extent.width > 0 && image.mip_levels > 0, "{:?}", made.desc()),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            match SharedMemory::new_buffer(&ctx, buffer, h, Dedicated::Always) {
                Ok(made) => prop_assert!(buffer.size > 0 && made.allocation_size() >= buffer.size),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        let m = ctx.validation_messages();
        prop_assert!(m.is_empty(), "{:?} / {:?}: {} validation message(s):\n{}", image, buffer, m.len(), m.join("\n"));
    }
}

/// One context for all proptest cases (a context per case would dominate the run).
fn shared_context() -> Arc<extmem::Context> {
    static CTX: std::sync::OnceLock<Arc<extmem::Context>> = std::sync::OnceLock::new();
    CTX.get_or_init(|| context(PathKind::Khr)).clone()
}

#[test]
fn the_constructors_name_the_field_that_breaks_a_rule() {
    let _lock = fd_lock();
    let ctx = context(PathKind::Khr);
    let rgba = |w, h| ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, w, h, vk::ImageUsageFlags::TRANSFER_SRC);
    let cases: Vec<(ImageDesc, &str)> = vec![
        (rgba(0, 0), "extent"),
        (ImageDesc { mip_levels: 0, ..rgba(16, 16) }, "mip_levels"),
        (ImageDesc { mip_levels: 6, ..rgba(16, 16) }, "mip_levels"),
        (ImageDesc { array_layers: 0, ..rgba(16, 16) }, "array_layers"),
        (rgba(1 << 20, 4), "extent"),
        (
            ImageDesc { extent: vk::Extent3D { width: 4, height: 4, depth: 4 }, array_layers: 2, ..rgba(4, 4) },
            "array_layers",
        ),
        (ImageDesc { tiling: vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT, ..rgba(16, 16) }, "tiling"),
        (ImageDesc { usage: vk::ImageUsageFlags::from_raw(0x8000_0000), ..rgba(16, 16) }, "usage"),
        (ImageDesc { usage: vk::ImageUsageFlags::empty(), ..rgba(16, 16) }, "usage"),
        (ImageDesc { format: vk::Format::UNDEFINED, ..rgba(16, 16) }, "format"),
    ];
    for (desc, field) in cases {
        let e = SharedMemory::new_image(&ctx, desc, HandleType::OpaqueFd, Dedicated::Always).err().expect("refused");
        assert!(matches!(e, Error::Invalid(_)), "{desc:?}: {e}");
        assert!(e.to_string().contains(&format!("{field}:")), "{desc:?}: {e} should name {field}");
    }
    for (size, field) in [(0u64, "size"), (u64::MAX, "size")] {
        let e = SharedMemory::new_buffer(
            &ctx,
            BufferDesc { size, usage: usage() },
            HandleType::OpaqueFd,
            Dedicated::Always,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains(&format!("{field}:")), "{size}: {e}");
    }
    assert_clean(&ctx);
}
