//! Submitting work to the context's queue: one-time command buffers and fences kept for
//! reuse, waited for at once or carried by a [`Submission`].

use super::Context;
use crate::error::{Error, Result, VkResultExt};
use ash::vk;

impl Context {
    /// Records commands with `record` into a one-time command buffer, submits it to the
    /// context's queue and waits for it to complete.
    pub fn submit(&self, record: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
        self.submit_with(record, None, None)
    }

    /// Like [`Context::submit`], with the GPU waiting for timeline value `wait.1` of `wait.0`
    /// before the commands and signalling `signal.1` on `signal.0` after them. The host still
    /// waits for its own fence (a wait through the API that signalled it).
    pub fn submit_with(
        &self,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
        wait: Option<(vk::Semaphore, u64)>,
        signal: Option<(vk::Semaphore, u64)>,
    ) -> Result<()> {
        self.submit_async(record, wait, signal)?.wait()
    }

    /// Records and submits like [`Context::submit_with`] but returns at once: the
    /// [`Submission`] waits for the GPU when asked, or when it is dropped. Frame loops keep a
    /// few in flight, so the host never waits for the GPU between frames.
    pub fn submit_async(
        &self,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
        wait: Option<(vk::Semaphore, u64)>,
        signal: Option<(vk::Semaphore, u64)>,
    ) -> Result<Submission<'_>> {
        self.may_submit()?;
        // The pool, the idle pairs and the queue are used under this lock only.
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let d = &self.device;
        // SAFETY: a command buffer and fence of the locked pool, idle (their last use was
        // waited for), recorded and submitted here; the `Submission` gives them back.
        unsafe {
            let (cb, fence) = match commands.idle.pop() {
                Some(pair) => pair,
                None => {
                    let alloc =
                        vk::CommandBufferAllocateInfo::default().command_pool(commands.pool).command_buffer_count(1);
                    let cb = d.allocate_command_buffers(&alloc).vk("vkAllocateCommandBuffers")?[0];
                    match d.create_fence(&vk::FenceCreateInfo::default(), None) {
                        Ok(f) => (cb, f),
                        Err(e) => {
                            d.free_command_buffers(commands.pool, &[cb]);
                            return Err(Error::Vulkan { call: "vkCreateFence", result: e });
                        }
                    }
                }
            };
            // Dropped after the lock guard on every path (declared first), so its `Drop` can
            // take the lock to give the pair back.
            let mut submission = Submission { ctx: self, cb, fence, submitted: false };
            let result = (|| {
                let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
                d.begin_command_buffer(cb, &begin).vk("vkBeginCommandBuffer")?;
                record(d, cb);
                d.end_command_buffer(cb).vk("vkEndCommandBuffer")?;
                let (wait_sems, wait_values): (Vec<_>, Vec<_>) = wait.into_iter().unzip();
                let (signal_sems, signal_values): (Vec<_>, Vec<_>) = signal.into_iter().unzip();
                let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; wait_sems.len()];
                let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(&wait_values)
                    .signal_semaphore_values(&signal_values);
                let cbs = [cb];
                let mut submit = vk::SubmitInfo::default()
                    .command_buffers(&cbs)
                    .wait_semaphores(&wait_sems)
                    .wait_dst_stage_mask(&stages)
                    .signal_semaphores(&signal_sems);
                // Values are ignored for binary semaphores; the struct needs timeline support.
                if self.timeline && (wait.is_some() || signal.is_some()) {
                    submit = submit.push_next(&mut timeline);
                }
                // A borrowed queue is used only as the application allows.
                self.on_queue(|| d.queue_submit(self.queue, &[submit], fence).vk("vkQueueSubmit"))
            })();
            drop(commands);
            result?;
            submission.submitted = true;
            Ok(submission)
        }
    }
}

/// Work on the GPU from [`Context::submit_async`].
#[must_use = "dropping a Submission waits for the GPU"]
pub struct Submission<'a> {
    ctx: &'a Context,
    cb: vk::CommandBuffer,
    fence: vk::Fence,
    /// The batch reached the queue (so the fence will signal).
    submitted: bool,
}

impl Submission<'_> {
    /// Waits for the GPU to finish the work (a host wait on this side's own fence).
    pub fn wait(self) -> Result<()> {
        self.wait_fence()
    }

    fn wait_fence(&self) -> Result<()> {
        if !self.submitted {
            return Ok(());
        }
        // SAFETY: the fence of a submitted batch.
        unsafe { self.ctx.device.wait_for_fences(&[self.fence], true, u64::MAX) }.vk("vkWaitForFences")
    }

    /// Whether the GPU has finished the work.
    pub fn is_done(&self) -> Result<bool> {
        if !self.submitted {
            return Ok(true);
        }
        // SAFETY: the fence of a submitted batch.
        unsafe { self.ctx.device.get_fence_status(self.fence) }.vk("vkGetFenceStatus")
    }
}

impl Drop for Submission<'_> {
    fn drop(&mut self) {
        // The command buffer and fence go back to the idle list once the GPU is done with
        // them (reused: creating a fence per submission costs hundreds of µs on some drivers).
        let waited = self.wait_fence();
        let d = &self.ctx.device;
        let mut commands = self.ctx.commands.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the batch finished (or never went out); the pair is idle.
        unsafe {
            if waited.is_ok() && d.reset_fences(&[self.fence]).is_ok() {
                commands.idle.push((self.cb, self.fence));
            } else {
                d.free_command_buffers(commands.pool, &[self.cb]);
                d.destroy_fence(self.fence, None);
            }
        }
    }
}

/// The command pool and the command buffer / fence pairs waiting for reuse.
pub(super) struct Commands {
    pub(super) pool: vk::CommandPool,
    pub(super) idle: Vec<(vk::CommandBuffer, vk::Fence)>,
}
