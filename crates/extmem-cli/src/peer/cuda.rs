//! The CUDA consumer of `demo --consumer cuda` and `bench cuda`: a process with no Vulkan at all that
//! imports what the Vulkan producer shares into CUDA, zero-copy.

use crate::support::error::Result;
use crate::support::timing::step;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern;
use extmem::pattern::writeback_seed;
use extmem::transport::{Channel, Message};
use extmem_cuda::ipc::IpcMapping;
use extmem_cuda::{Cuda, CudaMemory, CudaSemaphore};
use std::process::ExitCode;

/// The CUDA context, made by `make` on first use.
fn cuda_for(cuda: &mut Option<Cuda>, make: impl FnOnce() -> extmem_cuda::Result<Cuda>) -> Result<&Cuda> {
    if cuda.is_none() {
        *cuda = Some(make()?);
    }
    Ok(cuda.as_ref().expect("set above"))
}

/// Releases what a new import replaced. Benchmarks (`probe`) time a hand-off up to its first
/// verdict and get a second one once the release is done, so it stays out of every timing.
fn release_after_ack<T>(channel: &Channel, previous: Option<T>, probe: bool) -> Result<()> {
    drop(previous);
    if probe {
        channel.send(&Message::Verdict { ok: true, detail: "released".into() }, &[])?;
    }
    Ok(())
}

/// Runs the CUDA consumer on `channel` until the producer's Bye.
pub fn run(channel: &Channel, t0: u64, quiet: bool, probe: bool) -> Result<ExitCode> {
    let mut cuda: Option<Cuda> = None;
    let mut memory: Option<CudaMemory> = None;
    let mut semaphore: Option<CudaSemaphore> = None;
    let mut ipc: Option<IpcMapping> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        match message {
            Message::Share(desc) => {
                let fd = fds.pop().expect("checked by recv");
                let c = cuda_for(&mut cuda, || Cuda::for_descriptor(&desc))?;
                let imported = c.import_memory(&desc, fd)?;
                // On the GPU the descriptor names (not in benchmarks: kept out of their timings).
                if !probe && desc.handle_type == extmem::HandleType::OpaqueFd {
                    imported.check_device(&desc)?;
                }
                let previous = memory.replace(imported);
                if !quiet {
                    step(
                        t0,
                        format_args!(
                            "CUDA imported {} bytes of {} memory (dedicated {}) as a device pointer, no copy",
                            desc.allocation_size, desc.handle_type, desc.dedicated
                        ),
                    );
                }
                channel.send(&Message::Verdict { ok: true, detail: "imported into CUDA".into() }, &[])?;
                release_after_ack(channel, previous, probe)?;
            }
            Message::ShareSemaphore => {
                let fd = fds.pop().expect("checked by recv");
                let c = cuda.as_ref().ok_or_else(|| extmem::Error::Protocol("ShareSemaphore before Share".into()))?;
                semaphore = Some(c.import_semaphore(fd)?);
                if !quiet {
                    step(t0, "CUDA imported the timeline semaphore");
                }
            }
            Message::FrameReady { frame } => {
                let (Some(c), Some(m)) = (cuda.as_ref(), memory.as_ref()) else {
                    return Err(extmem::Error::Protocol("FrameReady before Share".into()).into());
                };
                if let Some(s) = &semaphore {
                    s.wait(c, Frame::new(frame).ready())?;
                }
                if !probe {
                    let data = m.to_host(c)?;
                    if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
                        let detail = format!("frame {frame}: CUDA sees byte {at} = {seen:#04x}, expected {want:#04x}");
                        channel.send(&Message::Verdict { ok: false, detail: detail.clone() }, &[])?;
                        return Err(extmem::Error::Peer(detail).into());
                    }
                    m.from_host(c, &pattern::fill(data.len(), writeback_seed(frame)))?;
                    if !quiet {
                        step(
                            t0,
                            format_args!(
                                "frame {frame}: CUDA checked all {} bytes and wrote its own pattern back",
                                data.len()
                            ),
                        );
                    }
                }
                if let Some(s) = &semaphore {
                    s.signal(c, Frame::new(frame).done())?;
                }
                c.synchronize()?;
                FrameProtocol::new(channel, Role::Consumer).signal_done(Frame::new(frame))?;
            }
            Message::CudaIpc { handle, device_uuid, .. } => {
                let c = cuda_for(&mut cuda, || Cuda::for_device_uuid(device_uuid))?;
                let previous = ipc.replace(IpcMapping::open(c, handle)?);
                channel.send(&Message::Verdict { ok: true, detail: "opened".into() }, &[])?;
                release_after_ack(channel, previous, probe)?;
            }
            Message::Bye => break,
            other => return Err(extmem::Error::Protocol(format!("the CUDA consumer does not take {}", other.name())).into()),
        }
    }
    drop((ipc, semaphore, memory));
    Ok(ExitCode::SUCCESS)
}
