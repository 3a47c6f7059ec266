//! Pooled hand-offs between two real processes: `bench pool --json` reports the pooled
//! hand-off beside today's for every size, and a consumer process killed in the middle of a
//! hand-off releases everything it held.

use extmem::pool::{Pool, PoolLink, PoolOptions};
use extmem::transport::socket::{socket_dir, Listener};
use extmem::{vk, BufferDesc, Context, ContextOptions};
use std::process::Command;
use std::time::Duration;

fn runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: set before any thread of this test reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}

#[test]
fn bench_pool_json_reports_pooled_beside_today_for_every_size() {
    runtime_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_extmem"))
        .args(["bench", "pool", "--sizes", "4K,1M,16M", "--repeat", "2", "--json"])
        .output()
        .expect("run extmem");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench pool failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["schema_version"], 1, "the JSON names its schema");
    let sizes = json["sizes"].as_array().expect("sizes");
    assert_eq!(sizes.iter().map(|s| s["bytes"].as_u64().unwrap()).collect::<Vec<_>>(), [4096, 1 << 20, 16 << 20]);
    for s in sizes {
        for key in
            ["vulkan_today_ms", "vulkan_pool_us", "vulkan_pool_first_hand_off_ms", "vulkan_today_fresh_allocation_ms"]
        {
            assert!(s[key].as_f64().is_some_and(|v| v > 0.0), "{key} missing in {s}");
        }
        let steps = s["vulkan_today_steps_us"].as_object().expect("steps");
        for step in ["export", "send", "checks", "create_resource", "import_allocate", "bind", "free_previous", "ack"] {
            assert!(steps.get(step).and_then(|v| v.as_f64()).is_some(), "step {step} missing in {s}");
        }
        assert!(s.get("cuda_pool_us").is_some(), "no CUDA pool field in {s}");
    }
    // One block served every size: the first hand-off made it, the rest found room.
    assert_eq!(json["pool_stats_after_vulkan"]["blocks"], 1);
    assert_eq!(json["pool_stats_after_vulkan"]["live"], 0);
    let cuda = json["cuda"].as_str().unwrap();
    assert!(cuda == "measured" || cuda.starts_with("skipped: "), "{cuda}");
}

#[test]
fn a_consumer_process_killed_mid_hand_off_releases_what_it_held() {
    runtime_dir();
    let ctx = Context::new(&ContextOptions::default().validation(true)).expect("context");
    let pool = Pool::new(&ctx, PoolOptions::default().block_size(4 << 20)).unwrap();
    let path = socket_dir().join(format!("pool-test-{}.sock", std::process::id()));
    let listener = Listener::bind(&path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_extmem"))
        .args(["peer", "--pool", "--validate", "--socket"])
        .arg(&path)
        .env("EXTMEM_PEER_DIE_AT", "pool-share")
        .spawn()
        .expect("start the consumer");
    let channel = listener.accept(Duration::from_secs(60)).unwrap();
    let mut link = PoolLink::new(&pool, &channel);
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let p = pool.buffer(BufferDesc::new(1 << 20, usage)).unwrap();
    link.share(&p).unwrap();
    assert_eq!(pool.holders(&p.handle()), Some(1));
    let e = link.wait_held(&p.handle()).unwrap_err();
    assert!(matches!(e, extmem::Error::Peer(_)), "{e}");
    assert!(!child.wait().unwrap().success());
    assert_eq!(pool.holders(&p.handle()), Some(0), "the dead consumer still holds it");
    drop(p);
    assert_eq!(pool.stats().live, 0);
    drop(link);
    assert!(ctx.validation_messages().is_empty(), "{:?}", ctx.validation_messages());
}
