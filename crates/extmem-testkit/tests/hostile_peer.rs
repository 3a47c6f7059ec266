//! A hostile producer process (`extmem-hostile-peer`) against an importer in this process, on
//! the system's driver with validation on: each class of bad input (descriptors that are not
//! memory, unsealed or shrinking host memory, zero and huge sizes, descriptors that break
//! Vulkan's rules, a peer dying at each step) ends in a clear error, within a generous bound,
//! with this process's descriptor count unchanged and no validation message.

use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::socket::Listener;
use extmem::transport::{Channel, Message};
use extmem::{Context, ContextOptions, Handoff, SharedMemory};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The peer program: the one built beside this test, or `EXTMEM_HOSTILE_PEER` (a machine that
/// runs copied test binaries).
fn peer_program() -> PathBuf {
    std::env::var_os("EXTMEM_HOSTILE_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_extmem-hostile-peer")))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// What the importer does with a producer's messages (what `extmem peer` does): import shares,
/// map host copies, probe frames; the first error ends it.
fn serve(ctx: &Arc<Context>, channel: &Channel) -> extmem::Result<()> {
    let mut shared: Option<SharedMemory> = None;
    let mut pool = extmem::pool::PoolImporter::new(ctx);
    let mut pooled = Vec::new();
    loop {
        let (message, mut fds) = channel.recv()?;
        match message {
            Message::PoolBlock(block) => {
                pool.add_block(&block, fds.pop().expect("recv checks the descriptor count"))?
            }
            Message::PoolShare(desc) => {
                pooled.push(pool.bind(&desc)?);
                extmem::pool::protocol::held(channel, &desc.handle)?;
            }
            Message::Share(desc) => {
                let fd = fds.pop().expect("recv checks the descriptor count");
                shared = Some(SharedMemory::import(ctx, &desc, fd)?);
                channel.send(&Message::Verdict { ok: true, detail: "imported".into() }, &[])?;
            }
            Message::HostBytes { len } => {
                let fd = fds.pop().expect("recv checks the descriptor count");
                let map = extmem::host::HostMapping::open(fd, len as usize)?;
                // SAFETY: nothing else in this process writes the mapping.
                let sum: u64 = unsafe { map.bytes() }.iter().map(|&b| b as u64).sum();
                channel.send(&Message::Verdict { ok: true, detail: format!("sum {sum}") }, &[])?;
            }
            Message::FrameReady { frame } => {
                let s = shared.as_ref().ok_or_else(|| extmem::Error::Protocol("FrameReady before Share".into()))?;
                s.read_prefix(4096, Handoff::host())?;
                FrameProtocol::new(channel, Role::Consumer).signal_done(Frame::new(frame))?;
            }
            Message::Bye => {
                // Touch every byte of what we hold last: memory shrunk under us would fault.
                if let Some(s) = &shared {
                    s.read(Handoff::host())?;
                }
                for p in &pooled {
                    touch(ctx, &pool, p)?;
                }
                return Ok(());
            }
            other => return Err(extmem::Error::Protocol(format!("unexpected {}", other.name()))),
        }
    }
}

/// Reads every byte of a pooled hand-off through a host mapping of its block (lavapipe's
/// memory is host-visible): a block shrunk under the mapping faults here.
fn touch(ctx: &Context, pool: &extmem::pool::PoolImporter, p: &extmem::pool::PooledImport) -> extmem::Result<()> {
    let h = p.desc().handle;
    let memory = pool.block_memory(h.block).expect("a held hand-off's block");
    let d = ctx.device();
    // SAFETY: the block's memory type is host-visible here; mapped and unmapped in this call.
    let ptr = unsafe { d.map_memory(memory, h.offset, h.size, extmem::vk::MemoryMapFlags::empty()) }
        .map_err(|result| extmem::Error::Vulkan { call: "vkMapMemory", result })?;
    // SAFETY: mapped above for `size` bytes; nothing writes them now.
    let sum: u64 =
        unsafe { std::slice::from_raw_parts(ptr as *const u8, h.size as usize) }.iter().map(|&b| b as u64).sum();
    // SAFETY: mapped above.
    unsafe { d.unmap_memory(memory) };
    std::hint::black_box(sum);
    Ok(())
}

/// Runs one case: `Ok(())` or the importer's error text.
fn run_case(ctx: &Arc<Context>, dir: &std::path::Path, case: &str) -> Result<(), String> {
    let path = dir.join(format!("hostile-{}-{case}.sock", std::process::id()));
    let listener = Listener::bind(&path).expect("bind");
    let mut child = Command::new(peer_program()).arg(&path).arg(case).spawn().expect("start extmem-hostile-peer");
    let outcome = listener.accept(Duration::from_secs(120)).and_then(|mut channel| {
        // Sends and receives give up after this (a peer that never reads included).
        channel.set_timeout(Duration::from_secs(20));
        let (tx, rx) = std::sync::mpsc::channel();
        let ctx = ctx.clone();
        let server = std::thread::spawn(move || {
            let r = serve(&ctx, &channel);
            drop(channel);
            let _ = tx.send(r);
        });
        // A generous bound: what is tested is that it ends, not how fast.
        let r = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("{case}: the importer hung"));
        // Its exit too (thread-local destructors of the driver), before the driver may unload.
        server.join().expect("the importer thread");
        r
    });
    let _ = child.kill();
    let _ = child.wait();
    drop(listener);
    outcome.map_err(|e| e.to_string())
}

