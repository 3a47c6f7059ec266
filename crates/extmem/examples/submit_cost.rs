//! Where a frame's time goes on the Vulkan side: an empty submission, a fill with no barrier,
//! a fill with the external ownership release / acquire, and that plus the counter, each
//! submitted and waited for 200 times. `cargo run --release --example submit_cost`
//! (an investigation tool for the frame loop, not a test).

use extmem::{sync, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, SharedMemory};
use std::time::Instant;

fn main() -> extmem::Result<()> {
    let ctx = Context::new(&ContextOptions::default())?;
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let frame = SharedMemory::new_buffer(
        &ctx,
        BufferDesc { size: 1920 * 1080 * 4, usage },
        HandleType::OpaqueFd,
        Dedicated::Always,
    )?;
    let counter =
        SharedMemory::new_buffer(&ctx, BufferDesc { size: 256, usage }, HandleType::OpaqueFd, Dedicated::Always)?;
    let buffer = frame.buffer().expect("a buffer");
    let family = ctx.queue_family();
    let n = 200;
    let time = |what: &str, f: &dyn Fn() -> extmem::Result<()>| -> extmem::Result<()> {
        f()?;
        let t = Instant::now();
        for _ in 0..n {
            f()?;
        }
        println!("{what:<44} {:>9.1} µs", t.elapsed().as_secs_f64() * 1e6 / n as f64);
        Ok(())
    };
    println!("{} (1080p RGBA8 frame, {n} submissions each, waited one by one)", ctx.device_name());
    time("empty submission", &|| ctx.submit(|_, _| {}))?;
    time("fill, no barrier", &|| ctx.submit(|d, cb| unsafe { d.cmd_fill_buffer(cb, buffer, 0, vk::WHOLE_SIZE, 7) }))?;
    time("fill, release to EXTERNAL only", &|| {
        ctx.submit(|d, cb| unsafe {
            d.cmd_fill_buffer(cb, buffer, 0, vk::WHOLE_SIZE, 7);
            let r = sync::release_buffer(buffer, family, vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                vk::DependencyFlags::empty(),
                &[],
                &[r],
                &[],
            );
        })
    })?;
    time("fill, waited (acquire + release EXTERNAL)", &|| frame.fill(7, Handoff::host())?.wait())?;
    time("fill + counter, waited", &|| frame.fill(7, Handoff::host().counter(&counter, 0, 1))?.wait())?;
    let pending = std::cell::RefCell::new(std::collections::VecDeque::new());
    time("fill + counter, 3 in flight", &|| {
        let mut p = pending.borrow_mut();
        p.push_back(frame.fill(7, Handoff::host().counter(&counter, 0, 1))?);
        if p.len() > 3 {
            p.pop_front().expect("non-empty").wait()?;
        }
        Ok(())
    })?;
    pending.borrow_mut().clear();
    Ok(())
}
