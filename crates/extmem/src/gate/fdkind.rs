//! What a received file descriptor is, looked at before any driver sees it, and who owns it
//! after a driver refuses it.
//!
//! A driver given a descriptor that cannot be memory may block forever (lavapipe reads a
//! header from an opaque fd, so a pipe, FIFO or eventfd hangs `vkAllocateMemory`). So the kind
//! is checked with `fstat` / `fstatfs` first: a dma-buf must be a dma-buf, host memory a memfd,
//! and an opaque fd the kind this driver's own export produces (probed once per device: a
//! memfd on lavapipe, a character device on NVIDIA's driver).
//!
//! The specification says a failed import leaves the descriptor with the application
//! (`VkImportMemoryFdInfoKHR`: "if the import fails, ownership is not transferred"); lavapipe
//! closes it anyway, and NVIDIA's driver closes its own exports (not other descriptors). So the
//! driver is given a duplicate, and after a failure `release_after_failed_import` asks the
//! kernel whether that duplicate is still open before closing it: each descriptor is closed
//! exactly once on every driver ([`owner_after_failed_import`] is the fallback by `driverID`).

use crate::context::Context;
use crate::error::{Error, IoResultExt, Result};
use crate::handle::HandleType;
use ash::vk;
use std::collections::HashMap;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

/// What a descriptor refers to, as far as importing memory is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A file in memory: a memfd (tmpfs or hugetlbfs).
    MemFile,
    /// A regular file on a file system.
    File,
    /// A Linux dma-buf.
    DmaBuf,
    /// A character device (NVIDIA's exported memory refers to `/dev/nvidiactl`); its major number.
    CharDevice {
        /// The device's major number.
        major: u32,
    },
    /// A block device.
    BlockDevice,
    /// An anonymous inode other than a dma-buf: eventfd, timerfd, signalfd, epoll, ...
    AnonInode,
    /// A pipe or a FIFO.
    Fifo,
    /// A socket.
    Socket,
    /// A directory.
    Directory,
    /// Anything else (a symbolic link opened with `O_PATH`, ...).
    Other,
}

impl FdKind {
    /// What a user would call it.
    pub fn describe(self) -> String {
        match self {
            FdKind::MemFile => "a memfd".into(),
            FdKind::File => "a regular file".into(),
            FdKind::DmaBuf => "a dma-buf".into(),
            FdKind::CharDevice { major } => format!("a character device (major {major})"),
            FdKind::BlockDevice => "a block device".into(),
            FdKind::AnonInode => "an anonymous inode (eventfd, timerfd, epoll, ...)".into(),
            FdKind::Fifo => "a pipe or FIFO".into(),
            FdKind::Socket => "a socket".into(),
            FdKind::Directory => "a directory".into(),
            FdKind::Other => "not a file that can hold memory".into(),
        }
    }

    /// Whether a driver could take it as an opaque fd at all (when its own kind is unknown).
    fn could_be_memory(self) -> bool {
        matches!(self, FdKind::MemFile | FdKind::File | FdKind::DmaBuf | FdKind::CharDevice { .. })
    }
}

// File system magic numbers (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
const DMA_BUF_MAGIC: i64 = 0x444d_4142;

/// Looks at `fd` without reading or writing it.
pub fn classify(fd: BorrowedFd<'_>) -> Result<FdKind> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(fd).io(|| "fstat of the received descriptor".into())?;
    let magic = rustix::fs::fstatfs(fd).io(|| "fstatfs of the received descriptor".into())?.f_type as i64;
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Fifo => FdKind::Fifo,
        FileType::Socket => FdKind::Socket,
        FileType::Directory => FdKind::Directory,
        FileType::BlockDevice => FdKind::BlockDevice,
        FileType::CharacterDevice => FdKind::CharDevice { major: rustix::fs::major(stat.st_rdev) },
        _ if magic == DMA_BUF_MAGIC => FdKind::DmaBuf,
        // Anonymous inodes have no file type bits on older kernels and `S_IFREG` on newer.
        _ if magic == ANON_INODE_FS_MAGIC => FdKind::AnonInode,
        FileType::RegularFile if magic == TMPFS_MAGIC || magic == HUGETLBFS_MAGIC => FdKind::MemFile,
        FileType::RegularFile => FdKind::File,
        _ => FdKind::Other,
    })
}

