//! What a newcomer meets first, run as a user runs it: the new spellings of `demo` and
//! `bench`, `--version`, the JSON schema version, the generated man pages and completions, and
//! the first errors (no Vulkan driver, a plot into a missing folder, a bad size).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn extmem(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.args(args);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run extmem");
    eprintln!("--- extmem {args:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON only on stdout")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("front-door-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_version_names_the_wire_protocol() {
    let out = extmem(&["--version"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!("(wire protocol {})", extmem::transport::message::VERSION);
    assert!(out.status.success() && text.starts_with("extmem ") && text.contains(&want), "{text}");
}

#[test]
fn the_demo_runs_with_the_new_consumer_flags() {
    let small = ["demo", "--width", "64", "--height", "32", "--frames", "2", "--validate", "--json"];
    for extra in [&["--consumer", "vulkan"][..], &["--consumer", "vulkan", "--memory", "host"]] {
        let v = json(&extmem(&[&small[..], extra].concat(), &[]));
        assert_eq!(v["result"], "PASS", "{extra:?}: {v}");
        assert_eq!(v["consumer"], "Vulkan");
        let host = extra.contains(&"host");
        assert_eq!(v["handle_type"], if host { "host-allocation" } else { "opaque-fd" }, "{extra:?}");
    }
    for (flags, says) in [
        (&["--consumer", "torch"][..], "--script"),
        (&["--consumer", "numpy", "--memory", "device"], "--memory host"),
        (&["--consumer", "gl", "--memory", "host"], "device memory only"),
        (&["--consumer", "numpy", "--sync", "semaphore"], "cannot wait for a GPU semaphore"),
    ] {
        let out = extmem(&[&["demo", "--width", "16", "--height", "16"][..], flags].concat(), &[]);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: a usage error");
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
    }
}

/// A numpy consumer of host memory from the CLI: the built-in consumer maps the memfd and
/// checks every frame through numpy. Needs numpy and the extmem module in `$EXTMEM_PYTHON`
/// (scripts/test.sh makes such a virtual environment); elsewhere it prints SKIPPED.
#[test]
fn a_numpy_consumer_gets_host_memory_from_the_demo() {
    let python = std::env::var("EXTMEM_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import numpy, extmem"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED numpy demo: {python} lacks numpy or the extmem module (scripts/test.sh installs both)");
        return;
    }
    let args = ["demo", "--consumer", "numpy", "--width", "64", "--height", "16", "--frames", "3", "--validate"];
    let out = extmem(&args, &[("EXTMEM_PYTHON", &python)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("[numpy]") && text.contains("frame 2: all 4096 bytes match"), "{text}");
    assert!(text.lines().last().is_some_and(|l| l.starts_with("PASS: 3 frame(s)")), "{text}");
}

#[test]
fn bench_modes_are_subcommands_that_print_versioned_json() {
    let first = json(&extmem(&["bench", "first-handoff", "--sizes", "4K,64K", "--repeat", "1", "--json"], &[]));
    assert_eq!(first["schema_version"], 1);
    assert_eq!(first["handoff"].as_array().map(Vec::len), Some(2));
    assert!(first.get("steady_state").is_none(), "first-handoff measures only that");
    let steady = json(&extmem(&["bench", "steady", "--frames", "2", "--json"], &[]));
    assert_eq!(steady["schema_version"], 1);
    assert_eq!(steady["steady_state"].as_array().map(Vec::len), Some(2));
}

#[test]
fn careless_bench_arguments_are_refused_before_any_run() {
    for (args, says) in [
        (&["bench", "first-handoff", "--sizes", "3X"][..], "size \"3X\""),
        (&["bench", "pool", "--sizes", "4K,3X"], "size \"3X\""),
        (&["bench", "--sizes", "3X"], "size \"3X\""),
        (&["bench", "first-handoff", "--png", "/nonexistent-extmem/plot.png"], "/nonexistent-extmem"),
        (&["bench", "pool", "--png", "/nonexistent-extmem/plot.png"], "/nonexistent-extmem"),
        (&["bench", "--json", "--png", "/nonexistent-extmem/plot.png"], "/nonexistent-extmem"),
        (&["bench", "soak", "1h", "--out", "/nonexistent-extmem/soak.json"], "/nonexistent-extmem"),
    ] {
        let t = Instant::now();
        let out = extmem(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        // Refused while parsing: no Vulkan instance, no consumer process.
        assert!(t.elapsed() < Duration::from_secs(5), "{args:?} took {:?}", t.elapsed());
    }
}

#[test]
fn no_vulkan_driver_names_the_package_and_the_variable() {
    for args in [&["caps"][..], &["demo", "--width", "16", "--height", "16"], &["bench", "steady", "--frames", "1"]] {
        let out = extmem(args, &[("VK_DRIVER_FILES", "/nonexistent/icd.json"), ("VK_ICD_FILENAMES", "")]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let e = stderr(&out);
        assert!(e.contains("no Vulkan driver found") && e.contains("mesa-vulkan-drivers"), "{args:?}: {e}");
        assert!(e.contains("VK_DRIVER_FILES is \"/nonexistent/icd.json\""), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn generate_writes_man_pages_and_completions_that_parse() {
    let help = extmem(&["--help"], &[]);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate"), "generate is hidden");
    let own = extmem(&["generate", "--help"], &[]);
    assert!(own.status.success() && String::from_utf8_lossy(&own.stdout).contains("completions DIR"));

    let man = scratch("man");
    assert!(extmem(&["generate", "man", man.to_str().unwrap()], &[]).status.success());
    for page in ["extmem.1", "extmem-demo.1", "extmem-bench.1", "extmem-bench-pool.1", "extmem-bench-soak.1"] {
        let path = man.join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"), "{page} is no man page");
        // groff parses it without a warning (where groff is installed; -k: UTF-8 input, as man-db
        // reads pages).
        if let Ok(out) = Command::new("groff").args(["-k", "-man", "-ww", "-z"]).arg(&path).output() {
            assert!(out.status.success() && out.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    assert!(!man.join("extmem-peer.1").exists() && !man.join("extmem-generate.1").exists(), "hidden ones have none");
    let demo = std::fs::read_to_string(man.join("extmem-demo.1")).unwrap();
    assert!(demo.contains("consumer") && !demo.contains("host\\-memory"), "the new flags, not the old ones");

    let comp = scratch("completions");
    assert!(extmem(&["generate", "completions", comp.to_str().unwrap()], &[]).status.success());
    let bash = comp.join("extmem.bash");
    let out = Command::new("bash").arg("-n").arg(&bash).output().expect("bash");
    assert!(out.status.success(), "bash -n: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&bash).unwrap().contains("first-handoff"));
    for (shell, file) in [("zsh", "_extmem"), ("fish", "extmem.fish")] {
        let path = comp.join(file);
        assert!(std::fs::read_to_string(&path).is_ok_and(|t| t.contains("extmem")), "{}", path.display());
        match Command::new(shell).arg("-n").arg(&path).output() {
            Ok(out) => assert!(out.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&out.stderr)),
            Err(_) => eprintln!("SKIPPED {shell} -n {file}: no {shell} here (the file is written)"),
        }
    }
}

/// The old spellings that scripts and notes still use run the mode they meant, for one release.
#[test]
fn the_old_bench_spellings_still_run_their_modes() {
    let pool = json(&extmem(&["bench", "--pool", "--sizes", "4K", "--repeat", "1", "--json"], &[]));
    assert_eq!(pool["schema_version"], 1);
    assert_eq!(pool["sizes"][0]["bytes"], 4096, "{pool}");
    let out = scratch("soak");
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("soak.json");
    let run = extmem(&["bench", "--soak", "2s", "--soak-sample", "1", "--soak-out", file.to_str().unwrap()], &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let soak: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(soak["schema_version"], 1);
    assert!(soak["samples"].as_array().is_some_and(|s| s.len() >= 2), "{soak}");
    assert!(std::fs::read_to_string(file.with_extension("md")).unwrap().starts_with("# Soak: `extmem bench soak 2s"));
}
