//! `extmem`: capability report, cross-process sharing demo, benchmarks, and running any
//! program with the VK_NV_external_memory layer enabled.
//!
//! Each subcommand is a folder with `cli()` (its clap definition) and `run()` (its entry
//! point), as cargo's commands are; [`support`] holds what they share. A subcommand folder
//! uses `support` and the libraries, never another subcommand's folder (`demo` and `bench`
//! start `extmem peer` as a process). Adding a subcommand is its folder and its name in the
//! `subcommands!` line below.

mod support;

use clap::{ArgMatches, Command};
use std::process::ExitCode;

/// A subcommand: its name, its clap definition, and its entry point (which gets its own
/// matches and the whole command line's definition, for `generate`).
struct Subcommand {
    name: &'static str,
    cli: fn() -> Command,
    run: fn(&ArgMatches, &Command) -> support::error::Result<ExitCode>,
}

/// Declares each subcommand's folder and lists it in [`SUBCOMMANDS`], in `--help`'s order.
macro_rules! subcommands {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*
        /// Every subcommand, in `--help`'s order.
        const SUBCOMMANDS: &[Subcommand] =
            &[$(Subcommand { name: stringify!($name), cli: $name::cli, run: $name::run }),*];
    };
}

subcommands![caps, demo, run, bench, peer, generate];

/// The version `--version` prints: the release and the wire protocol it speaks (both sides of
/// a hand-off must speak the same one).
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!("{} (wire protocol {})", env!("CARGO_PKG_VERSION"), extmem::transport::message::VERSION)
    })
}

/// The whole command line.
fn cli() -> Command {
    let root = Command::new("extmem")
        .version(version())
        .about(
            "Share Vulkan memory across processes and APIs (VK_NV_external_memory on Linux through the extmem \
             layer)",
        )
        .after_help("The library's log goes to stderr when RUST_LOG asks for it (e.g. RUST_LOG=extmem=debug).")
        .subcommand_required(true)
        .arg_required_else_help(true);
    SUBCOMMANDS.iter().fold(root, |root, s| root.subcommand((s.cli)().name(s.name)))
}

fn main() -> ExitCode {
    // The library logs through the `log` facade; RUST_LOG filters it (nothing by default).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    support::signals::install();
    let tree = cli();
    let matches = tree.clone().get_matches();
    let (name, args) = matches.subcommand().expect("a subcommand is required");
    // `run` hands its program exactly one way to the layer; every other subcommand enables the
    // layer by name in its own instances, so the loader must see a build's layer folder.
    if name != "run" {
        // SAFETY: before any thread or Vulkan use (parsing arguments starts neither).
        unsafe { extmem::layer::add_to_loader_path() };
    }
    let who = if name == "peer" { "extmem peer" } else { "extmem" };
    let sub = SUBCOMMANDS.iter().find(|s| s.name == name).expect("clap knows only these");
    match (sub.run)(args, &tree) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{who}: error: {}", e.report());
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_definition_is_consistent() {
        super::cli().debug_assert();
    }

    #[test]
    fn the_version_names_the_wire_protocol() {
        assert!(super::version().ends_with(&format!("(wire protocol {})", extmem::transport::message::VERSION)));
    }
}
