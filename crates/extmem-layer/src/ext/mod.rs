//! One module per extension the layer implements, each opening with a link to its reference
//! page. What is not an extension (marking resources external: `crate::marking`) lives beside
//! `dispatch.rs`.

pub mod nv_dedicated_allocation;
pub mod nv_external_memory;
pub mod nv_external_memory_capabilities;
