"""extmem: receive memory a Vulkan process shares (extmem's socket protocol) and use it from
PyTorch, numpy or any DLPack consumer without a copy.

CUDA memory comes as a kDLCUDA tensor (``torch.from_dlpack``), host memory as a kDLCPU one
(``numpy.from_dlpack``). The other direction, PyTorch filling memory a Vulkan process uses, is
``extmem.Producer`` (NVIDIA only); pooled hand-offs (blocks imported once, each hand-off an
offset) are ``extmem.PoolConsumer``; named streams of host frames are ``extmem.subscribe`` and
``extmem.publish``. See ``help(extmem.Consumer)``, ``help(extmem.Producer)`` and
``help(extmem.SharedBuffer)``.
"""

from ._extmem import (
    DLPACK_VERSION,
    Consumer,
    CudaError,
    EndOfStream,
    Error,
    ImportRefusedError,
    IoError,
    LayerError,
    LayoutError,
    LoaderError,
    NoDeviceError,
    PeerError,
    PoolConsumer,
    Producer,
    ProtocolError,
    SharedBuffer,
    PublishFrame,
    StreamFrame,
    StreamPublisher,
    StreamSubscriber,
    UnsupportedError,
    VulkanError,
    __version__,
    _testing,
    publish,
    subscribe,
)

__all__ = [
    "DLPACK_VERSION",
    "Consumer",
    "CudaError",
    "EndOfStream",
    "Error",
    "ImportRefusedError",
    "IoError",
    "LayerError",
    "LayoutError",
    "LoaderError",
    "NoDeviceError",
    "PeerError",
    "PoolConsumer",
    "Producer",
    "ProtocolError",
    "SharedBuffer",
    "PublishFrame",
    "StreamFrame",
    "StreamPublisher",
    "StreamSubscriber",
    "UnsupportedError",
    "VulkanError",
    "__version__",
    "publish",
    "subscribe",
]
