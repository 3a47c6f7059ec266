//! `extmem run -- <program> [args]`: runs a program with the layer enabled.

use extmem::layer::{add_layer_path_value, LAYER_NAME};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `extmem run`.
#[derive(clap::Args)]
pub struct Args {
    /// Also enable the Khronos validation layer, above the extmem layer (it checks the
    /// program's own use of the NV extension).
    #[arg(long)]
    validate: bool,
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
    let mut layers = vec![LAYER_NAME.to_string_lossy().into_owned()];
    if args.validate {
        layers.insert(0, extmem::validation::VALIDATION_LAYER.to_string_lossy().into_owned());
    }
    if let Ok(existing) = std::env::var("VK_INSTANCE_LAYERS") {
        layers.extend(existing.split(':').filter(|l| !l.is_empty()).map(str::to_owned));
    }
    let mut cmd = Command::new(&args.program[0]);
    cmd.args(&args.program[1..])
        .env("VK_ADD_LAYER_PATH", add_layer_path_value(&dir))
        .env("VK_INSTANCE_LAYERS", layers.join(":"));
    let err = cmd.exec();
    Err(extmem::Error::Io { context: format!("running {}", args.program[0]), source: err })
}
