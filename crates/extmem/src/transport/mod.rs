//! Moving shared memory between processes: the wire format of what an importer needs to know
//! ([`message`]) and a Unix socket that carries it with the file descriptors ([`socket`]).

mod codec;
pub mod liveness;
pub mod message;
mod pool_wire;
pub mod private_dir;
mod resource_wire;
pub mod socket;
pub mod text;

pub use crate::desc::{BufferDesc, Descriptor, ImageDesc, ResourceDesc};
pub use message::Message;
pub use socket::{Channel, Listener};
