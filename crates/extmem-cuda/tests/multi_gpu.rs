//! Hosts with two or more NVIDIA GPUs: producers on each GPU matched to their CUDA device by
//! UUID (also with `CUDA_VISIBLE_DEVICES` reordering CUDA's numbering), each import checked to
//! be on the descriptor's GPU, and consumers on the other GPU: refused naming both UUIDs by
//! default, copied peer to peer when asked, refused when the owning GPU is invisible, and a
//! Vulkan consumer reading through host memory.
//!
//! Each test prints SKIPPED and passes where there are fewer than two GPUs that are both a
//! Vulkan and a CUDA device; `scripts/gpu-check-multi.sh` runs them on such a host.

use extmem::{caps, pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, SharedMemory};
use extmem_cuda::{Cuda, Error};
use std::process::Command;
use std::sync::Arc;

/// Set in the child processes the tests start with another `CUDA_VISIBLE_DEVICES`.
const CHILD: &str = "EXTMEM_MULTI_GPU_CHILD";

fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The CUDA devices' UUIDs and, for each, the index of the Vulkan device with that UUID;
/// `None` (after saying SKIPPED) unless at least two GPUs are both.
fn gpus(test: &str) -> Option<Vec<([u8; 16], usize)>> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before this test starts threads or Vulkan.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    if !extmem_cuda::available() {
        skipped(test, "no CUDA driver on this machine; needs two NVIDIA GPUs (scripts/gpu-check-multi.sh)");
        return None;
    }
    let cuda = extmem_cuda::device_uuids().expect("CUDA device list");
    let vulkan = caps::query_all(false, &caps::Query::default()).expect("Vulkan devices");
    let paired: Vec<([u8; 16], usize)> = cuda
        .iter()
        .filter_map(|u| vulkan.iter().find(|d| d.device_uuid == caps::hex(u)).map(|d| (*u, d.index)))
        .collect();
    if paired.len() < 2 {
        skipped(test, &format!("needs two GPUs that are Vulkan and CUDA devices; this host has {}", paired.len()));
        return None;
    }
    Some(paired)
}

fn context_on(vulkan_index: usize) -> Arc<Context> {
    Context::new(&ContextOptions::default().validation(true).device(Some(vulkan_index))).expect("Vulkan context")
}

fn buffer(ctx: &Arc<Context>, len: usize, handle_type: HandleType) -> SharedMemory {
    let desc =
        BufferDesc { size: len as u64, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    SharedMemory::new_buffer(ctx, desc, handle_type, Dedicated::Always).expect("shared buffer")
}

fn assert_clean(ctx: &Context) {
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "validation: {}", m.join("\n"));
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs test `name` of this binary again with `CUDA_VISIBLE_DEVICES=visible`; its output.
fn rerun_with_visible(name: &str, visible: &str, extra_env: &[(&str, String)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env("CUDA_VISIBLE_DEVICES", visible)
        .env(CHILD, "1")
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("rerunning the test binary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} with CUDA_VISIBLE_DEVICES={visible} failed:\n{text}");
    assert!(!text.contains("SKIPPED"), "{name} with CUDA_VISIBLE_DEVICES={visible} skipped:\n{text}");
    text
}

#[test]
fn every_gpu_shares_with_the_cuda_device_of_its_uuid_and_the_memory_stays_there() {
    let Some(gpus) = gpus("every GPU") else { return };
    let len = 2 << 20;
    for (ordinal, (uuid, vk_index)) in gpus.iter().enumerate() {
        let ctx = context_on(*vk_index);
        assert_eq!(ctx.device_uuid(), *uuid);
        let shared = buffer(&ctx, len, HandleType::OpaqueFd);
        shared.write(&pattern::fill(len, ordinal as u64), Handoff::host()).unwrap();
        let (desc, fd) = shared.export().unwrap();
        let cuda = Cuda::for_descriptor(&desc).unwrap();
        assert_eq!(cuda.ordinal(), ordinal, "the consumer picked the CUDA device with the descriptor's UUID");
        let mem = cuda.import_memory(&desc, fd).unwrap();
        mem.check_device(&desc).unwrap();
        assert_eq!(mem.device_uuid().unwrap(), *uuid);
        assert_eq!(pattern::first_mismatch(&mem.to_host(&cuda).unwrap(), ordinal as u64), None);
        // The line the reordering test compares.
        println!("PAIR {} cuda {ordinal} vulkan {vk_index}", caps::hex(uuid));
        drop(mem);
        drop(shared);
        assert_clean(&ctx);
    }
}

#[test]
fn reordered_cuda_visible_devices_still_match_by_uuid() {
    if std::env::var_os(CHILD).is_some() {
        return; // only the parent compares orders
    }
    let Some(gpus) = gpus("reordered CUDA_VISIBLE_DEVICES") else { return };
    let pairs = |text: &str| -> Vec<(String, usize)> {
        text.lines()
            // libtest may print the test's name on the line before the child's own output.
            .filter_map(|l| l.find("PAIR ").map(|at| &l[at + "PAIR ".len()..]))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[0].to_owned(), w[2].parse().unwrap())
            })
            .collect()
    };
    let reversed: Vec<String> = (0..gpus.len()).rev().map(|i| i.to_string()).collect();
    let text = rerun_with_visible(
        "every_gpu_shares_with_the_cuda_device_of_its_uuid_and_the_memory_stays_there",
        &reversed.join(","),
        &[],
    );
    let seen = pairs(&text);
    assert_eq!(seen.len(), gpus.len(), "every GPU shared under the reversed order:\n{text}");
    for (uuid, ordinal) in seen {
        let before = gpus.iter().position(|(u, _)| caps::hex(u) == uuid).expect("a known GPU");
        assert_eq!(ordinal, gpus.len() - 1 - before, "GPU {uuid}: CUDA's numbering was reversed");
    }
}

