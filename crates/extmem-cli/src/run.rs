//! `extmem run -- <program> [args]`: runs a program with the layer enabled.
//!
//! By default the layer is enabled as an implicit layer (its manifest folder first in
//! `XDG_DATA_DIRS`, `EXTMEM_ENABLE_NV=1`): then VK_NV_external_memory_capabilities is in the
//! global instance extension list, as an unmodified NV application expects. `--explicit`
//! enables it through `VK_INSTANCE_LAYERS` instead, where the loader lists the extension only
//! under the layer's name.

use extmem::layer::{add_layer_path_value, implicit_data_dirs_value, IMPLICIT_ENABLE_ENV, LAYER_NAME};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `extmem run`.
#[derive(clap::Args)]
pub struct Args {
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

pub fn main(args: Args, layer_dir: Option<PathBuf>) -> extmem::Result<ExitCode> {
    let dir = layer_dir.ok_or_else(|| {
        extmem::Error::Layer(format!(
            "{} not found beside the extmem binary or in $EXTMEM_LAYER_DIR: build it with `cargo build -p extmem-layer`",
            extmem::layer::MANIFEST
        ))
    })?;
    let mut layers = Vec::new();
    if args.validate {
        layers.push(extmem::validation::VALIDATION_LAYER.to_string_lossy().into_owned());
    }
    let mut cmd = Command::new(&args.program[0]);
    cmd.args(&args.program[1..]);
    if args.explicit {
        layers.push(LAYER_NAME.to_string_lossy().into_owned());
        cmd.env("VK_ADD_LAYER_PATH", add_layer_path_value(&dir));
    } else {
        cmd.env("XDG_DATA_DIRS", implicit_data_dirs_value(&dir)).env(IMPLICIT_ENABLE_ENV, "1");
    }
    if let Ok(existing) = std::env::var("VK_INSTANCE_LAYERS") {
        layers.extend(existing.split(':').filter(|l| !l.is_empty()).map(str::to_owned));
    }
    if !layers.is_empty() {
        cmd.env("VK_INSTANCE_LAYERS", layers.join(":"));
    }
    let err = cmd.exec();
    Err(extmem::Error::Io { context: format!("running {}", args.program[0]), source: err })
}
