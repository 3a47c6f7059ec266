#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The layer's cost, each intercepted call measured side by side in one run against the KHR
//! call(s) that give the same answer without the layer:
//! - the NV format query against `vkGetPhysicalDeviceImageFormatProperties2` with
//!   `VkPhysicalDeviceExternalImageFormatInfo`: repeated, and over 1,000+ distinct combinations;
//! - `vkCreateBuffer` / `vkCreateImage` on an NV device (the layer marks them external where that
//!   changes no requirement) against the KHR create with the structure the layer would add, for
//!   the repeated call, and for the first call of each of 1,000+ kinds on a fresh device (the
//!   layer then asks the external query and compares requirements: the KHR baseline makes the
//!   same calls: external query, two `vkGetDevice*MemoryRequirements`, create, destroy);
//! - `vkAllocateMemory` with the NV export structure against the KHR one;
//! - a command the layer does not intercept.
//!
//! Per-call figures for the "first call" groups: criterion's time divided by the combinations.
//! `cargo bench -p extmem-layer`

use ash::vk;
use criterion::{criterion_group, criterion_main, Criterion};
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};
use std::time::{Duration, Instant};

const FD: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
const NV_WIN32: vk::ExternalMemoryHandleTypeFlagsNV = vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32;

/// Image kinds: `(format, tiling, usage, flags)`.
type Kind = (vk::Format, vk::ImageTiling, vk::ImageUsageFlags, vk::ImageCreateFlags);

/// At least 1,000 image kinds the driver supports (asked without the layer).
fn image_kinds(inst: &TestInstance) -> Vec<Kind> {
    use vk::Format as F;
    let formats = [
        F::R8G8B8A8_UNORM,
        F::R8G8B8A8_SRGB,
        F::B8G8R8A8_UNORM,
        F::B8G8R8A8_SRGB,
        F::R16G16B16A16_SFLOAT,
        F::R32G32B32A32_SFLOAT,
        F::R8_UNORM,
        F::R8G8_UNORM,
        F::R16_SFLOAT,
        F::R32_SFLOAT,
        F::R32_UINT,
        F::A2B10G10R10_UNORM_PACK32,
        F::R16G16_SFLOAT,
        F::R32G32_SFLOAT,
        F::R8G8B8A8_UINT,
        F::R16G16B16A16_UNORM,
    ];
    let bits = [
        vk::ImageUsageFlags::TRANSFER_SRC,
        vk::ImageUsageFlags::TRANSFER_DST,
        vk::ImageUsageFlags::SAMPLED,
        vk::ImageUsageFlags::STORAGE,
        vk::ImageUsageFlags::COLOR_ATTACHMENT,
        vk::ImageUsageFlags::INPUT_ATTACHMENT,
    ];
    let mut kinds = Vec::new();
    for format in formats {
        for tiling in [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR] {
            for flags in [vk::ImageCreateFlags::empty(), vk::ImageCreateFlags::MUTABLE_FORMAT] {
                for mask in 1u32..(1 << bits.len()) {
                    let usage = bits
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .fold(vk::ImageUsageFlags::empty(), |u, (_, &b)| u | b);
                    // SAFETY: a live physical device.
                    let ok = unsafe {
                        inst.instance.get_physical_device_image_format_properties(
                            inst.physical_device(),
                            format,
                            vk::ImageType::TYPE_2D,
                            tiling,
                            usage,
                            flags,
                        )
                    }
                    .is_ok_and(|p| p.max_extent.width >= 64 && p.max_extent.height >= 64);
                    if ok {
                        kinds.push((format, tiling, usage, flags));
                    }
                }
            }
        }
    }
    assert!(kinds.len() >= 1000, "only {} supported image kinds", kinds.len());
    kinds
}

