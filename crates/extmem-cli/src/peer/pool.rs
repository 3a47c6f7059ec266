//! The consumer of `bench pool` (`extmem peer --pool`, with `--cuda` for CUDA): today's
//! hand-off with its steps timed, and pooled hand-offs (each block imported once; each
//! hand-off a resource bound at its offset, or a device pointer, acknowledged, then released).

use crate::support::error::{cuda_as_extmem, Result};
use crate::support::fault::maybe_die;
use crate::support::timing::monotonic_ns;
use extmem::pool::{protocol, PoolImporter};
use extmem::transport::{Channel, Message};
use extmem::{Context, ContextOptions, ImportSteps, SharedMemory};
use extmem_cuda::ipc::IpcMapping;
use extmem_cuda::{Cuda, CudaMemory, PoolMapper};
use std::process::ExitCode;
use std::time::Instant;

/// Today's path, as the raw span measures it: import, free the previous import, reply. The
/// reply carries this side's steps (ns) and its clock at receipt and at reply.
fn reply_imported(channel: &Channel, recv_at: u64, steps: &ImportSteps, free_ns: u64) -> extmem::Result<()> {
    let detail = format!(
        "recv_at={recv_at} checks={} create_resource={} allocate={} bind={} free_previous={free_ns} sent_at={}",
        steps.checks_ns,
        steps.create_resource_ns,
        steps.allocate_ns,
        steps.bind_ns,
        monotonic_ns()
    );
    channel.send(&Message::Verdict { ok: true, detail }, &[])
}

/// Runs the pool consumer (Vulkan, or CUDA with `cuda`) until the producer's Bye.
pub fn run(channel: &Channel, cuda: bool, validate: bool) -> Result<ExitCode> {
    if cuda {
        return run_cuda(channel);
    }
    let ctx = Context::new(&ContextOptions::default().validation(validate).app_name("extmem peer --pool"))?;
    let mut importer = PoolImporter::new(&ctx);
    let mut previous: Option<SharedMemory> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        let recv_at = monotonic_ns();
        match message {
            Message::Share(desc) => {
                let mut steps = ImportSteps::default();
                let imported = SharedMemory::import_with_steps(&ctx, &desc, fds.pop().expect("checked"), &mut steps)?;
                let t = Instant::now();
                drop(previous.replace(imported));
                reply_imported(channel, recv_at, &steps, t.elapsed().as_nanos() as u64)?;
            }
            Message::PoolBlock(desc) => {
                if let Err(e) = importer.add_block(&desc, fds.pop().expect("checked")) {
                    protocol::refused(channel, &e)?;
                }
            }
            Message::PoolShare(desc) => {
                maybe_die("pool-share");
                match importer.bind(&desc) {
                    Ok(bound) => {
                        protocol::held(channel, &desc.handle)?;
                        let h = importer.release(bound)?;
                        protocol::released(channel, &h)?;
                    }
                    Err(e) => protocol::refused(channel, &e)?,
                }
            }
            Message::Bye => break,
            other => return Err(extmem::Error::Protocol(format!("the pool consumer does not take {}", other.name())).into()),
        }
    }
    drop((previous, importer));
    let messages = ctx.validation_messages();
    if !messages.is_empty() {
        eprintln!("[consumer] FAIL: {} validation message(s): {}", messages.len(), messages.join("; "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_cuda(channel: &Channel) -> Result<ExitCode> {
    let mut cuda: Option<Cuda> = None;
    let mut mapper = PoolMapper::new();
    let mut previous: Option<CudaMemory> = None;
    let mut ipc: Option<IpcMapping> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        let recv_at = monotonic_ns();
        match message {
            Message::Share(desc) => {
                if cuda.is_none() {
                    cuda = Some(Cuda::for_descriptor(&desc)?);
                }
                let c = cuda.as_ref().expect("set above");
                let t = Instant::now();
                let imported = c.import_memory(&desc, fds.pop().expect("checked"))?;
                let mut steps = ImportSteps::default();
                steps.allocate_ns = t.elapsed().as_nanos() as u64; // cuImportExternalMemory + map
                let t = Instant::now();
                drop(previous.replace(imported));
                reply_imported(channel, recv_at, &steps, t.elapsed().as_nanos() as u64)?;
            }
            Message::CudaIpc { handle, device_uuid, .. } => {
                if cuda.is_none() {
                    cuda = Some(Cuda::for_device_uuid(device_uuid)?);
                }
                let opened = IpcMapping::open(cuda.as_ref().expect("set above"), handle)?;
                drop(ipc.replace(opened));
                channel.send(&Message::Verdict { ok: true, detail: "opened".into() }, &[])?;
            }
            Message::PoolBlock(desc) => {
                if cuda.is_none() {
                    cuda = Some(Cuda::for_device_uuid(desc.device_uuid)?);
                }
                let c = cuda.as_ref().expect("set above");
                if let Err(e) = mapper.add_block(c, &desc, fds.pop().expect("checked")) {
                    protocol::refused(channel, &cuda_as_extmem(e))?;
                }
            }
            Message::PoolShare(desc) => match mapper.hold(&desc) {
                Ok(pointer) => {
                    protocol::held(channel, &desc.handle)?;
                    let h = mapper.release(pointer)?;
                    protocol::released(channel, &h)?;
                }
                Err(e) => protocol::refused(channel, &cuda_as_extmem(e))?,
            },
            Message::Bye => break,
            other => return Err(extmem::Error::Protocol(format!("the pool consumer does not take {}", other.name())).into()),
        }
    }
    drop((ipc, previous, mapper));
    Ok(ExitCode::SUCCESS)
}
