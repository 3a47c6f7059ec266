//! The library speaks through the `log` facade: with a logger installed, the context it makes
//! (naming the device), the device choice and a refused import are reported.

use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, SharedMemory};
use std::sync::Mutex;

struct Collect(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("extmem") {
            self.0.lock().unwrap().push((record.level(), record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Collect = Collect(Mutex::new(Vec::new()));

fn seen(level: log::Level, starts: &str) -> bool {
    LOGGER.0.lock().unwrap().iter().any(|(l, m)| *l == level && m.starts_with(starts))
}

#[test]
fn the_context_the_device_choice_and_a_refused_import_are_logged() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let ctx = Context::new(&ContextOptions::default()).unwrap();
    assert!(seen(log::Level::Info, &format!("context on {}", ctx.device_name())), "{:?}", LOGGER.0.lock().unwrap());
    assert!(seen(log::Level::Debug, "device "), "no device choice: {:?}", LOGGER.0.lock().unwrap());

    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let shared =
        SharedMemory::new_buffer(&ctx, BufferDesc::new(65536, usage), HandleType::OpaqueFd, Dedicated::Never).unwrap();
    let (mut desc, fd) = shared.export().unwrap();
    desc.device_uuid = [0xee; 16];
    assert!(SharedMemory::import(&ctx, &desc, fd).is_err(), "an import naming another device");
    assert!(seen(log::Level::Warn, "import of "), "no refused import: {:?}", LOGGER.0.lock().unwrap());
}