fn image_info<'a>((format, tiling, usage, flags): Kind) -> vk::ImageCreateInfo<'a> {
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(format)
        .extent(vk::Extent3D { width: 64, height: 64, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(tiling)
        .usage(usage)
        .flags(flags)
        .initial_layout(vk::ImageLayout::UNDEFINED)
}

/// 1,023 buffer kinds: every combination of ten usage bits.
fn buffer_kinds() -> Vec<vk::BufferUsageFlags> {
    (1u32..1024).map(|m| vk::BufferUsageFlags::from_raw(m & 0x1ff | if m & 0x200 != 0 { 0x20000 } else { 0 })).collect()
}

fn query(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let nv = ash::nv::external_memory_capabilities::Instance::new(&nv_inst.entry, &nv_inst.instance);
    let (nv_pd, plain_pd) = (nv_inst.physical_device(), plain.physical_device());
    let nv_query = |(format, tiling, usage, flags): Kind| {
        let mut out = vk::ExternalImageFormatPropertiesNV::default();
        // SAFETY: valid arguments.
        let r = unsafe {
            (nv.fp().get_physical_device_external_image_format_properties_nv)(
                nv_pd,
                format,
                vk::ImageType::TYPE_2D,
                tiling,
                usage,
                flags,
                NV_WIN32,
                &mut out,
            )
        };
        (r, out.external_memory_features)
    };
    let khr_query = |(format, tiling, usage, flags): Kind| {
        let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(FD);
        let info = vk::PhysicalDeviceImageFormatInfo2::default()
            .format(format)
            .ty(vk::ImageType::TYPE_2D)
            .tiling(tiling)
            .usage(usage)
            .flags(flags)
            .push_next(&mut ext_info);
        let mut ext = vk::ExternalImageFormatProperties::default();
        let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
        // SAFETY: valid arguments.
        let r = unsafe { plain.instance.get_physical_device_image_format_properties2(plain_pd, &info, &mut props) };
        (r, ext.external_memory_properties.external_memory_features)
    };
    let one: Kind = (
        vk::Format::R8G8B8A8_UNORM,
        vk::ImageTiling::OPTIMAL,
        vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
        vk::ImageCreateFlags::empty(),
    );
    let kinds = image_kinds(&plain);
    let mut g = c.benchmark_group("external_image_format_query");
    g.bench_function("repeated/nv_through_layer", |b| b.iter(|| nv_query(one)));
    g.bench_function("repeated/khr_without_layer", |b| b.iter(|| khr_query(one)));
    let n = kinds.len();
    g.bench_function(format!("{n}_distinct_per_call/nv_through_layer"), |b| {
        b.iter_custom(|iters| {
            over(&kinds, iters, |k| {
                let _ = std::hint::black_box(nv_query(k));
            })
        })
    });
    g.bench_function(format!("{n}_distinct_per_call/khr_without_layer"), |b| {
        b.iter_custom(|iters| {
            over(&kinds, iters, |k| {
                let _ = std::hint::black_box(khr_query(k));
            })
        })
    });
    g.finish();
}

/// The time per call of `f` over every kind, `iters` times.
fn over<K: Copy>(kinds: &[K], iters: u64, f: impl Fn(K)) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        for &k in kinds {
            f(k);
        }
    }
    start.elapsed() / kinds.len() as u32
}

/// What the KHR calls that give the layer's answer for a first buffer cost: the external
/// query, the requirements both ways, and the create (marked where the answers agree).
fn khr_first_buffer(inst: &TestInstance, dev: &TestDevice, usage: vk::BufferUsageFlags) {
    let info = vk::PhysicalDeviceExternalBufferInfo::default().usage(usage).handle_type(FD);
    let mut props = vk::ExternalBufferProperties::default();
    // SAFETY: valid arguments on live objects; the buffer is destroyed at once.
    unsafe {
        inst.instance.get_physical_device_external_buffer_properties(dev.physical_device, &info, &mut props);
        let reqs = |marked: bool| {
            let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(FD);
            let mut ci = vk::BufferCreateInfo::default().size(4096).usage(usage);
            if marked {
                ci = ci.push_next(&mut ext);
            }
            // The layer compares the dedicated preference too.
            let mut dedicated = vk::MemoryDedicatedRequirements::default();
            let mut out = vk::MemoryRequirements2::default().push_next(&mut dedicated);
            dev.device.get_device_buffer_memory_requirements(
                &vk::DeviceBufferMemoryRequirements::default().create_info(&ci),
                &mut out,
            );
            let bits = out.memory_requirements.memory_type_bits;
            (bits, dedicated.prefers_dedicated_allocation)
        };
        let marked = reqs(false) == reqs(true);
        let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(FD);
        let mut ci = vk::BufferCreateInfo::default().size(4096).usage(usage);
        if marked {
            ci = ci.push_next(&mut ext);
        }
        let b = dev.device.create_buffer(&ci, None).unwrap();
        dev.device.destroy_buffer(b, None);
    }
}

fn khr_first_image(inst: &TestInstance, dev: &TestDevice, kind: Kind) {
    let (format, tiling, usage, flags) = kind;
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(FD);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(tiling)
        .usage(usage)
        .flags(flags)
        .push_next(&mut ext_info);
    let mut ext = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
    // SAFETY: valid arguments on live objects; the image is destroyed at once.
    unsafe {
        let exportable =
            inst.instance.get_physical_device_image_format_properties2(dev.physical_device, &info, &mut props).is_ok();
        let reqs = |marked: bool| {
            let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(FD);
            let mut ci = image_info(kind);
            if marked {
                ci = ci.push_next(&mut ext);
            }
            // The layer compares the dedicated preference too.
            let mut dedicated = vk::MemoryDedicatedRequirements::default();
            let mut out = vk::MemoryRequirements2::default().push_next(&mut dedicated);
            dev.device.get_device_image_memory_requirements(
                &vk::DeviceImageMemoryRequirements::default().create_info(&ci),
                &mut out,
            );
            let bits = out.memory_requirements.memory_type_bits;
            (bits, dedicated.prefers_dedicated_allocation)
        };
        let marked = exportable && reqs(false) == reqs(true);
        let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(FD);
        let mut ci = image_info(kind);
        if marked {
            ci = ci.push_next(&mut ext);
        }
        let i = dev.device.create_image(&ci, None).unwrap();
        dev.device.destroy_image(i, None);
    }
}

