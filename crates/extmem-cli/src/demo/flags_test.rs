//! The consumer flags of `extmem demo`: the new ones (`--consumer`, `--memory`, `--script`)
//! resolve to what they say and refuse what a consumer cannot take; the old ones (`--cuda`,
//! `--gl`, `--torch SCRIPT`, `--host-memory`), hidden aliases for one release, still parse and
//! mean the same, and exclude each other where one would be ignored (checked over every pair,
//! so that a new flag has to say how it combines).

use super::consumer::{Consumer, Memory, Plan};
use super::Args;
use crate::support::error::CliError;
use clap::error::ErrorKind;
use clap::FromArgMatches;
use std::path::PathBuf;

/// `demo` with `flags`: the parsed arguments, or clap's error kind.
fn args(flags: &[&str]) -> Result<Args, ErrorKind> {
    let mut argv = vec!["demo"];
    argv.extend_from_slice(flags);
    let m = super::cli().try_get_matches_from(argv).map_err(|e| e.kind())?;
    Args::from_arg_matches(&m).map_err(|e| e.kind())
}

/// What `flags` resolve to; `Err(None)` for a clap error, `Err(Some(text))` for a usage error
/// of the resolution.
fn plan(flags: &[&str]) -> Result<Plan, Option<String>> {
    let a = args(flags).map_err(|_| None)?;
    let flags = super::Flags {
        consumer: a.consumer,
        memory: a.memory,
        script: a.script,
        cuda: a.cuda,
        gl: a.gl,
        torch: a.torch,
        host_memory: a.host_memory,
    };
    flags.resolve().map_err(|e| match e {
        CliError::Usage(s) => Some(s),
        other => panic!("not a usage error: {other}"),
    })
}

fn want(consumer: Consumer, memory: Memory, script: Option<&str>) -> Result<Plan, Option<String>> {
    Ok(Plan { consumer, memory, script: script.map(PathBuf::from) })
}

#[test]
fn the_demo_definition_is_consistent() {
    super::cli().debug_assert();
}

#[test]
fn the_new_consumer_flags_resolve_to_what_they_say() {
    use Consumer::*;
    use Memory::*;
    assert_eq!(plan(&[]), want(Vulkan, Device, None));
    assert_eq!(plan(&["--consumer", "cuda"]), want(Cuda, Device, None));
    assert_eq!(plan(&["--consumer", "cuda", "--memory", "host"]), want(Cuda, Host, None));
    assert_eq!(plan(&["--consumer", "gl"]), want(Gl, Device, None));
    assert_eq!(plan(&["--consumer", "torch", "--script", "t.py"]), want(Torch, Device, Some("t.py")));
    assert_eq!(plan(&["--consumer", "numpy"]), want(Numpy, Host, None));
    assert_eq!(plan(&["--consumer", "numpy", "--script", "n.py"]), want(Numpy, Host, Some("n.py")));
    assert_eq!(plan(&["--memory", "host"]), want(Vulkan, Host, None));
    // A numpy consumer of host memory: a buffer, host synchronisation.
    let numpy = plan(&["--consumer", "numpy"]).unwrap();
    assert!(numpy.buffer(false) && !numpy.gpu_waits());
    assert_eq!(numpy.handle_type(), extmem::HandleType::HostAllocation);
}

#[test]
fn what_a_consumer_cannot_take_is_refused_by_name() {
    for (flags, says) in [
        (&["--consumer", "torch"][..], "--script"),
        (&["--consumer", "gl", "--memory", "host"][..], "--memory host"),
        (&["--consumer", "numpy", "--memory", "device"][..], "--memory host"),
        (&["--consumer", "vulkan", "--script", "x.py"][..], "--script"),
    ] {
        match plan(flags) {
            Err(Some(text)) => assert!(text.contains(says), "{flags:?}: {text}"),
            other => panic!("{flags:?}: {other:?}"),
        }
    }
    assert_eq!(args(&["--consumer", "metal"]).err(), Some(ErrorKind::InvalidValue));
    assert_eq!(args(&["--memory", "shared"]).err(), Some(ErrorKind::InvalidValue));
}

#[test]
fn the_old_flags_still_work_and_mean_the_new_ones() {
    use Consumer::*;
    use Memory::*;
    assert_eq!(plan(&["--cuda"]), want(Cuda, Device, None));
    assert_eq!(plan(&["--cuda", "--host-memory"]), want(Cuda, Host, None));
    assert_eq!(plan(&["--gl"]), want(Gl, Device, None));
    assert_eq!(plan(&["--torch", "t.py"]), want(Torch, Device, Some("t.py")));
    assert_eq!(plan(&["--host-memory"]), want(Vulkan, Host, None));
    // Hidden from --help, which shows the new spellings.
    let help = super::cli().render_long_help().to_string();
    assert!(help.contains("--consumer") && help.contains("--memory"), "{help}");
    for old in ["--cuda", "--gl ", "--torch ", "--host-memory"] {
        assert!(!help.contains(old), "{old} shown in --help");
    }
    // An old flag and a new one for the same thing would leave one ignored.
    for flags in [&["--cuda", "--consumer", "gl"][..], &["--host-memory", "--memory", "device"], &[
        "--torch", "t.py", "--script", "u.py",
    ]] {
        assert_eq!(args(flags).err(), Some(ErrorKind::ArgumentConflict), "{flags:?}");
    }
}

#[test]
fn old_consumer_flags_that_would_ignore_each_other_conflict() {
    let consumers: [&[&str]; 5] =
        [&["--cuda"], &["--torch", "consumer.py"], &["--host-memory"], &["--gl"], &["--torch-producer", "producer.py"]];
    for (i, a) in consumers.iter().enumerate() {
        assert!(args(a).is_ok(), "{a:?} alone");
        for b in &consumers[i + 1..] {
            let both = [*a, *b].concat();
            // CUDA registers host memory (cuMemHostRegister); every other pair has one consumer
            // too many.
            let allowed = both.contains(&"--cuda") && both.contains(&"--host-memory");
            let got = args(&both).err();
            let want = if allowed { None } else { Some(ErrorKind::ArgumentConflict) };
            assert_eq!(got, want, "{both:?}");
        }
    }
}
