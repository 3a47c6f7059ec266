//! One module per extension the layer implements.

pub mod external_marking;
pub mod nv_external_memory;
pub mod nv_external_memory_capabilities;
