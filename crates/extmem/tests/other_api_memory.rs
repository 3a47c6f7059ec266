//! Importing memory that another API made (CUDA's exportable allocations): the descriptor has
//! no driver UUID and allows any memory type, so the importer checks the device UUID only and
//! picks a DEVICE_LOCAL type itself. Checked here with Vulkan-made memory described that way
//! (lavapipe's one device-local type is the one it was made with); the CUDA-made case runs in
//! extmem-cuda's tests on an NVIDIA GPU.

mod common;

use common::{assert_clean, context};
use extmem::{pattern, vk, BufferDesc, Dedicated, Descriptor, HandleType, Handoff, PathKind, SharedMemory};

#[test]
fn memory_without_a_driver_uuid_imports_into_a_device_local_type() {
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let shared =
        SharedMemory::new_buffer(&producer, BufferDesc { size: 65536, usage }, HandleType::OpaqueFd, Dedicated::Never)
            .unwrap();
    shared.write(&pattern::fill(65536, 5), Handoff::host()).unwrap();
    let device_local = producer.memory_properties().memory_types[shared.descriptor().memory_type_index as usize]
        .property_flags
        .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL);
    assert!(device_local, "lavapipe made the buffer in a device-local type");

    let other_api = |d: &mut Descriptor| {
        d.driver_uuid = Descriptor::NO_DRIVER_UUID;
        d.memory_type_index = 0;
        d.memory_type_bits = u32::MAX;
    };
    let (mut desc, fd) = shared.export().unwrap();
    other_api(&mut desc);
    assert!(desc.from_other_api());
    let imported = SharedMemory::import(&consumer, &desc, fd).unwrap();
    assert_eq!(
        pattern::first_mismatch(&imported.read(Handoff::host()).unwrap(), 5),
        None,
        "the importer sees the bytes"
    );

    // The device UUID is still checked.
    let (mut desc, fd) = shared.export().unwrap();
    other_api(&mut desc);
    desc.device_uuid = [3; 16];
    let e = SharedMemory::import(&consumer, &desc, fd).err().expect("another device is refused");
    assert!(e.to_string().contains("another device or driver"), "{e}");
    // No type the descriptor allows is device-local (or fits): refused with the reason.
    let (mut desc, fd) = shared.export().unwrap();
    other_api(&mut desc);
    let device_local_types: u32 = (0..consumer.memory_properties().memory_type_count)
        .filter(|&i| {
            consumer.memory_properties().memory_types[i as usize]
                .property_flags
                .contains(vk::MemoryPropertyFlags::DEVICE_LOCAL)
        })
        .map(|i| 1 << i)
        .sum();
    desc.memory_type_bits = !device_local_types;
    if desc.memory_type_bits != 0 {
        desc.memory_type_index = desc.memory_type_bits.trailing_zeros();
        let e = SharedMemory::import(&consumer, &desc, fd).err().expect("no device-local type allowed");
        assert!(e.to_string().contains("DEVICE_LOCAL"), "{e}");
    }
    drop(imported);
    drop(shared);
    assert_clean(&producer);
    assert_clean(&consumer);
}
