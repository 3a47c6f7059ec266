//! The harness itself: a broken call must produce a validation message, in either position,
//! or every "no validation message" assertion of the project would prove nothing.

use ash::vk;
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};

#[test]
fn a_broken_call_is_reported() {
    for validation in [Validation::AboveLayer, Validation::BelowLayer] {
        let inst = TestInstance::new(&InstanceSpec::nv(validation));
        let dev = TestDevice::new(&inst, &[]);
        // A buffer with size 0 and no usage breaks two valid-usage rules.
        let info = vk::BufferCreateInfo::default();
        // SAFETY: invalid on purpose; lavapipe tolerates it and validation reports it.
        if let Ok(b) = unsafe { dev.device.create_buffer(&info, None) } {
            unsafe { dev.device.destroy_buffer(b, None) };
        }
        drop(dev);
        assert!(!inst.messages().is_empty(), "validation {validation:?} said nothing about a zero-sized buffer");
    }
}
