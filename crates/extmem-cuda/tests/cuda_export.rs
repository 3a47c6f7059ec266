//! CUDA → Vulkan on a real NVIDIA GPU: memory CUDA made exportable (`cuMemCreate` +
//! `cuMemExportToShareableHandle`) imported by Vulkan as an opaque fd, every byte checked both
//! ways, with the Khronos validation layer on. Prints SKIPPED and passes where there is no CUDA
//! driver or the Vulkan device is not a CUDA device (CI's lavapipe).

mod common;

use common::setup;
use extmem::{pattern, vk, Descriptor, Handoff, SharedMemory};
use extmem_cuda::ExportableMemory;

#[test]
fn vulkan_imports_cuda_exportable_memory_and_both_see_every_byte() {
    let Some((ctx, cuda)) = setup("cuda_export") else { return };
    // Not a multiple of the granularity: the allocation rounds up, the buffer does not.
    let len = (3 << 20) + 4096;
    let memory = ExportableMemory::new(&cuda, len).unwrap();
    assert!(memory.allocation_size() >= len && memory.allocation_size().is_multiple_of(4096));
    memory.from_host(&cuda, &pattern::fill(len, 11)).unwrap();

    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let desc = memory.descriptor(usage);
    assert!(desc.from_other_api() && desc.device_uuid == ctx.device_uuid());
    assert_eq!(desc.driver_uuid, Descriptor::NO_DRIVER_UUID);
    // Through the wire format, as a peer would receive it.
    let desc = match extmem::Message::decode(&extmem::Message::Share(desc).encode()).unwrap() {
        extmem::Message::Share(d) => d,
        other => panic!("{other:?}"),
    };
    let imported = SharedMemory::import(&ctx, &desc, memory.export_fd().unwrap()).unwrap();
    let flags = ctx.memory_properties().memory_types[imported.descriptor().memory_type_index as usize].property_flags;
    assert!(flags.contains(vk::MemoryPropertyFlags::DEVICE_LOCAL), "imported into a DEVICE_LOCAL type: {flags:?}");
    assert_eq!(
        pattern::first_mismatch(&imported.read(Handoff::host()).unwrap(), 11),
        None,
        "Vulkan sees what CUDA wrote"
    );
    imported.write(&pattern::fill(len, 12), Handoff::host()).unwrap();
    assert_eq!(pattern::first_mismatch(&memory.to_host(&cuda).unwrap(), 12), None, "CUDA sees what Vulkan wrote");

    // Another device's memory is refused before the driver is asked.
    let mut other = desc;
    other.device_uuid = [1; 16];
    let e = SharedMemory::import(&ctx, &other, memory.export_fd().unwrap()).err().expect("refused");
    assert!(e.to_string().contains("another device"), "{e}");
    drop(imported);
    drop(memory);
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "validation: {}", m.join("\n"));
}
