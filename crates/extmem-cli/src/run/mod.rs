//! `extmem run -- <program> [args]`: runs a program with the layer enabled.
//!
//! Exactly one layer is used: the one beside the `extmem` binary or in `$EXTMEM_LAYER_DIR`,
//! else the installed one. By default it is enabled as an implicit layer (`EXTMEM_ENABLE_NV=1`,
//! and for a build's layer its manifest folder first in `XDG_DATA_DIRS`): then
//! VK_NV_external_memory_capabilities is in the global instance extension list, as an unmodified
//! NV application expects. `--explicit` enables it through `VK_INSTANCE_LAYERS` instead (and for
//! a build's layer `VK_ADD_LAYER_PATH`), where the loader lists the extension only under the
//! layer's name. The child gets at most one of `XDG_DATA_DIRS` or `VK_ADD_LAYER_PATH` changed, so
//! the loader lists the layer once.

use crate::support::error::{CliError, Result};
use clap::{ArgMatches, Command as Cli, CommandFactory, FromArgMatches};
use extmem::layer::{add_layer_path_value, implicit_data_dirs_value, LayerSource, IMPLICIT_ENABLE_ENV, LAYER_NAME};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

/// Run a program with the extmem layer enabled (VK_NV_external_memory available to it).
#[derive(clap::Parser)]
#[command(name = "run")]
struct Args {
    /// Also enable the Khronos validation layer (through VK_INSTANCE_LAYERS).
    #[arg(long)]
    validate: bool,
    /// Enable the layer as an explicit layer (VK_INSTANCE_LAYERS) instead of an implicit one.
    #[arg(long)]
    explicit: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    program: Vec<String>,
}

/// The definition of `extmem run`.
pub fn cli() -> Cli {
    Args::command()
}

/// Runs `extmem run`: on success the program replaces this process.
pub fn run(matches: &ArgMatches, _tree: &Cli) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    let source = extmem::layer::find().ok_or_else(|| {
        extmem::Error::Layer(format!(
            "no {} beside the extmem binary, in $EXTMEM_LAYER_DIR or installed (vulkan/implicit_layer.d under \
             /usr/share, /usr/local/share, /etc or $XDG_DATA_DIRS): install the package, run scripts/install.sh, \
             or build it with `cargo build -p extmem-layer`",
            extmem::layer::MANIFEST
        ))
    })?;
    let mut layers = Vec::new();
    if args.validate {
        layers.push(extmem::validation::VALIDATION_LAYER.to_string_lossy().into_owned());
    }
    let mut cmd = Command::new(&args.program[0]);
    cmd.args(&args.program[1..]);
    match (&source, args.explicit) {
        (LayerSource::Folder(dir), true) => {
            cmd.env("VK_ADD_LAYER_PATH", add_layer_path_value(dir));
        }
        (LayerSource::Folder(dir), false) => {
            cmd.env("XDG_DATA_DIRS", implicit_data_dirs_value(dir));
        }
        // The loader finds an installed manifest by itself.
        (LayerSource::Installed(_), _) => {}
    }
    if args.explicit {
        layers.push(LAYER_NAME.to_string_lossy().into_owned());
    } else {
        cmd.env(IMPLICIT_ENABLE_ENV, "1");
    }
    if let Ok(existing) = std::env::var("VK_INSTANCE_LAYERS") {
        layers.extend(existing.split(':').filter(|l| !l.is_empty()).map(str::to_owned));
    }
    if !layers.is_empty() {
        cmd.env("VK_INSTANCE_LAYERS", layers.join(":"));
    }
    let err = cmd.exec();
    Err(CliError::Io { context: format!("running {}", args.program[0]), source: err })
}
