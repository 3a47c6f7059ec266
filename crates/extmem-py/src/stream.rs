//! Streams from Python: `extmem.subscribe(name, device="cpu")` iterates a stream's frames as
//! read-only DLPack tensors; `extmem.publish(name, shape, dtype, device="cpu")` publishes host
//! frames written through a writable DLPack view (numpy can publish to a Vulkan subscriber
//! with no GPU). Host memory only for now: `device="cuda"` is refused with the reason.
//!
//! A subscriber's frame is released at the latest when the iteration advances (or on
//! `release()`); a tensor that must outlive it is copied (`numpy.from_dlpack(frame).copy()`).
//! Frames are read-only: a DLPack 1.0 capsule carries `DLPACK_FLAG_BITMASK_READ_ONLY`; a
//! legacy capsule, which cannot say so, gets a copy.

use crate::dlpack::{self, Target, FLAG_READ_ONLY, KDL_CPU};
use crate::errors::IntoPy;
use crate::layout::Layout;
use crate::layout::{KDL_FLOAT, KDL_UINT};
use extmem::stream::{self as st, FrameMapping, Memory, Policy, StreamOptions, SubscribeOptions};
use extmem::{vk, BufferDesc, ImageDesc};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use std::cell::RefCell;
use std::ffi::c_void;
use std::rc::Rc;
use std::time::Duration;

type Held = Rc<RefCell<Option<st::StreamFrame>>>;

fn cpu_only(device: &str, what: &str) -> PyResult<()> {
    match device {
        "cpu" => Ok(()),
        "cuda" => Err(crate::errors::UnsupportedError::new_err(format!(
            "{what} with device=\"cuda\" is not available yet (host-memory streams only); use device=\"cpu\""
        ))),
        other => Err(PyValueError::new_err(format!("device must be \"cpu\" or \"cuda\", not {other:?}"))),
    }
}

fn timeout(t: Option<f64>) -> PyResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!("timeout must be a non-negative number of seconds, not {s}"))),
    }
}

/// Subscribes to stream `name`; an iterable, closable subscriber. `timeout` (seconds) bounds
/// the wait for the publisher to appear and for each frame.
#[pyfunction]
#[pyo3(signature = (name, device = "cpu", timeout = None))]
pub fn subscribe(py: Python<'_>, name: &str, device: &str, timeout: Option<f64>) -> PyResult<StreamSubscriber> {
    cpu_only(device, "subscribe")?;
    let mut options = SubscribeOptions::default();
    if let Some(t) = self::timeout(timeout)? {
        options = options.timeout(t);
    }
    let name = name.to_owned();
    let sub = py.detach(move || st::Subscriber::connect_host(&name, options)).py()?;
    Ok(StreamSubscriber { inner: Some(sub), current: None })
}

/// A stream subscriber: iterate it for frames; the iteration ends at a clean end of stream
/// and raises `extmem.PeerError` when the publisher dies.
#[pyclass(unsendable, module = "extmem")]
pub struct StreamSubscriber {
    inner: Option<st::Subscriber>,
    current: Option<Held>,
}

impl StreamSubscriber {
    fn release_current(&mut self) {
        if let Some(held) = self.current.take() {
            held.borrow_mut().take();
        }
    }
}

#[pymethods]
impl StreamSubscriber {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<StreamFrame>> {
        self.release_current();
        let Some(sub) = self.inner.as_mut() else {
            return Err(PyValueError::new_err("the subscriber is closed"));
        };
        let Some(frame) = py.detach(|| sub.next()).py()? else { return Ok(None) };
        let (w, h) = sub.extent();
        let bytes = sub.frame_bytes();
        let shape = if w > 0 && h > 0 && bytes == w as u64 * h as u64 * 4 {
            vec![h as i64, w as i64, 4]
        } else {
            vec![bytes as i64]
        };
        let (ptr, len) = frame.host_ptr().expect("a host-memory stream");
        let out = StreamFrame {
            index: frame.index(),
            slot: frame.slot(),
            timestamp_ns: frame.timestamp_ns(),
            metadata: frame.metadata().to_vec(),
            shape,
            ptr,
            len,
            mapping: frame.mapping(),
            held: Rc::new(RefCell::new(Some(frame))),
        };
        self.current = Some(out.held.clone());
        Ok(Some(out))
    }

