//! The second process of `demo` and `bench` (the hidden `extmem peer`): started by them,
//! connected over a Unix socket, it consumes what they share. One file per consumer: Vulkan
//! (a VkInstance of its own), CUDA (on the memory's GPU or another one), OpenGL, and the
//! pooled hand-offs of `bench pool`.

mod cuda;
mod cuda_other_gpu;
mod gl;
mod pool;
mod verdict;
mod vulkan;

use crate::support::error::Result;
use crate::support::fault::maybe_die;
use crate::support::timing::{monotonic_ns, T0_VAR};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::transport::Channel;
use std::path::PathBuf;
use std::process::ExitCode;

/// The other side of `demo` and `bench` (started by them).
#[derive(clap::Parser)]
#[command(name = "peer", hide = true)]
struct Args {
    /// The producer's socket.
    #[arg(long)]
    socket: PathBuf,
    /// Enable the Khronos validation layer and fail on any message.
    #[arg(long)]
    validate: bool,
    /// On FrameReady only probe the first 4 KiB (benchmarks), instead of checking every byte
    /// and writing back (demo).
    #[arg(long)]
    probe: bool,
    /// Consume with CUDA instead of a second VkInstance.
    #[arg(long)]
    cuda: bool,
    /// Consume with OpenGL (EGL, no window) instead of a second VkInstance.
    #[arg(long, conflicts_with = "cuda")]
    gl: bool,
    /// Consume pooled hand-offs (`bench pool`): see `pool.rs`.
    #[arg(long)]
    pool: bool,
    /// The Vulkan queue kind (general, compute, transfer).
    #[arg(long, default_value = "general")]
    queue: extmem::QueueKind,
    /// With --cuda: consume on this CUDA device, whichever GPU the memory is on.
    #[arg(long, requires = "cuda")]
    consumer_gpu: Option<usize>,
    /// With --consumer-gpu: copy memory of another GPU peer to peer instead of refusing it.
    #[arg(long, requires = "consumer_gpu")]
    peer_copy: bool,
}

/// The definition of `extmem peer`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem peer`: connects to the producer and consumes until its Bye.
pub fn run(matches: &ArgMatches, _tree: &Command) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    let start = std::env::var(T0_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or_else(monotonic_ns);
    let channel = Channel::connect(&args.socket)?;
    maybe_die("connected");
    let quiet = std::env::var_os("EXTMEM_PEER_QUIET").is_some();
    let outcome = consume(&channel, &args, start, quiet);
    if let Err(e) = &outcome {
        // A refused import or a broken frame: the producer learns why before the socket closes
        // (docs/src/protocol.md, section 4), instead of seeing only the end of the file.
        verdict::tell(&channel, e);
    }
    outcome
}

fn consume(channel: &Channel, args: &Args, start: u64, quiet: bool) -> Result<ExitCode> {
    if let Some(ordinal) = args.consumer_gpu {
        return cuda_other_gpu::run(channel, start, quiet, ordinal, args.peer_copy);
    }
    if args.pool {
        return pool::run(channel, args.cuda, args.validate);
    }
    if args.cuda {
        return cuda::run(channel, start, quiet, args.probe);
    }
    if args.gl {
        return gl::run(channel, start, quiet);
    }
    let options =
        vulkan::Options { start, quiet, probe: args.probe, validate: args.validate, queue: args.queue };
    vulkan::run(channel, &options)
}