/// Whether a descriptor of `kind` may be imported as `handle_type`, where this driver's own
/// opaque export produces `opaque` (`None`: unknown). A pure rule, so that it is tested apart.
pub fn check_kind(handle_type: HandleType, kind: FdKind, opaque: Option<FdKind>) -> Result<()> {
    let ok = match handle_type {
        HandleType::DmaBuf => kind == FdKind::DmaBuf,
        HandleType::HostAllocation => kind == FdKind::MemFile,
        HandleType::OpaqueFd => match opaque {
            Some(FdKind::CharDevice { major }) => kind == FdKind::CharDevice { major },
            Some(expected) => kind == expected,
            None => kind.could_be_memory(),
        },
    };
    if ok {
        return Ok(());
    }
    let expected = match (handle_type, opaque) {
        (HandleType::DmaBuf, _) => "a dma-buf".to_string(),
        (HandleType::HostAllocation, _) => "a memfd".to_string(),
        (HandleType::OpaqueFd, Some(k)) => format!("{} (what this driver's own export is)", k.describe()),
        (HandleType::OpaqueFd, None) => "a memfd, dma-buf or device file".to_string(),
    };
    Err(Error::Import(format!(
        "the {handle_type} descriptor is {}, not {expected}: the peer sent a descriptor that is not memory",
        kind.describe()
    )))
}

/// Refuses `fd` as `handle_type` memory on `ctx` unless it is the right kind of file.
pub fn check(ctx: &Context, handle_type: HandleType, fd: BorrowedFd<'_>) -> Result<()> {
    let kind = classify(fd)?;
    let opaque = if handle_type == HandleType::OpaqueFd { opaque_export_kind(ctx) } else { None };
    check_kind(handle_type, kind, opaque)
}

/// What this driver's own opaque export looks like to the kernel: what a received opaque fd
/// is compared with. Probed once per device and driver (see [`opaque_export`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportProfile {
    /// The kind of file (a memfd on lavapipe, a character device on NVIDIA's driver).
    pub kind: FdKind,
    /// For a memfd: its seals (`F_GET_SEALS`; lavapipe: `F_SEAL_SEAL | F_SEAL_SHRINK |
    /// F_SEAL_GROW`). A received memfd must carry all of them.
    pub seals: Option<rustix::fs::SealFlags>,
    /// For a memfd: how many bytes the file holds beyond the allocation (`fstat` size less
    /// `allocationSize`; lavapipe: 4136, a header and a page of alignment). A received memfd
    /// smaller than the described size plus this is refused.
    pub overhead: u64,
}

/// The kind of descriptor this device's driver exports as an opaque fd, probed once per device
/// and driver (by UUID); `None` where it cannot export one.
pub fn opaque_export_kind(ctx: &Context) -> Option<FdKind> {
    opaque_export(ctx).map(|p| p.kind)
}

/// What this device's driver's opaque export is ([`ExportProfile`]), probed once per device
/// and driver (by UUID); `None` where it cannot export one.
pub fn opaque_export(ctx: &Context) -> Option<ExportProfile> {
    static PROBED: Mutex<Option<HashMap<[u8; 32], Option<ExportProfile>>>> = Mutex::new(None);
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&ctx.device_uuid());
    key[16..].copy_from_slice(&ctx.driver_uuid());
    let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    *probed.get_or_insert_with(HashMap::new).entry(key).or_insert_with(|| probe(ctx).ok())
}

/// Exports a 64 KiB buffer's memory as an opaque fd and looks at it.
fn probe(ctx: &Context) -> Result<ExportProfile> {
    let d = ctx.device();
    let h = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
    let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(h);
    let info = vk::BufferCreateInfo::default()
        .size(64 << 10)
        .usage(vk::BufferUsageFlags::TRANSFER_SRC)
        .push_next(&mut external);
    // SAFETY: a valid create info on a live device; destroyed below.
    let buffer = unsafe { d.create_buffer(&info, None) }.map_err(|r| vk_err("vkCreateBuffer (probe)", r))?;
    let result = probe_memory(ctx, buffer);
    // SAFETY: the buffer was never bound or used.
    unsafe { d.destroy_buffer(buffer, None) };
    result
}

