//! `extmem bench`: what zero-copy sharing saves, measured. One file per mode, each mode a
//! subcommand with its own defaults (`extmem bench first-handoff|steady|pool|cuda|peer|soak`);
//! with no mode, `first-handoff` and `steady` in one run. The flags of the old single command
//! (`bench --pool`, `bench --cuda`, `bench --soak 1h` ...) still work, hidden, for one release:
//! see [`legacy`]. Adding a mode is its file and its line in [`MODES`].

mod common;
mod cuda;
mod first_handoff;
mod legacy;
mod overview;
mod peer;
mod pool;
mod soak;
mod steady;

use crate::support::error::Result;
use clap::{ArgMatches, Args as _, Command};
use std::process::ExitCode;

/// A mode: its subcommand name, its definition and its entry point.
struct Mode {
    name: &'static str,
    cli: fn() -> Command,
    run: fn(&ArgMatches) -> Result<ExitCode>,
}

/// Every mode, in `--help`'s order.
const MODES: &[Mode] = &[
    Mode { name: "first-handoff", cli: first_handoff::cli, run: first_handoff::run },
    Mode { name: "steady", cli: steady::cli, run: steady::run },
    Mode { name: "pool", cli: pool::cli, run: pool::run },
    Mode { name: "cuda", cli: cuda::cli, run: cuda::run },
    Mode { name: "peer", cli: peer::cli, run: peer::run },
    Mode { name: "soak", cli: soak::cli, run: soak::run },
    // `stream` (hand-offs over a named stream) takes its place here, with its `mod` line above.
];

/// The definition of `extmem bench`.
pub fn cli() -> Command {
    let bench = legacy::Legacy::augment_args(Command::new("bench"))
        .mut_arg("connect_timeout", |a| a.hide(true))
        .mut_arg("reply_timeout", |a| a.hide(true))
        .about("Measure hand-off latency and steady-state frame rate, zero-copy against copying")
        .long_about(
            "Measure what zero-copy sharing saves: one mode per subcommand, each with its own defaults (see \
             `extmem bench MODE --help`). With no mode: first-handoff and steady in one run (Vulkan to Vulkan, \
             two processes).",
        )
        .args_conflicts_with_subcommands(true);
    MODES.iter().fold(bench, |bench, m| bench.subcommand((m.cli)().name(m.name)))
}

fn mode(name: &str) -> &'static Mode {
    MODES.iter().find(|m| m.name == name).expect("a mode of MODES")
}

/// Runs `extmem bench`.
pub fn run(matches: &ArgMatches, _tree: &Command) -> Result<ExitCode> {
    if let Some((name, sub)) = matches.subcommand() {
        return (mode(name).run)(sub);
    }
    match legacy::translate(matches)? {
        legacy::Translated::Mode { name, argv } => {
            let m = mode(name);
            let sub = (m.cli)().name(m.name).try_get_matches_from(argv)?;
            (m.run)(&sub)
        }
        legacy::Translated::Overview(args) => overview::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bench ARGS` parsed as `extmem bench` would be.
    fn parse(args: &[&str]) -> std::result::Result<ArgMatches, clap::Error> {
        cli().try_get_matches_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_bench_definition_is_consistent() {
        cli().debug_assert();
    }

    #[test]
    fn every_mode_is_a_subcommand_and_bad_sizes_are_usage_errors() {
        for m in MODES {
            assert!(parse(&[m.name, "--help"]).is_err_and(|e| e.kind() == clap::error::ErrorKind::DisplayHelp));
        }
        for mode in ["first-handoff", "pool", "cuda", "peer"] {
            let e = parse(&[mode, "--sizes", "3X"]).expect_err("3X refused");
            assert_eq!(e.exit_code(), 2, "{mode}");
            assert!(e.to_string().contains("size \"3X\""), "{mode}: {e}");
        }
        let e = parse(&["--sizes", "3X"]).expect_err("the old spelling too");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_png_into_a_missing_folder_is_refused_before_the_run() {
        for args in [&["first-handoff", "--png"][..], &["pool", "--png"], &["cuda", "--png"], &["--png"]] {
            let mut argv = args.to_vec();
            argv.push("/nonexistent-extmem-folder/plot.png");
            let e = parse(&argv).expect_err("refused at parsing");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains("/nonexistent-extmem-folder"), "{args:?}: {e}");
        }
    }

    #[test]
    fn a_mode_and_the_old_flags_do_not_mix() {
        assert!(parse(&["--json", "pool"]).is_err());
    }
}
