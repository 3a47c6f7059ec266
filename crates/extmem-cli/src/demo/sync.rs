//! How the demo's two sides order their GPU work, chosen once for every direction.

use crate::support::error::{CliError, Result};
use extmem::sync::{can_share_semaphores, SemaphoreKind, SharedSemaphore};
use extmem::Context;

/// Frame synchronisation between the two processes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum SyncMode {
    /// Semaphore where both sides can share one, else host.
    Auto,
    /// Host fences and socket messages only.
    Host,
    /// A shared timeline semaphore (fails where the driver cannot export one).
    Semaphore,
}

impl SyncMode {
    /// Refuses `semaphore` for a consumer that cannot wait for one (`gpu_waits` false).
    pub fn check(self, gpu_waits: bool) -> Result<()> {
        if self == SyncMode::Semaphore && !gpu_waits {
            return Err(CliError::Usage(
                "--sync semaphore: this consumer runs on the CPU and cannot wait for a GPU semaphore (use --sync host \
                 or auto)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The timeline semaphore to share, or `None` for host synchronisation. `gpu_waits` says
    /// whether the other side can wait for a semaphore at all (a CPU consumer cannot): `auto`
    /// then means host, and `semaphore` is refused.
    pub fn semaphore(self, ctx: &std::sync::Arc<Context>, gpu_waits: bool) -> Result<Option<SharedSemaphore>> {
        self.check(gpu_waits)?;
        match self {
            SyncMode::Host => Ok(None),
            SyncMode::Semaphore => Ok(Some(SharedSemaphore::new_timeline(ctx)?)),
            SyncMode::Auto if !gpu_waits => Ok(None),
            SyncMode::Auto => Ok(can_share_semaphores(ctx, SemaphoreKind::Timeline)
                .then(|| SharedSemaphore::new_timeline(ctx))
                .transpose()?),
        }
    }
}