fn probe_memory(ctx: &Context, buffer: vk::Buffer) -> Result<ExportProfile> {
    let d = ctx.device();
    // SAFETY: a live buffer.
    let req = unsafe { d.get_buffer_memory_requirements(buffer) };
    let index = req.memory_type_bits.trailing_zeros();
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().buffer(buffer);
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(index)
        .push_next(&mut export)
        .push_next(&mut dedicated);
    // SAFETY: a valid allocate info; freed below.
    let memory = unsafe { d.allocate_memory(&info, None) }.map_err(|r| vk_err("vkAllocateMemory (probe)", r))?;
    let get =
        vk::MemoryGetFdInfoKHR::default().memory(memory).handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
    // SAFETY: exportable memory; a successful export gives a new descriptor we own.
    let fd = unsafe { ctx.memory_fd().get_memory_fd(&get) }
        .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) })
        .map_err(|r| vk_err("vkGetMemoryFdKHR (probe)", r));
    // SAFETY: never bound; the export holds its own reference to the memory.
    unsafe { d.free_memory(memory, None) };
    let fd = fd?;
    let kind = classify(std::os::fd::AsFd::as_fd(&fd))?;
    if kind != FdKind::MemFile {
        return Ok(ExportProfile { kind, seals: None, overhead: 0 });
    }
    let seals = rustix::fs::fcntl_get_seals(&fd).io(|| "F_GET_SEALS of the driver's own export".into())?;
    let size = rustix::fs::fstat(&fd).io(|| "fstat of the driver's own export".into())?.st_size as u64;
    Ok(ExportProfile { kind, seals: Some(seals), overhead: size.saturating_sub(req.size) })
}

fn vk_err(call: &'static str, result: vk::Result) -> Error {
    Error::Vulkan { call, result }
}

/// `VkPhysicalDeviceDriverProperties::driverID` (Vulkan 1.2 or VK_KHR_driver_properties).
pub fn driver_id(ctx: &Context) -> Option<vk::DriverId> {
    // SAFETY: a live physical device.
    let props = unsafe { ctx.instance().get_physical_device_properties(ctx.physical_device()) };
    if props.api_version < vk::API_VERSION_1_2 {
        return None;
    }
    let mut driver = vk::PhysicalDeviceDriverProperties::default();
    let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
    // SAFETY: a live physical device of Vulkan 1.2, which has the structure.
    unsafe { ctx.instance().get_physical_device_properties2(ctx.physical_device(), &mut props2) };
    Some(driver.driver_id)
}

/// Who holds a descriptor after `vkAllocateMemory` failed to import it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdOwner {
    /// The application still owns it and must close it (the specification's rule).
    Application,
    /// The driver already closed it; closing it again would close whatever reuses the number.
    Driver,
}

/// The owner of an opaque or dma-buf descriptor after a failed import, by driver, where the
/// kernel cannot tell (see `release_after_failed_import`). Measured with Mesa 22.3's lavapipe
/// and NVIDIA's driver 580: lavapipe closes every descriptor whose import fails; NVIDIA's
/// closes memory it exported itself when the import fails (a size or memory type that does not
/// fit) and leaves any other descriptor open. Where the two cases cannot be told apart,
/// NVIDIA's exports are taken as the driver's: a wrong guess then leaks one descriptor instead
/// of closing a number another thread may own. Other drivers follow the specification.
pub fn owner_after_failed_import(driver: Option<vk::DriverId>) -> FdOwner {
    match driver {
        Some(vk::DriverId::MESA_LLVMPIPE | vk::DriverId::NVIDIA_PROPRIETARY) => FdOwner::Driver,
        _ => FdOwner::Application,
    }
}

/// Whether two descriptor numbers of this process refer to the same open file description
/// (`kcmp(KCMP_FILE)`): `Some(false)` also when `b` is no longer open; `None` where the kernel
/// cannot say (no kcmp).
fn same_open_file(a: BorrowedFd<'_>, b: i32) -> Option<bool> {
    use std::os::fd::AsRawFd;
    const KCMP_FILE: libc::c_int = 0;
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: kcmp only compares kernel objects of this process; it reads no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a.as_raw_fd(), b) };
    match r {
        0 => Some(true),
        1..=3 => Some(false),
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) => Some(false),
        _ => None,
    }
}

/// After a failed import of `given` (a duplicate of `original` handed to the driver), closes
/// `given` if and only if the driver left it open, then `original`: each descriptor is closed
/// exactly once whatever the driver did. The kernel is asked first (is `given` still the same
/// open file as `original`? A number the driver closed and another thread reused is not); only
/// without kcmp does the driver table decide.
pub(crate) fn release_after_failed_import(ctx: &Context, original: OwnedFd, given: i32) {
    let still_ours = same_open_file(std::os::fd::AsFd::as_fd(&original), given)
        .unwrap_or_else(|| owner_after_failed_import(driver_id(ctx)) == FdOwner::Application);
    if still_ours {
        // SAFETY: `given` is our duplicate and still open: nobody else closes it.
        drop(unsafe { OwnedFd::from_raw_fd(given) });
    }
    drop(original);
}