#[test]
fn a_cuda_consumer_on_the_other_gpu_is_refused_naming_both_then_copies_peer_to_peer_when_asked() {
    let Some(gpus) = gpus("peer copy") else { return };
    let ((owner_uuid, vk_index), (consumer_uuid, _)) = (gpus[0], gpus[1]);
    let len = 4 << 20;
    let ctx = context_on(vk_index);
    let shared = buffer(&ctx, len, HandleType::OpaqueFd);
    shared.write(&pattern::fill(len, 7), Handoff::host()).unwrap();
    let consumer = Cuda::new(1).unwrap();
    assert_eq!(consumer.uuid(), consumer_uuid);
    let (desc, fd) = shared.export().unwrap();
    let before = open_fds();
    let e = consumer.import_memory(&desc, fd).err().expect("an opaque fd of GPU 0 refused on GPU 1");
    assert!(matches!(e, Error::OtherGpu(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains(&caps::hex(&owner_uuid)) && text.contains(&caps::hex(&consumer_uuid)), "{text}");
    assert_eq!(open_fds(), before - 1, "the refused fd was closed");

    let (desc, fd) = shared.export().unwrap();
    let peer = consumer.import_memory_peer(&desc, fd).unwrap();
    peer.imported().check_device(&desc).unwrap();
    assert_eq!(peer.local().device_uuid().unwrap(), consumer_uuid, "the copy is on the consumer's GPU");
    for frame in 10..13u64 {
        shared.write(&pattern::fill(len, frame), Handoff::host()).unwrap();
        peer.copy().unwrap();
        peer.owner().synchronize().unwrap();
        assert_eq!(pattern::first_mismatch(&peer.local().to_host(&consumer).unwrap(), frame), None, "frame {frame}");
    }
    eprintln!("peer access between the two GPUs: {}", peer.peer_access());
    drop(peer);
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn a_consumer_that_cannot_see_the_owning_gpu_gets_both_uuids() {
    if std::env::var_os(CHILD).is_none() {
        let Some(gpus) = gpus("owning GPU invisible") else { return };
        // The child sees only the second GPU and shares memory of the first.
        rerun_with_visible(
            "a_consumer_that_cannot_see_the_owning_gpu_gets_both_uuids",
            "1",
            &[("EXTMEM_TEST_OWNER", gpus[0].1.to_string()), ("EXTMEM_TEST_CONSUMER", caps::hex(&gpus[1].0))],
        );
        return;
    }
    let owner_index: usize = std::env::var("EXTMEM_TEST_OWNER").unwrap().parse().unwrap();
    let consumer_hex = std::env::var("EXTMEM_TEST_CONSUMER").unwrap();
    let cuda_list = extmem_cuda::device_uuids().unwrap();
    assert_eq!(
        cuda_list.iter().map(caps::hex).collect::<Vec<_>>(),
        std::slice::from_ref(&consumer_hex),
        "CUDA sees one GPU"
    );
    let ctx = context_on(owner_index);
    let owner_hex = caps::hex(&ctx.device_uuid());
    let shared = buffer(&ctx, 1 << 20, HandleType::OpaqueFd);
    let (desc, fd) = shared.export().unwrap();
    drop(fd);
    let e = Cuda::for_descriptor(&desc).err().expect("no CUDA device for the owning GPU").to_string();
    assert!(e.contains(&owner_hex) && e.contains(&consumer_hex), "{e}");
    let consumer = Cuda::new(0).unwrap();
    let (desc, fd) = shared.export().unwrap();
    let e = consumer.import_memory_peer(&desc, fd).err().expect("the owning GPU is not visible");
    assert!(matches!(e, Error::OtherGpu(_)), "{e}");
    assert!(e.to_string().contains(&owner_hex) && e.to_string().contains(&consumer_hex), "{e}");
    println!("refused: {e}");
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn a_vulkan_consumer_on_the_other_gpu_reads_through_host_memory_not_an_opaque_fd() {
    let Some(gpus) = gpus("Vulkan on the other GPU") else { return };
    let (producer, consumer) = (context_on(gpus[0].1), context_on(gpus[1].1));
    if !producer.supports_handle_type(HandleType::HostAllocation) {
        skipped("Vulkan on the other GPU", "no VK_EXT_external_memory_host");
        return;
    }
    let len = 4 << 20;
    let device = buffer(&producer, len, HandleType::OpaqueFd);
    let (desc, fd) = device.export().unwrap();
    let e = SharedMemory::import(&consumer, &desc, fd).err().expect("an opaque fd of another GPU").to_string();
    assert!(e.contains(&caps::hex(&gpus[0].0)) && e.contains(&caps::hex(&gpus[1].0)), "{e}");

    let host = buffer(&producer, len, HandleType::HostAllocation);
    let (desc, fd) = host.export().unwrap();
    let imported = SharedMemory::import(&consumer, &desc, fd).unwrap();
    for frame in 0..3u64 {
        host.write(&pattern::fill(len, frame), Handoff::host()).unwrap();
        assert_eq!(pattern::first_mismatch(&imported.read(Handoff::host()).unwrap(), frame), None, "frame {frame}");
        imported.write(&pattern::fill(len, 100 + frame), Handoff::host()).unwrap();
        assert_eq!(pattern::first_mismatch(&host.read(Handoff::host()).unwrap(), 100 + frame), None);
    }
    drop((imported, host, device));
    assert_clean(&producer);
    assert_clean(&consumer);
}
