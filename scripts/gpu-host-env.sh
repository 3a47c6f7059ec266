# Sourced by gpu-check.sh and gpu-check-multi.sh on the GPU host: sets `out` (the results
# folder), unpacks the Vulkan loader and GL libraries from .dev/debs where the host lacks them,
# points the loader (and libglvnd's EGL) at NVIDIA's driver files, and sets `pymod` to the
# Python module (the maturin wheel where there is one, else the bare library).
out="${OUT:-.dev/out}"
mkdir -p "$out"
# (grep reads all of ldconfig's output: with pipefail, `grep -q` closing the pipe early would fail the check.)
libs=$(ldconfig -p)
if ! grep -q libGLdispatch.so.0 <<<"$libs" || ! grep -q libvulkan.so.1 <<<"$libs"; then
    for f in .dev/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e "$nvidia_icd" ]; then export VK_DRIVER_FILES="$nvidia_icd"; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# NVIDIA's EGL driver for the GL consumer (libglvnd finds no vendor file there by itself).
nvidia_egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -e "$nvidia_egl" ] && [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES="$nvidia_egl"
fi
if [ -e .dev/bin/DejaVuSans.ttf ]; then export EXTMEM_FONT=.dev/bin/DejaVuSans.ttf; fi
pymod=.dev/bin/python
if ls .dev/wheels/extmem-*.whl >/dev/null 2>&1 \
    && python3 -m pip install -q --no-deps --target /tmp/extmem-py .dev/wheels/extmem-*.whl; then
    pymod=/tmp/extmem-py
fi