    /// Leaves the stream (releasing the frame held).
    fn close(&mut self) {
        self.release_current();
        self.inner = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(&mut self, _t: Option<Py<PyAny>>, _v: Option<Py<PyAny>>, _tb: Option<Py<PyAny>>) -> bool {
        self.close();
        false
    }

    /// The publisher's process id.
    #[getter]
    fn publisher_pid(&self) -> Option<u32> {
        self.inner.as_ref().map(|s| s.publisher_pid())
    }

    /// Slots in the stream's ring.
    #[getter]
    fn slots(&self) -> Option<u32> {
        self.inner.as_ref().map(|s| s.slots())
    }
}

/// A frame of a stream: a read-only DLPack tensor (uint8, (H, W, 4) for an image-shaped
/// stream, (bytes,) for a buffer), its `index`, `timestamp_ns` and `metadata`.
#[pyclass(unsendable, module = "extmem")]
pub struct StreamFrame {
    index: u64,
    slot: u32,
    timestamp_ns: u64,
    metadata: Vec<u8>,
    shape: Vec<i64>,
    ptr: *const u8,
    len: usize,
    mapping: FrameMapping,
    held: Held,
}

#[pymethods]
impl StreamFrame {
    /// The frame number (from 0 per publisher life).
    #[getter]
    fn index(&self) -> u64 {
        self.index
    }
    /// The ring slot.
    #[getter]
    fn slot(&self) -> u32 {
        self.slot
    }
    /// When the publisher published it (CLOCK_MONOTONIC, ns).
    #[getter]
    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// The user metadata published with it.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, &self.metadata)
    }
    /// The tensor's shape.
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.shape.clone()
    }
    /// Whether the frame was released (its memory may be rewritten from then on).
    #[getter]
    fn released(&self) -> bool {
        self.held.borrow().is_none()
    }
    /// Hands the frame back to the publisher now.
    fn release(&self) {
        self.held.borrow_mut().take();
    }

    /// DLPack: a read-only view of the frame (`dltensor_versioned` with the READ_ONLY flag
    /// when `max_version` is (1, x) or later), or a copy (`copy=True`, or a legacy capsule,
    /// which cannot carry the flag).
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<i64>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(s) = stream {
            return Err(PyValueError::new_err(format!("CPU memory has no streams; got stream {s}")));
        }
        if dl_device.is_some_and(|d| d != (KDL_CPU, 0)) {
            return Err(PyBufferError::new_err("the frame is in host memory (DLPack device (1, 0))"));
        }
        if self.released() {
            return Err(PyBufferError::new_err("the frame was released; copy what must outlive it"));
        }
        let versioned = max_version.is_some_and(|(major, _)| major >= dlpack::VERSION.0);
        let layout = Layout { shape: self.shape.clone(), strides: None, code: KDL_UINT, bits: 8 };
        if copy == Some(true) || !versioned {
            let mut words = vec![0u64; self.len.div_ceil(8)].into_boxed_slice();
            // SAFETY: `len` bytes are mapped at `ptr` while `mapping` lives; the frame is held.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr, words.as_mut_ptr().cast::<u8>(), self.len) };
            let data = words.as_mut_ptr().cast::<c_void>();
            let target =
                Target { data, len: self.len as u64, device: (KDL_CPU, 0), keep: Box::new(words), copied: true };
            return dlpack::capsule(py, target, &layout, versioned);
        }
        let target = Target {
            data: self.ptr as *mut c_void,
            len: self.len as u64,
            device: (KDL_CPU, 0),
            keep: Box::new(self.mapping.clone()),
            copied: false,
        };
        dlpack::capsule_with_flags(py, target, &layout, true, FLAG_READ_ONLY)
    }

    /// DLPack: `(1, 0)`, host memory.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (KDL_CPU, 0)
    }

    fn __repr__(&self) -> String {
        format!(
            "<extmem.StreamFrame {} shape={:?}{}>",
            self.index,
            self.shape,
            if self.released() { " released" } else { "" }
        )
    }
}

fn dtype(name: &str) -> PyResult<(u8, u8)> {
    let kdl_int = 0u8;
    Ok(match name {
        "uint8" | "u1" | "B" => (KDL_UINT, 8),
        "uint16" | "u2" => (KDL_UINT, 16),
        "uint32" | "u4" => (KDL_UINT, 32),
        "int8" | "i1" => (kdl_int, 8),
        "int16" | "i2" => (kdl_int, 16),
        "int32" | "i4" => (kdl_int, 32),
        "int64" | "i8" => (kdl_int, 64),
        "float16" | "f2" => (KDL_FLOAT, 16),
        "float32" | "f4" => (KDL_FLOAT, 32),
        "float64" | "f8" => (KDL_FLOAT, 64),
        other => {
            return Err(PyValueError::new_err(format!(
                "dtype {other:?} is not one of uint8..64, int8..64, float16/32/64"
            )))
        }
    })
}

