//! Who consumes the demo's memory and which memory it is: `--consumer vulkan|cuda|torch|gl|numpy`
//! and `--memory device|host`, resolved once (with the old flags `--cuda`, `--gl`, `--torch
//! SCRIPT` and `--host-memory`, hidden aliases for one release) into what the rest of the demo
//! reads, and the consumer process started.

use crate::support::child::Peer;
use crate::support::error::{CliError, Result};
use extmem::{HandleType, QueueKind};
use std::path::PathBuf;

/// The numpy consumer run when `--consumer numpy` names no `--script`.
const NUMPY_CONSUMER: &str = include_str!("numpy_consumer.py");

/// The demo's consumer process.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Consumer {
    /// A second process with a VkInstance of its own.
    Vulkan,
    /// A process with no Vulkan at all: CUDA imports the memory (a buffer: CUDA sees linear
    /// bytes, not an image's tiling).
    Cuda,
    /// A Python script (--script) that gets each frame as a PyTorch tensor through DLPack,
    /// e.g. python/examples/torch_consumer.py.
    Torch,
    /// An OpenGL process (EGL without a window): the image as a texture, the buffer as a buffer
    /// object.
    Gl,
    /// A Python process that maps host memory and sees it as a numpy array through DLPack
    /// (the built-in consumer, or --script); implies --memory host.
    Numpy,
}

/// Which memory the producer shares.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Memory {
    /// Dedicated exportable device memory (an opaque fd).
    Device,
    /// A buffer in host memory (VK_EXT_external_memory_host: a memfd each process maps and
    /// imports by pointer; works across devices and drivers; CUDA registers the pages).
    Host,
}

/// The consumer flags as given, new and old.
pub struct Flags {
    pub consumer: Option<Consumer>,
    pub memory: Option<Memory>,
    pub script: Option<PathBuf>,
    pub cuda: bool,
    pub gl: bool,
    pub torch: Option<PathBuf>,
    pub host_memory: bool,
}

/// What the flags mean, checked.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub consumer: Consumer,
    pub memory: Memory,
    pub script: Option<PathBuf>,
}

impl Flags {
    /// Resolves the old spellings and the defaults, and refuses what a consumer cannot take.
    pub fn resolve(self) -> Result<Plan> {
        let consumer = match (self.cuda, self.gl, self.torch.is_some()) {
            (true, _, _) => Consumer::Cuda,
            (_, true, _) => Consumer::Gl,
            (_, _, true) => Consumer::Torch,
            _ => self.consumer.unwrap_or(Consumer::Vulkan),
        };
        let memory = match (self.host_memory, self.memory) {
            (true, _) => Memory::Host,
            (false, Some(m)) => m,
            (false, None) if consumer == Consumer::Numpy => Memory::Host,
            (false, None) => Memory::Device,
        };
        let script = self.torch.or(self.script);
        let usage = |s: &str| Err(CliError::Usage(s.into()));
        match (consumer, memory, &script) {
            (Consumer::Torch, _, None) => {
                usage("--consumer torch needs --script FILE (python/examples/torch_consumer.py in the source tree)")
            }
            (Consumer::Vulkan | Consumer::Cuda | Consumer::Gl, _, Some(_)) => {
                usage("--script is for the Python consumers (--consumer torch or numpy)")
            }
            (Consumer::Gl, Memory::Host, _) => {
                usage("--consumer gl imports device memory only (GL_EXT_memory_object_fd): leave out --memory host")
            }
            (Consumer::Numpy, Memory::Device, _) => usage(
                "--consumer numpy maps host memory into the CPU: use --memory host (its default), or --consumer \
                 torch for device memory",
            ),
            _ => Ok(Plan { consumer, memory, script }),
        }
    }
}

impl Plan {
    /// The consumer's name in the step lines and the JSON summary.
    pub fn name(&self) -> &'static str {
        match self.consumer {
            Consumer::Vulkan => "Vulkan",
            Consumer::Cuda => "CUDA",
            Consumer::Torch => "PyTorch",
            Consumer::Gl => "OpenGL",
            Consumer::Numpy => "numpy",
        }
    }

    /// Shares a buffer (not an image): host memory holds buffers only, and CUDA and numpy see
    /// linear bytes.
    pub fn buffer(&self, asked: bool) -> bool {
        asked || self.memory == Memory::Host || matches!(self.consumer, Consumer::Cuda | Consumer::Numpy)
    }

    /// The handle type of the shared memory.
    pub fn handle_type(&self) -> HandleType {
        match self.memory {
            Memory::Host => HandleType::HostAllocation,
            Memory::Device => HandleType::OpaqueFd,
        }
    }

    /// Whether the consumer can wait for a GPU semaphore (the CPU consumer cannot).
    pub fn gpu_waits(&self) -> bool {
        self.consumer != Consumer::Numpy
    }

    /// Starts the consumer process and waits for it to connect.
    pub fn start(&self, validate: bool, t0: u64, queue: QueueKind, gpus: Vec<String>) -> Result<Peer> {
        let mut extra: Vec<String> = match self.consumer {
            Consumer::Torch | Consumer::Numpy => {
                let mut cmd = crate::support::python::command();
                match &self.script {
                    Some(script) => cmd.arg(script),
                    None => cmd.arg("-c").arg(NUMPY_CONSUMER),
                };
                return Ok(Peer::spawn_command(cmd, t0)?);
            }
            Consumer::Cuda => vec!["--cuda".into()],
            Consumer::Gl => vec!["--gl".into()],
            Consumer::Vulkan => vec!["--queue".into(), format!("{queue:?}").to_lowercase()],
        };
        extra.extend(gpus);
        Ok(Peer::spawn(validate, t0, &extra.iter().map(String::as_str).collect::<Vec<_>>())?)
    }
}
