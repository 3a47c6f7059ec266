"""Type stubs of the compiled module ``extmem._extmem`` (re-exported by ``extmem``)."""

from typing import Any, List, Literal, Optional, Tuple

__version__: str
DLPACK_VERSION: Tuple[int, int]

class Error(Exception):
    """Base class of every error extmem raises."""

class VulkanError(Error):
    """A Vulkan command failed."""

class LoaderError(Error):
    """The Vulkan loader (libvulkan.so.1) could not be loaded."""

class NoDeviceError(Error):
    """No usable Vulkan device."""

class UnsupportedError(Error):
    """The device, driver or memory cannot do what was asked."""

class LayerError(Error):
    """The extmem Vulkan layer could not be found or enabled."""

class ImportRefusedError(Error):
    """An import was refused because it could not work."""

class ProtocolError(Error):
    """The peer sent a malformed or unexpected message."""

class PeerError(Error):
    """The peer closed the connection, died, or did not answer in time."""

class EndOfStream(PeerError):
    """The producer said Bye: no more frames will come."""

class IoError(Error):
    """A socket, file or mapping operation failed."""

class CudaError(Error):
    """CUDA is missing, failed, or has no device matching the memory."""

class LayoutError(Error):
    """The shared memory has no tensor layout (an OPTIMAL image, say)."""

class SharedBuffer:
    """Shared memory as a DLPack tensor (``torch.from_dlpack`` / ``numpy.from_dlpack``)."""

    def __dlpack__(
        self,
        *,
        stream: Optional[int] = None,
        max_version: Optional[Tuple[int, int]] = None,
        dl_device: Optional[Tuple[int, int]] = None,
        copy: Optional[bool] = None,
    ) -> Any:
        """A ``dltensor_versioned`` capsule when ``max_version >= (1, 0)``, else ``dltensor``."""
    def __dlpack_device__(self) -> Tuple[int, int]:
        """``(1, 0)`` (kDLCPU) for host memory, ``(2, ordinal)`` (kDLCUDA) for CUDA memory."""
    def __len__(self) -> int:
        """Bytes the tensor spans."""
    @property
    def shape(self) -> List[int]:
        """The tensor's shape."""
    @property
    def device(self) -> Literal["cuda", "cpu"]:
        """Where the memory is."""
    @property
    def data_ptr(self) -> int:
        """The address of the first element (device or host pointer)."""
    @property
    def device_ptr(self) -> int:
        """The CUDA device pointer (CUDA memory only)."""

class Consumer:
    """The consuming end of an extmem hand-off."""

    def __init__(self, socket: str) -> None:
        """Connects to the producer's socket (same user only)."""
    def receive(self, device: Literal["cuda", "cpu"] = "cuda") -> SharedBuffer:
        """Waits for shared memory: imported into CUDA, or host memory mapped for the CPU."""
    def wait_ready(self, stream: Optional[int] = None) -> int:
        """Waits for the next frame and returns its number; raises EndOfStream on Bye."""
    def done(self, frame: int, stream: Optional[int] = None) -> None:
        """Hands frame ``frame`` back to the producer."""
    def wait_bye(self) -> None:
        """Waits for the producer's Bye."""

class PoolConsumer:
    """The consuming end of an extmem pool: blocks imported into CUDA once, hand-offs as offsets."""

    def __init__(self, socket: str) -> None:
        """Connects to the producer's socket (same user only)."""
    def receive(self) -> Tuple[Tuple[int, int, int, int], SharedBuffer]:
        """Waits for the next pooled hand-off: (handle, buffer); raises EndOfStream on Bye."""
    def release(self, handle: Tuple[int, int, int, int]) -> None:
        """Gives a received sub-allocation back to the producer."""

class Producer:
    """The producing end: shares exportable CUDA memory with a Vulkan consumer (NVIDIA only)."""

    def __init__(self, socket: str) -> None:
        """Connects to the consumer's socket (same user only)."""
    def share(self, nbytes: int, device: Optional[int] = None) -> SharedBuffer:
        """Makes ``nbytes`` of exportable CUDA memory, shares it, waits for the import."""
    @property
    def has_semaphore(self) -> bool:
        """Whether the consumer shared a semaphore (GPU-side ordering)."""
    def ready(self, frame: int, stream: Optional[int] = None) -> None:
        """Hands frame ``frame`` over once the work queued on ``stream`` is done."""
    def wait_done(self, frame: int, stream: Optional[int] = None) -> None:
        """Waits until the consumer hands frame ``frame`` back."""
    def bye(self) -> None:
        """Tells the consumer there are no more frames."""

class _testing:
    """Test and example helpers, not part of the API."""
    @staticmethod
    def pattern(len: int, seed: int) -> bytes:
        """``len`` bytes of extmem's check pattern for ``seed`` (``ValueError`` above 1 GiB)."""
    @staticmethod
    def writeback_seed(frame: int) -> int:
        """The seed the consumer writes back for ``frame`` in the demo."""