/// Publishes stream `name` of frames of `shape` and `dtype` (a string such as "uint8"); a
/// publisher whose `.frame()` gives a writable frame, published when the `with` block ends.
/// An (H, W, 4) uint8 stream is image-shaped (RGBA8); any other is a buffer of its bytes.
#[pyfunction]
#[pyo3(signature = (name, shape, dtype, device = "cpu", slots = 4, policy = "every"))]
pub fn publish(
    name: &str,
    shape: Vec<i64>,
    dtype: &str,
    device: &str,
    slots: u32,
    policy: &str,
) -> PyResult<StreamPublisher> {
    cpu_only(device, "publish")?;
    let (code, bits) = self::dtype(dtype)?;
    if shape.is_empty() || shape.iter().any(|&d| d <= 0) {
        return Err(PyValueError::new_err(format!("shape {shape:?} must have positive dimensions")));
    }
    let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
    let bytes = elements
        .and_then(|e| e.checked_mul(bits as u64 / 8))
        .ok_or_else(|| PyValueError::new_err("shape too large"))?;
    let policy = match policy {
        "every" => Policy::Every,
        "latest" => Policy::Latest,
        other => return Err(PyValueError::new_err(format!("policy must be \"every\" or \"latest\", not {other:?}"))),
    };
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let options = match shape[..] {
        [h, w, 4] if (code, bits) == (KDL_UINT, 8) && h <= 65536 && w <= 65536 => {
            let usage = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
            StreamOptions::image(ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, w as u32, h as u32, usage))
        }
        _ => StreamOptions::buffer(BufferDesc::new(bytes, usage)),
    };
    let options = options.memory(Memory::Host).slots(slots).policy(policy);
    let inner = st::Publisher::create_host(name, options).py()?;
    Ok(StreamPublisher { inner: Some(inner), layout: (shape, code, bits), bytes })
}

/// A stream publisher: `with publisher.frame() as f: numpy.from_dlpack(f)[...] = ...`.
#[pyclass(unsendable, module = "extmem")]
pub struct StreamPublisher {
    inner: Option<st::Publisher>,
    layout: (Vec<i64>, u8, u8),
    bytes: u64,
}

#[pymethods]
impl StreamPublisher {
    /// A writable frame (a context manager), published when the `with` block ends without an
    /// exception (dropped otherwise).
    fn frame(slf: Bound<'_, Self>) -> PyResult<PublishFrame> {
        let mut me = slf.borrow_mut();
        let bytes = me.bytes as usize;
        let inner = me.inner.as_mut().ok_or_else(|| PyValueError::new_err("the publisher is closed"))?;
        let slot = inner.acquire().py()?;
        let (ptr, len) = slot.host_ptr().expect("host memory");
        Ok(PublishFrame {
            publisher: slf.clone().unbind(),
            index: slot.index(),
            ptr,
            len: len.min(bytes),
            mapping: slot.mapping(),
            slot: Some(slot),
        })
    }

    /// Subscribers joined now.
    #[getter]
    fn subscribers(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.subscribers())
    }

    /// Ends the stream cleanly (subscribers' iterations end).
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(&mut self, _t: Option<Py<PyAny>>, _v: Option<Py<PyAny>>, _tb: Option<Py<PyAny>>) -> bool {
        self.close();
        false
    }
}

/// A frame being written: a writable DLPack tensor of the publisher's shape and dtype.
#[pyclass(unsendable, module = "extmem")]
pub struct PublishFrame {
    publisher: Py<StreamPublisher>,
    index: u64,
    ptr: *mut u8,
    len: usize,
    mapping: st::SlotMapping,
    slot: Option<st::Slot>,
}

#[pymethods]
impl PublishFrame {
    /// The number this frame will carry.
    #[getter]
    fn index(&self) -> u64 {
        self.index
    }

    /// Sets the frame's metadata (at most 256 bytes).
    fn set_metadata(&mut self, data: &[u8]) -> PyResult<()> {
        let slot = self.slot.as_mut().ok_or_else(|| PyValueError::new_err("the frame was published"))?;
        slot.set_metadata(data).py()
    }

    /// Copies `data` (bytes) into the frame.
    fn write(&mut self, data: &[u8]) -> PyResult<()> {
        let slot = self.slot.as_mut().ok_or_else(|| PyValueError::new_err("the frame was published"))?;
        slot.write_host(data).py()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<Py<PyAny>>,
        _v: Option<Py<PyAny>>,
        _tb: Option<Py<PyAny>>,
    ) -> PyResult<bool> {
        let Some(slot) = self.slot.take() else { return Ok(false) };
        if exc_type.is_none() {
            let mut p = self.publisher.borrow_mut(py);
            let inner = p.inner.as_mut().ok_or_else(|| PyValueError::new_err("the publisher is closed"))?;
            inner.publish(slot, extmem::Handoff::host()).py()?;
        }
        Ok(false)
    }

    /// DLPack: a writable view of the frame's host memory.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<i64>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        if stream.is_some() || copy == Some(true) || dl_device.is_some_and(|d| d != (KDL_CPU, 0)) {
            return Err(PyBufferError::new_err("a frame to publish is a host view: no stream, device or copy"));
        }
        if self.slot.is_none() {
            return Err(PyBufferError::new_err("the frame was published"));
        }
        let p = self.publisher.borrow(py);
        let (shape, code, bits) = &p.layout;
        let layout = Layout { shape: shape.clone(), strides: None, code: *code, bits: *bits };
        let target = Target {
            data: self.ptr.cast::<c_void>(),
            len: self.len as u64,
            device: (KDL_CPU, 0),
            keep: Box::new(self.mapping.clone()),
            copied: false,
        };
        let versioned = max_version.is_some_and(|(major, _)| major >= dlpack::VERSION.0);
        dlpack::capsule(py, target, &layout, versioned)
    }

    /// DLPack: `(1, 0)`, host memory.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (KDL_CPU, 0)
    }
}