/// Times `each` over every kind on a fresh device per sample: the first call of each kind.
fn first_calls<'a, K: Copy>(
    kinds: &'a [K],
    fresh: &'a dyn Fn() -> TestDevice,
    each: &'a dyn Fn(&TestDevice, K),
) -> impl FnMut(u64) -> Duration + 'a {
    move |iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let dev = fresh();
            let start = Instant::now();
            for &k in kinds {
                each(&dev, k);
            }
            total += start.elapsed();
        }
        total / kinds.len() as u32
    }
}

fn create(c: &mut Criterion) {
    let nv_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let nv_device = || TestDevice::new(&nv_inst, &[ash::nv::external_memory::NAME]);
    let plain_device = || TestDevice::new(&plain, &[]);
    let (nv_dev, plain_dev) = (nv_device(), plain_device());
    let buffer = |dev: &TestDevice, usage: vk::BufferUsageFlags, marked: bool| {
        let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(FD);
        let mut ci = vk::BufferCreateInfo::default().size(4096).usage(usage);
        if marked {
            ci = ci.push_next(&mut ext);
        }
        // SAFETY: valid arguments; destroyed at once.
        unsafe {
            let b = dev.device.create_buffer(&ci, None).unwrap();
            dev.device.destroy_buffer(b, None);
        }
    };
    let image = |dev: &TestDevice, kind: Kind, marked: bool| {
        let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(FD);
        let mut ci = image_info(kind).extent(vk::Extent3D { width: 256, height: 256, depth: 1 });
        if marked {
            ci = ci.push_next(&mut ext);
        }
        // SAFETY: valid arguments; destroyed at once.
        unsafe {
            let i = dev.device.create_image(&ci, None).unwrap();
            dev.device.destroy_image(i, None);
        }
    };
    let usage = vk::BufferUsageFlags::TRANSFER_DST;
    let kind: Kind = (
        vk::Format::R8G8B8A8_UNORM,
        vk::ImageTiling::OPTIMAL,
        vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
        vk::ImageCreateFlags::empty(),
    );
    let mut g = c.benchmark_group("create_destroy_buffer_4KiB");
    g.bench_function("repeated/nv_device_through_layer", |b| b.iter(|| buffer(&nv_dev, usage, false)));
    g.bench_function("repeated/khr_marked_without_layer", |b| b.iter(|| buffer(&plain_dev, usage, true)));
    g.bench_function("repeated/plain_without_layer", |b| b.iter(|| buffer(&plain_dev, usage, false)));
    let kinds = buffer_kinds();
    let n = kinds.len();
    // Each sample makes a fresh device: fewer samples.
    g.sample_size(10);
    g.bench_function(format!("first_of_{n}_kinds_per_call/nv_device_through_layer"), |b| {
        b.iter_custom(first_calls(&kinds, &nv_device, &|d, u| buffer(d, u, false)))
    });
    g.bench_function(format!("first_of_{n}_kinds_per_call/khr_same_answer_without_layer"), |b| {
        b.iter_custom(first_calls(&kinds, &plain_device, &|d, u| khr_first_buffer(&plain, d, u)))
    });
    g.finish();
    let mut g = c.benchmark_group("create_destroy_image");
    g.bench_function("repeated_256x256/nv_device_through_layer", |b| b.iter(|| image(&nv_dev, kind, false)));
    g.bench_function("repeated_256x256/khr_marked_without_layer", |b| b.iter(|| image(&plain_dev, kind, true)));
    g.bench_function("repeated_256x256/plain_without_layer", |b| b.iter(|| image(&plain_dev, kind, false)));
    let kinds = image_kinds(&plain);
    let n = kinds.len();
    g.sample_size(10);
    let small = |dev: &TestDevice, k: Kind| {
        // SAFETY: valid arguments; destroyed at once.
        unsafe {
            let i = dev.device.create_image(&image_info(k), None).unwrap();
            dev.device.destroy_image(i, None);
        }
    };
    g.bench_function(format!("first_of_{n}_kinds_64x64_per_call/nv_device_through_layer"), |b| {
        b.iter_custom(first_calls(&kinds, &nv_device, &small))
    });
    g.bench_function(format!("first_of_{n}_kinds_64x64_per_call/khr_same_answer_without_layer"), |b| {
        b.iter_custom(first_calls(&kinds, &plain_device, &|d, k| khr_first_image(&plain, d, k)))
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
    g.bench_function("repeated/nv_through_layer", |b| {
        b.iter(|| {
            let mut export = vk::ExportMemoryAllocateInfoNV::default().handle_types(NV_WIN32);
            let info = vk::MemoryAllocateInfo::default().allocation_size(SIZE).push_next(&mut export);
            // SAFETY: valid arguments; freed at once.
            unsafe {
                let m = nv_dev.device.allocate_memory(&info, None).unwrap();
                nv_dev.device.free_memory(m, None);
            }
        })
    });
    g.bench_function("repeated/khr_without_layer", |b| {
        b.iter(|| {
            let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(FD);
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = query, create, allocate, not_intercepted
}
criterion_main!(benches);
