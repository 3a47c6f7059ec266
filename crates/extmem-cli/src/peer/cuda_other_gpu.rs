//! The CUDA consumer of `demo --consumer cuda --consumer-gpu N`: it runs on CUDA device N, whichever GPU
//! the producer's memory is on. Memory of another GPU is refused, naming both GPUs, unless
//! `--peer-copy`: then it is imported on the owning GPU and every frame is copied peer to peer
//! into memory of the consumer's GPU, where it is checked.

use crate::support::error::{CliError, Result};
use crate::support::timing::step;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::{self, writeback_seed};
use extmem::transport::{Channel, Message};
use extmem_cuda::{Cuda, CudaSemaphore, PeerImport};
use std::process::ExitCode;

fn refuse(channel: &Channel, e: extmem_cuda::Error) -> CliError {
    let _ = channel.send(&Message::Verdict { ok: false, detail: e.to_string() }, &[]);
    e.into()
}

/// Runs the consumer on CUDA device `ordinal` until the producer's Bye.
pub fn run(channel: &Channel, t0: u64, quiet: bool, ordinal: usize, peer_copy: bool) -> Result<ExitCode> {
    let consumer = Cuda::new(ordinal).map_err(|e| refuse(channel, e))?;
    let mut peer: Option<PeerImport> = None;
    let mut semaphore: Option<CudaSemaphore> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        match message {
            Message::Share(desc) => {
                let fd = fds.pop().expect("checked by recv");
                let wrong = if desc.handle_type == extmem::HandleType::HostAllocation {
                    Some(extmem_cuda::Error::Import(
                        "host memory is usable from every GPU: leave out --consumer-gpu (EXTMEM_CUDA_DEVICE picks \
                         the consumer's GPU)"
                            .into(),
                    ))
                } else if desc.device_uuid == consumer.uuid() {
                    Some(extmem_cuda::Error::Import(format!(
                        "the memory is on the consumer's own GPU (CUDA device {ordinal}): leave out --consumer-gpu \
                         and --peer-copy for the zero-copy path"
                    )))
                } else {
                    None
                };
                if let Some(e) = wrong {
                    return Err(refuse(channel, e));
                }
                if !peer_copy {
                    // The default: an opaque fd of another GPU is refused, naming both GPUs.
                    let e = consumer.import_memory(&desc, fd).err().unwrap_or_else(|| {
                        extmem_cuda::Error::Import("memory of another GPU imported in place".into())
                    });
                    return Err(refuse(channel, e));
                }
                let imported = consumer.import_memory_peer(&desc, fd).map_err(|e| refuse(channel, e))?;
                imported.imported().check_device(&desc).map_err(|e| refuse(channel, e))?;
                if !quiet {
                    step(
                        t0,
                        format_args!(
                            "CUDA device {ordinal} imported {} bytes on the owning GPU (CUDA device {}) and copies \
                             them peer to peer (direct peer access: {})",
                            desc.allocation_size,
                            imported.owner().ordinal(),
                            imported.peer_access()
                        ),
                    );
                }
                peer = Some(imported);
                channel.send(&Message::Verdict { ok: true, detail: "imported for peer copies".into() }, &[])?;
            }
            Message::ShareSemaphore => {
                let fd = fds.pop().expect("checked by recv");
                let p = peer.as_ref().ok_or_else(|| extmem::Error::Protocol("ShareSemaphore before Share".into()))?;
                semaphore = Some(p.owner().import_semaphore(fd)?);
            }
            Message::FrameReady { frame } => {
                let p = peer.as_ref().ok_or_else(|| extmem::Error::Protocol("FrameReady before Share".into()))?;
                let owner = p.owner();
                if let Some(s) = &semaphore {
                    s.wait(owner, Frame::new(frame).ready())?;
                }
                p.copy()?;
                owner.synchronize()?;
                let data = p.local().to_host(&consumer)?;
                if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
                    let detail = format!(
                        "frame {frame}: the peer copy on CUDA device {ordinal} has byte {at} = {seen:#04x}, expected {want:#04x}"
                    );
                    channel.send(&Message::Verdict { ok: false, detail: detail.clone() }, &[])?;
                    return Err(extmem::Error::Peer(detail).into());
                }
                p.imported().from_host(owner, &pattern::fill(data.len(), writeback_seed(frame)))?;
                if let Some(s) = &semaphore {
                    s.signal(owner, Frame::new(frame).done())?;
                }
                owner.synchronize()?;
                if !quiet {
                    step(
                        t0,
                        format_args!(
                            "frame {frame}: all {} bytes copied to CUDA device {ordinal} and checked; pattern written back",
                            data.len()
                        ),
                    );
                }
                FrameProtocol::new(channel, Role::Consumer).signal_done(Frame::new(frame))?;
            }
            Message::Bye => break,
            other => return Err(extmem::Error::Protocol(format!("the CUDA consumer does not take {}", other.name())).into()),
        }
    }
    drop((semaphore, peer));
    Ok(ExitCode::SUCCESS)
}
