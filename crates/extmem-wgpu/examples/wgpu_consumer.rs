//! A wgpu program receives an image from another process, runs a compute pass on it, and
//! hands it back; the producer (plain extmem) checks every texel. The producer is this binary
//! without arguments; it starts the consumer as `wgpu_consumer --consume SOCKET`. Exits
//! non-zero on any mismatch or validation message (but the ones wgpu's own calls make,
//! `extmem_wgpu::validation::KNOWN_WGPU_MESSAGES`).
//!
//! `cargo run -p extmem-wgpu --example wgpu_consumer`

use extmem::transport::socket::socket_dir;
use extmem::transport::{Channel, Listener, Message};
use extmem::{vk, Context, ContextOptions, Dedicated, HandleType, Handoff, ImageDesc, SharedMemory};
use extmem_wgpu::{wgpu, SharedTexture};
use std::error::Error;
use std::os::fd::AsFd;
use std::time::Duration;

type Res<T> = Result<T, Box<dyn Error>>;

const WIDTH: u32 = 80;
const HEIGHT: u32 = 60;

/// What the compute pass makes of texel `x, y` holding `v`.
fn transform(v: u32, x: u32) -> u32 {
    v.wrapping_mul(3).wrapping_add(1).wrapping_add(x)
}

fn input(x: u32, y: u32) -> u32 {
    (y * WIDTH + x).wrapping_mul(2_654_435_761)
}

const SHADER: &str = r#"
@group(0) @binding(0) var image: texture_storage_2d<r32uint, read_write>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let size = textureDimensions(image);
    if (id.x >= size.x || id.y >= size.y) {
        return;
    }
    let v = textureLoad(image, vec2<i32>(id.xy)).x;
    textureStore(image, vec2<i32>(id.xy), vec4<u32>(v * 3u + 1u + id.x, 0u, 0u, 0u));
}
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--consume") => {
            args.get(2).ok_or_else(|| "--consume needs the socket path".into()).and_then(|p| consume(p))
        }
        _ => produce(),
    };
    if let Err(e) = result {
        eprintln!("wgpu_consumer: {e}");
        std::process::exit(1);
    }
}

fn produce() -> Res<()> {
    let ctx = Context::new(&ContextOptions::default().validation(true))?;
    let usage = vk::ImageUsageFlags::STORAGE | vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
    let desc = ImageDesc::new_2d(vk::Format::R32_UINT, WIDTH, HEIGHT, usage);
    let shared = SharedMemory::new_image(&ctx, desc, HandleType::OpaqueFd, Dedicated::Always)?;
    let texels: Vec<u8> =
        (0..HEIGHT).flat_map(|y| (0..WIDTH).map(move |x| input(x, y))).flat_map(u32::to_le_bytes).collect();
    shared.write(&texels, Handoff::host())?;

    let path = socket_dir().join(format!("wgpu_consumer-{}.sock", std::process::id()));
    let listener = Listener::bind(&path)?;
    let mut child = std::process::Command::new(std::env::current_exe()?).arg("--consume").arg(&path).spawn()?;
    let checked = (|| -> Res<String> {
        let channel = listener.accept(Duration::from_secs(60))?;
        let (descriptor, fd) = shared.export()?;
        channel.send(&Message::Share(descriptor), &[fd.as_fd()])?;
        channel.send(&Message::FrameReady { frame: 0 }, &[])?;
        match channel.recv()?.0 {
            Message::FrameDone { frame: 0 } => {}
            Message::Verdict { detail, .. } => return Err(format!("the consumer failed: {detail}").into()),
            other => return Err(format!("expected FrameDone, got {}", other.name()).into()),
        }
        // The consumer's GPU work was waited for and the image released to us: check it.
        let bytes = shared.read(Handoff::host())?;
        for (i, chunk) in bytes.chunks_exact(4).enumerate() {
            let (x, y) = (i as u32 % WIDTH, i as u32 / WIDTH);
            let got = u32::from_le_bytes(chunk.try_into()?);
            let want = transform(input(x, y), x);
            if got != want {
                return Err(format!("texel ({x}, {y}): {got:#x}, expected {want:#x}").into());
            }
        }
        let verdict = Message::Verdict { ok: true, detail: "checked".into() };
        channel.send(&verdict, &[])?;
        Ok(format!("{} texels computed by wgpu checked", WIDTH * HEIGHT))
    })();
    let status = child.wait()?;
    let messages = ctx.validation_messages();
    let detail = checked?;
    if !status.success() || !messages.is_empty() {
        return Err(format!("consumer exit {status}, producer validation messages: {messages:?}").into());
    }
    println!("wgpu_consumer: {detail} (validation layer on both sides)");
    Ok(())
}

fn consume(path: &str) -> Res<()> {
    extmem_wgpu::validation::install();
    let channel = Channel::connect(std::path::Path::new(path))?;
    let result = compute(&channel);
    // Any validation message fails the run, but those of wgpu's own calls the crate lists
    // (extmem_wgpu::validation::KNOWN_WGPU_MESSAGES).
    let messages = extmem_wgpu::validation::unexpected();
    let outcome = match result {
        Ok(()) if messages.is_empty() => Ok(()),
        Ok(()) => Err(format!("validation messages: {messages:?}")),
        Err(e) => Err(e.to_string()),
    };
    if let Err(detail) = &outcome {
        let _ = channel.send(&Message::Verdict { ok: false, detail: detail.clone() }, &[]);
    }
    Ok(outcome?)
}

fn compute(channel: &Channel) -> Res<()> {
    // The wgpu program: its own instance (with the validation layer), adapter and device.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        flags: wgpu::InstanceFlags::VALIDATION | wgpu::InstanceFlags::DEBUG,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;

    // extmem on wgpu's Vulkan device: import what the producer sent as a wgpu texture.
    let ctx = extmem_wgpu::context(&device)?;
    let (descriptor, fd) = channel.recv_share()?;
    let shared = SharedTexture::import(&device, &ctx, &descriptor, fd, wgpu::TextureUsages::STORAGE_BINDING)?;
    let _ = channel.recv_plain("FrameReady")?;

    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("transform"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("transform"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let view = shared.texture().create_view(&wgpu::TextureViewDescriptor::default());
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&view) }],
    });

    // Take the image over from the producer, run the pass, release it back.
    shared.acquire(&device, &queue, wgpu::TextureUses::UNINITIALIZED);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(WIDTH.div_ceil(8), HEIGHT.div_ceil(8), 1);
    }
    let release = shared.release_commands(&device, wgpu::TextureUses::STORAGE_READ_WRITE);
    let submission = queue.submit([encoder.finish(), release]);
    // Host synchronisation (wgpu's device cannot share a semaphore): wait for our own work.
    device
        .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
        .map_err(|e| format!("{e:?}"))?;
    channel.send(&Message::FrameDone { frame: 0 }, &[])?;
    match channel.recv_plain("a verdict")? {
        Message::Verdict { ok: true, .. } => Ok(()),
        other => Err(format!("the producer said {other:?}").into()),
    }
}
