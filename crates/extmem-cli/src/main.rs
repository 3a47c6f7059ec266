//! `extmem`: capability report, cross-process sharing demo, benchmarks, and running any
//! program with the VK_NV_external_memory layer enabled.

mod bench;
mod bench_cuda;
mod bench_peer;
mod bench_pool;
mod bench_pool_cuda;
mod caps;
mod child;
#[cfg(test)]
mod consumer_flags;
mod demo;
mod demo_gpus;
mod demo_torch_producer;
mod peer;
mod peer_cuda;
mod peer_cuda_other_gpu;
mod peer_gl;
mod peer_pool;
mod plot;
mod run;
mod signals;
mod soak;
mod timing;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "extmem",
    version,
    about = "Share Vulkan memory across processes and APIs (VK_NV_external_memory on Linux through the extmem layer)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what every Vulkan device can export and import (memory, semaphores, fences, NV view).
    Caps(caps::Args),
    /// Cross-process demo: a producer shares an image made exportable through VK_NV_external_memory
    /// with a consumer process that checks every byte and writes back.
    Demo(demo::Args),
    /// Run a program with the extmem layer enabled (VK_NV_external_memory available to it).
    Run(run::Args),
    /// Measure hand-off latency and steady-state frame rate, zero-copy against copying.
    Bench(bench::Args),
    /// The other side of `demo` and `bench` (started by them).
    #[command(hide = true)]
    Peer(peer::Args),
}

fn main() -> ExitCode {
    signals::install();
    let cli = Cli::parse();
    // `run` hands its program exactly one way to the layer; every other subcommand enables the
    // layer by name in its own instances, so the loader must see a build's layer folder.
    if !matches!(cli.command, Command::Run(_)) {
        // SAFETY: before any thread or Vulkan use (parsing arguments starts neither).
        unsafe { extmem::layer::add_to_loader_path() };
    }
    let who = if matches!(cli.command, Command::Peer(_)) { "extmem peer" } else { "extmem" };
    let result = match cli.command {
        Command::Caps(a) => caps::main(a),
        Command::Demo(a) => demo::main(a),
        Command::Run(a) => run::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Peer(a) => peer::main(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{who}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
