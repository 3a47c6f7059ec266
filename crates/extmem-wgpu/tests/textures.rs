//! wgpu textures and buffers on shared memory, with extmem's own context as the other side in
//! this process: a texture wgpu renders into is exported and read back byte by byte; a buffer
//! the other side wrote is imported and copied by wgpu; descriptors wgpu cannot use are
//! refused. Validation is on for both; any message fails (but wgpu's known ones).

use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, ImageDesc, SharedMemory};
use extmem_wgpu::{validation, wgpu, Error, SharedBuffer, SharedTexture};
use std::sync::Arc;

fn wgpu_device() -> (wgpu::Device, wgpu::Queue) {
    validation::install();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        flags: wgpu::InstanceFlags::VALIDATION | wgpu::InstanceFlags::DEBUG,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).unwrap();
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap()
}

fn other_side() -> Arc<Context> {
    Context::new(&ContextOptions::default().validation(true)).unwrap()
}

fn assert_clean(other: &Context) {
    assert!(validation::unexpected().is_empty(), "wgpu side: {:?}", validation::unexpected());
    assert!(other.validation_messages().is_empty(), "extmem side: {:?}", other.validation_messages());
}

#[test]
fn a_texture_wgpu_renders_into_is_read_back_by_the_other_side() {
    let (device, queue) = wgpu_device();
    let ctx = extmem_wgpu::context(&device).unwrap();
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let shared =
        SharedTexture::new_exportable(&device, &ctx, (64, 32), format, wgpu::TextureUsages::RENDER_ATTACHMENT).unwrap();
    let view = shared.texture().create_view(&Default::default());
    let mut encoder = device.create_command_encoder(&Default::default());
    drop(encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view: &view,
            resolve_target: None,
            depth_slice: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color { r: 1.0, g: 0.0, b: 1.0, a: 0.0 }),
                store: wgpu::StoreOp::Store,
            },
        })],
        ..Default::default()
    }));
    let release = shared.release_commands(&device, wgpu::TextureUses::COLOR_TARGET);
    let submission = queue.submit([encoder.finish(), release]);
    device.poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None }).unwrap();

    let other = other_side();
    let (descriptor, fd) = shared.export().unwrap();
    assert_eq!(descriptor.resource, shared.raw().desc);
    let imported = SharedMemory::import(&other, &descriptor, fd).unwrap();
    let bytes = imported.read(Handoff::host()).unwrap();
    assert_eq!(bytes.len(), 64 * 32 * 4);
    assert!(bytes.chunks_exact(4).all(|t| t == [255, 0, 255, 0]), "first texels: {:?}", &bytes[..16]);
    drop(imported);
    assert_clean(&other);
}

#[test]
fn a_buffer_the_other_side_wrote_is_copied_by_wgpu() {
    let (device, queue) = wgpu_device();
    let ctx = extmem_wgpu::context(&device).unwrap();
    let other = other_side();
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let source =
        SharedMemory::new_buffer(&other, BufferDesc::new(8192, usage), HandleType::OpaqueFd, Dedicated::Never).unwrap();
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i * 13 % 256) as u8).collect();
    source.write(&bytes, Handoff::host()).unwrap();
    let (descriptor, fd) = source.export().unwrap();
    let shared = SharedBuffer::import(&device, &ctx, &descriptor, fd, wgpu::BufferUsages::COPY_SRC).unwrap();
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 8192,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(shared.buffer(), 0, &readback, 0, 8192);
    queue.submit([encoder.finish()]);
    readback.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("mapped"));
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    assert_eq!(&readback.slice(..).get_mapped_range().expect("mapped")[..], &bytes[..]);
    readback.unmap();
    drop(shared);
    assert_clean(&other);
}

#[test]
fn descriptors_wgpu_cannot_use_are_refused_with_what_is_wrong() {
    let (device, _queue) = wgpu_device();
    let ctx = extmem_wgpu::context(&device).unwrap();
    let other = other_side();
    let usage = vk::ImageUsageFlags::TRANSFER_SRC;
    let image = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 16, 16, usage);
    let shared = SharedMemory::new_image(&other, image, HandleType::OpaqueFd, Dedicated::Always).unwrap();
    // The other side's image lacks the usage wgpu needs for storage.
    let (descriptor, fd) = shared.export().unwrap();
    let err = SharedTexture::import(&device, &ctx, &descriptor, fd, wgpu::TextureUsages::STORAGE_BINDING)
        .err()
        .expect("refused");
    assert!(matches!(err, Error::Mismatch(_)) && err.to_string().contains("STORAGE"), "{err}");
    // An image is not a buffer, and a format wgpu does not have is named.
    let (descriptor, fd) = shared.export().unwrap();
    let err =
        SharedBuffer::import(&device, &ctx, &descriptor, fd, wgpu::BufferUsages::COPY_SRC).err().expect("refused");
    assert!(err.to_string().contains("holds an image"), "{err}");
    let (mut descriptor, fd) = shared.export().unwrap();
    descriptor.resource = extmem::ResourceDesc::Image(ImageDesc::new_2d(vk::Format::R64_UINT, 16, 16, usage));
    let err =
        SharedTexture::import(&device, &ctx, &descriptor, fd, wgpu::TextureUsages::COPY_SRC).err().expect("refused");
    assert!(err.to_string().contains("R64_UINT"), "{err}");
    // extmem's own submissions are refused on wgpu's queue.
    let mine = SharedMemory::new_buffer(
        &ctx,
        BufferDesc::new(256, vk::BufferUsageFlags::TRANSFER_DST),
        HandleType::OpaqueFd,
        Dedicated::Never,
    )
    .unwrap();
    let err = mine.read(Handoff::host()).expect_err("no submission to wgpu's queue");
    assert!(err.to_string().contains("does not submit"), "{err}");
    drop(mine);
    drop(shared);
    assert_clean(&other);
}
