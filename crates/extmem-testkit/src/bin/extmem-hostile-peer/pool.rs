//! The pool protocol's hostile cases: a real block first (except where the block itself is the
//! bad input), then the bad input.

use crate::forge;
use extmem::pool::{BlockDesc, Pool, PoolHandle, PoolLink, PoolOptions, PooledDesc};
use extmem::transport::{Channel, Message};
use extmem::{vk, BufferDesc, Context, HandleType, ImageDesc, ResourceDesc};
use std::os::fd::AsFd;
use std::sync::Arc;

const BLOCK: u64 = 1 << 20;

fn block_desc(ctx: &Context, block: u32, size: u64) -> BlockDesc {
    BlockDesc {
        block,
        size,
        handle_type: HandleType::OpaqueFd,
        memory_type_index: 0,
        device_uuid: ctx.device_uuid(),
        driver_uuid: ctx.driver_uuid(),
    }
}

/// Runs pool case `case` (the name after `pool-`).
pub fn run(ctx: &Arc<Context>, channel: &Channel, case: &str) {
    let pool = Pool::new(ctx, PoolOptions::default().block_size(BLOCK)).expect("pool");
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let p = pool.buffer(BufferDesc { size: 65536, usage }).expect("pooled buffer");
    let good = p.desc();
    let send_share = |desc: PooledDesc| {
        channel.send(&Message::PoolShare(desc), &[]).expect("send");
        channel.recv()
    };
    let send_block = |desc: BlockDesc, fd: &dyn AsFd| {
        channel.send(&Message::PoolBlock(desc), &[fd.as_fd()]).expect("send");
    };
    let with = |handle: PoolHandle| PooledDesc { handle, ..good };
    let image = |edit: &dyn Fn(&mut ImageDesc)| {
        let mut i = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 64, vk::ImageUsageFlags::TRANSFER_SRC);
        edit(&mut i);
        PooledDesc { resource: ResourceDesc::Image(i), ..good }
    };
    // The pool's own export of block 0, to copy its header and bytes.
    let (_, real) = pool.export_block(good.handle.block).expect("export the block");
    let header = forge::header_of(&real);
    match case {
        "pipe" => {
            let (r, _w) = rustix::pipe::pipe().expect("pipe");
            send_block(block_desc(ctx, 0, BLOCK), &r);
            let _ = channel.recv();
            return;
        }
        "block-unsealed-shrink" => {
            // A copy of the real block, unsealed: it imports, then shrinks under the mapping.
            let copy = forge::unsealed_copy(&real);
            send_block(block_desc(ctx, 0, BLOCK), &copy);
            if let Ok((Message::PoolHeld(_), _)) = send_share(good) {
                rustix::fs::ftruncate(&copy, 0).expect("shrink");
                let _ = channel.send(&Message::Bye, &[]);
            }
            let _ = channel.recv();
            return;
        }
        "block-huge" => {
            // A block claiming 1 GiB, backed by 16 KiB (sealed: only the size is wrong).
            let fd = forge::memfd_claiming(header, 16 << 10, (1 << 30) + 4136, true);
            send_block(block_desc(ctx, 0, 1 << 30), &fd);
            let _ = send_share(good);
            return;
        }
        "many-blocks" | "heap" => {
            // Forged blocks that pass every check but the count (4 KiB each) or the bytes (1 GiB).
            let size: u64 = if case == "heap" { 1 << 30 } else { 4096 };
            let len = forge::file_len(&real, BLOCK, size);
            for n in 0..300 {
                let fd = forge::memfd_claiming(header, len, len, true);
                if channel.send(&Message::PoolBlock(block_desc(ctx, n, size)), &[fd.as_fd()]).is_err() {
                    return;
                }
            }
            let _ = channel.send(&Message::Bye, &[]);
            let _ = channel.recv();
            return;
        }
        _ => {}
    }
    let mut link = PoolLink::new(&pool, channel);
    link.send_block(good.handle.block).expect("send the block");
    let _ = match case {
        "good" => {
            link.share(&p).expect("share");
            link.wait_held(&p.handle()).expect("the importer refused a good pooled hand-off");
            channel.send(&Message::Bye, &[]).expect("bye");
            return;
        }
        "die-after-block" => crate::die(),
        "block-twice" => {
            let fd = forge::memfd_claiming(header, forge::file_len(&real, BLOCK, BLOCK), 0, true);
            send_block(block_desc(ctx, good.handle.block, BLOCK), &fd);
            channel.recv()
        }
        "unknown-block" => send_share(with(PoolHandle { block: 9, ..good.handle })),
        "outside" => send_share(with(PoolHandle { offset: BLOCK - 4096, ..good.handle })),
        "overlap" => {
            link.share(&p).expect("share");
            link.wait_held(&p.handle()).expect("the importer refused a good pooled hand-off");
            send_share(with(PoolHandle { offset: good.handle.offset + 4096, generation: 99, ..good.handle }))
        }
        "too-wide" => send_share(image(&|i| {
            i.extent.width = 65536;
            i.extent.height = 65536;
        })),
        "undefined-usage" => send_share(image(&|i| i.usage = vk::ImageUsageFlags::from_raw(0x8000_0000))),
        "drm-tiling" => send_share(image(&|i| i.tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)),
        "buffer-usage" => {
            let b = BufferDesc { size: 65536, usage: vk::BufferUsageFlags::from_raw(0xffff_ffff) };
            send_share(PooledDesc { resource: ResourceDesc::Buffer(b), ..good })
        }
        other => {
            eprintln!("pool case {other:?} has no sender");
            std::process::exit(2);
        }
    };
}