#[test]
fn every_class_of_hostile_input_is_refused_clearly_without_hang_or_leak() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test binary reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let dir = extmem::transport::socket::socket_dir();
    let ctx = Context::new(&ContextOptions::default().validation(true).app_name("hostile test")).expect("context");
    // The good path first: the harness itself works, and lazily made state (the driver's export
    // probe, staging buffers, the loader's own descriptors) exists before counting.
    assert_eq!(run_case(&ctx, &dir, "good"), Ok(()));
    // Where the driver's export is no memfd (NVIDIA's character device), the forged memfds are
    // refused for their kind ("not a character device") before their seals, size or count.
    let cases: [(&str, &str); 37] = [
        ("good", ""),
        ("pipe", "a pipe or FIFO"),
        ("fifo", "a pipe or FIFO"),
        ("socket", "a socket"),
        ("eventfd", "an anonymous inode"),
        ("directory", "a directory"),
        ("unsealed-host", "not sealed"),
        ("shrink-host", "not sealed"),
        ("host-bytes-zero", "0 bytes"),
        ("host-bytes-huge", "holds 4096 bytes"),
        ("zero-size", "allocation size 0"),
        // Refused by maxMemoryAllocationSize where it is below 1 TiB (lavapipe: 2 GiB), else by
        // the driver's own answer to a 1 TiB buffer.
        ("huge-allocation", "allocation_size|size:|failed: "),
        ("3d-layers", "array_layers"),
        ("too-wide", "extent"),
        ("drm-tiling", "tiling"),
        ("undefined-usage", "usage"),
        ("opaque-unsealed-huge", "not sealed|not a character device"),
        ("opaque-sealed-small", "holds 8192 bytes|not a character device"),
        ("opaque-shrink", "not sealed|not a character device"),
        ("flood-never-reads", "did not read"),
        ("die-after-share", "closed the connection"),
        ("die-mid-frames", "closed the connection"),
        ("pool-good", ""),
        ("pool-pipe", "a pipe or FIFO"),
        ("pool-block-twice", "sent twice"),
        ("pool-unknown-block", "never sent"),
        ("pool-outside", "outside"),
        ("pool-overlap", "overlaps"),
        ("pool-die-after-block", "closed the connection"),
        ("pool-block-unsealed-shrink", "not sealed|not a character device"),
        ("pool-block-huge", "holds 16384 bytes|not a character device"),
        ("pool-many-blocks", "256 blocks|not a character device"),
        ("pool-heap", "bytes of blocks|not a character device"),
        ("pool-too-wide", "extent"),
        ("pool-undefined-usage", "usage"),
        ("pool-drm-tiling", "tiling"),
        ("pool-buffer-usage", "usage"),
    ];
    // EXTMEM_HOSTILE_CASES=a,b runs only those cases (to show one failing on its own).
    let only = std::env::var("EXTMEM_HOSTILE_CASES").ok();
    let selected = |case: &str| only.as_deref().is_none_or(|o| o.split(',').any(|c| c == case));
    for (case, says) in cases.into_iter().filter(|(c, _)| selected(c)) {
        let before = open_fds();
        let outcome = run_case(&ctx, &dir, case);
        eprintln!("{case}: {outcome:?}");
        match (says, &outcome) {
            ("", Ok(())) => {}
            ("", Err(e)) => panic!("{case}: {e}"),
            (_, Ok(())) => panic!("{case}: accepted"),
            (_, Err(e)) => assert!(says.split('|').any(|s| e.contains(s)), "{case}: {e:?} should say {says:?}"),
        }
        assert_eq!(open_fds(), before, "{case}: descriptors leaked");
    }
    // A peer that dies right after connecting: the importer hears the connection close.
    let e = run_case(&ctx, &dir, "die-connected").expect_err("a dead peer");
    assert!(e.contains("closed the connection"), "{e}");
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "{} validation message(s):\n{}", m.len(), m.join("\n"));
}

/// A hostile consumer: its refusal text (terminal escapes, a bell) reaches the producer's
/// error, and so its terminal, only escaped.
#[test]
fn a_consumers_refusal_reaches_the_producer_escaped() {
    use extmem::pool::{Pool, PoolLink, PoolOptions};
    let ctx = Context::new(&ContextOptions::default().validation(true).app_name("hostile consumer")).expect("context");
    let pool = Pool::new(&ctx, PoolOptions::default().block_size(1 << 20)).expect("pool");
    let usage = extmem::vk::BufferUsageFlags::TRANSFER_SRC;
    let p = pool.buffer(extmem::BufferDesc::new(4096, usage)).expect("pooled buffer");
    let (producer, consumer) = Channel::pair().expect("pair");
    let hostile = std::thread::spawn(move || {
        for _ in 0..2 {
            let _ = consumer.recv().expect("PoolBlock, then PoolShare");
        }
        let detail = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\nfake prompt$ ".to_string();
        consumer.send(&Message::Verdict { ok: false, detail }, &[]).expect("send the refusal");
        consumer
    });
    let mut link = PoolLink::new(&pool, &producer);
    link.share(&p).expect("share");
    let e = link.wait_held(&p.handle()).expect_err("refused").to_string();
    drop(hostile.join().expect("the hostile consumer"));
    assert!(!e.chars().any(|c| c.is_control()), "raw control characters reach the producer: {e:?}");
    assert!(e.contains("\\u{1b}]0;owned"), "{e}");
    drop(link);
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "{} validation message(s):\n{}", m.len(), m.join("\n"));
}
