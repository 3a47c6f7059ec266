//! `extmem run` hands its program exactly one layer: `vulkaninfo` (vulkan-tools) run through it
//! lists `VK_LAYER_EXTMEM_external_memory` once, implicit and explicit, and sees the NV instance
//! extension in the global list only when implicit.

use std::process::Command;

fn vulkaninfo_through_run(extra: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.arg("run").args(extra).args(["--", "vulkaninfo", "--summary"]);
    for var in
        ["VK_ADD_LAYER_PATH", "VK_LAYER_PATH", "VK_INSTANCE_LAYERS", "VK_LOADER_LAYERS_ENABLE", "EXTMEM_LAYER_DIR"]
    {
        cmd.env_remove(var);
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = cmd.output().expect("run extmem");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "extmem run {extra:?} -- vulkaninfo --summary failed (install vulkan-tools; scripts/setup.sh does):\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn times_listed(summary: &str) -> usize {
    summary.lines().filter(|l| l.starts_with("VK_LAYER_EXTMEM_external_memory")).count()
}

fn in_global_list(summary: &str) -> bool {
    summary.lines().any(|l| l.trim_start().starts_with("VK_NV_external_memory_capabilities") && l.contains(':'))
}

#[test]
fn run_lists_the_layer_once_implicit() {
    let summary = vulkaninfo_through_run(&[]);
    assert_eq!(times_listed(&summary), 1, "{summary}");
    assert!(in_global_list(&summary), "the implicit layer's extension is global:\n{summary}");
}

#[test]
fn run_lists_the_layer_once_explicit() {
    let summary = vulkaninfo_through_run(&["--explicit"]);
    assert_eq!(times_listed(&summary), 1, "{summary}");
    assert!(!in_global_list(&summary), "an explicit layer's extension is not global:\n{summary}");
}
