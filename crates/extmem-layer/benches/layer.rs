#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The layer's cost, measured side by side in one run: the NV format query through the layer
//! against the KHR query it stands for without the layer, `vkAllocateMemory` with the NV
//! export structure (rewritten by the layer) against the KHR one (no layer), `vkCreateBuffer`
//! and `vkCreateImage` on an NV device (where the layer marks them external) against a device
//! without the layer, and a command the layer does not intercept.
//!
//! `cargo bench -p extmem-layer`

use ash::vk;
use criterion::{criterion_group, criterion_main, Criterion};
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};

fn query(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let nv = ash::nv::external_memory_capabilities::Instance::new(&nv_inst.entry, &nv_inst.instance);
    let (nv_pd, plain_pd) = (nv_inst.physical_device(), plain.physical_device());
    let usage = vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST;
    let mut g = c.benchmark_group("external_image_format_query");
    g.bench_function("nv_through_layer", |b| {
        b.iter(|| {
            let mut out = vk::ExternalImageFormatPropertiesNV::default();
            // SAFETY: valid arguments.
            let r = unsafe {
                (nv.fp().get_physical_device_external_image_format_properties_nv)(
                    nv_pd,
                    vk::Format::R8G8B8A8_UNORM,
                    vk::ImageType::TYPE_2D,
                    vk::ImageTiling::OPTIMAL,
                    usage,
                    vk::ImageCreateFlags::empty(),
                    vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32,
                    &mut out,
                )
            };
            assert_eq!(r, vk::Result::SUCCESS);
            out
        })
    });
    g.bench_function("khr_without_layer", |b| {
        b.iter(|| {
            let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
                .handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
            let info = vk::PhysicalDeviceImageFormatInfo2::default()
                .format(vk::Format::R8G8B8A8_UNORM)
                .ty(vk::ImageType::TYPE_2D)
                .tiling(vk::ImageTiling::OPTIMAL)
                .usage(usage)
                .push_next(&mut ext_info);
            let mut ext = vk::ExternalImageFormatProperties::default();
            let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
            // SAFETY: valid arguments.
            unsafe { plain.instance.get_physical_device_image_format_properties2(plain_pd, &info, &mut props) }
                .unwrap();
            props.image_format_properties
        })
    });
    g.finish();
}

fn allocate(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let nv_dev = TestDevice::new(&nv_inst, &[ash::nv::external_memory::NAME]);
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let khr_dev = TestDevice::new(&plain, &[ash::khr::external_memory_fd::NAME]);
    const SIZE: u64 = 1 << 20;
    let mut g = c.benchmark_group("allocate_exportable_1MiB");
    g.bench_function("nv_through_layer", |b| {
        b.iter(|| {
            let mut export = vk::ExportMemoryAllocateInfoNV::default()
                .handle_types(vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32);
            let info = vk::MemoryAllocateInfo::default().allocation_size(SIZE).push_next(&mut export);
            // SAFETY: valid arguments; freed at once.
            unsafe {
                let m = nv_dev.device.allocate_memory(&info, None).unwrap();
                nv_dev.device.free_memory(m, None);
            }
        })
    });
    g.bench_function("khr_without_layer", |b| {
        b.iter(|| {
            let mut export =
                vk::ExportMemoryAllocateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
            let info = vk::MemoryAllocateInfo::default().allocation_size(SIZE).push_next(&mut export);
            // SAFETY: valid arguments; freed at once.
            unsafe {
                let m = khr_dev.device.allocate_memory(&info, None).unwrap();
                khr_dev.device.free_memory(m, None);
            }
        })
    });
    g.finish();
}

/// Creating resources on an NV device, where the layer marks them OPAQUE_FD-external (one
/// cached query per kind of resource), against a device without the layer.
fn create_marked(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let nv_dev = TestDevice::new(&nv_inst, &[ash::nv::external_memory::NAME]);
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let plain_dev = TestDevice::new(&plain, &[]);
    let buffer_info = vk::BufferCreateInfo::default().size(4096).usage(vk::BufferUsageFlags::TRANSFER_DST);
    let image_info = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D { width: 256, height: 256, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    for (group, image) in [("create_destroy_buffer_4KiB", false), ("create_destroy_image_256x256", true)] {
        let mut g = c.benchmark_group(group);
        for (name, dev) in [("nv_device_marked_by_layer", &nv_dev), ("without_layer", &plain_dev)] {
            g.bench_function(name, |b| {
                b.iter(|| {
                    // SAFETY: valid arguments; destroyed at once.
                    unsafe {
                        if image {
                            let i = dev.device.create_image(&image_info, None).unwrap();
                            dev.device.destroy_image(i, None);
                        } else {
                            let buffer = dev.device.create_buffer(&buffer_info, None).unwrap();
                            dev.device.destroy_buffer(buffer, None);
                        }
                    }
                })
            });
        }
        g.finish();
    }
}

/// A command the layer does not intercept: the application calls the driver's own pointer, so
/// this should read 1.0x.
fn not_intercepted(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let nv_dev = TestDevice::new(&nv_inst, &[ash::nv::external_memory::NAME]);
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let plain_dev = TestDevice::new(&plain, &[]);
    let info = vk::FenceCreateInfo::default();
    let mut g = c.benchmark_group("not_intercepted_create_destroy_fence");
    for (name, dev) in [("nv_device_through_layer", &nv_dev), ("without_layer", &plain_dev)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                // SAFETY: valid arguments; destroyed at once.
                unsafe {
                    let fence = dev.device.create_fence(&info, None).unwrap();
                    dev.device.destroy_fence(fence, None);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, query, allocate, create_marked, not_intercepted);
criterion_main!(benches);
