# Sourced by gpu-check.sh and gpu-check-multi.sh on the GPU host: sets `out` (the results
# folder), unpacks the Vulkan loader and GL libraries from .dev/debs where the host lacks them,
# points the loader (and libglvnd's EGL) at NVIDIA's driver files, and sets `pymod` to the
# Python module (the maturin wheel where there is one, else the bare library).
out="${OUT:-.dev/out}"
mkdir -p "$out"
# The test binaries name their sources and the binaries beside them by the paths cargo compiled
# in (CARGO_MANIFEST_DIR, CARGO_BIN_EXE_*, CARGO_TARGET_TMPDIR: the build machine's tree):
# that path is made to lead here, and target/release to the prepared binaries.
build_root="$(cat .dev/bin/build-root 2>/dev/null || true)"
if [ -n "$build_root" ] && [ "$build_root" != "$PWD" ] && [ ! -e "$build_root" ]; then
    mkdir -p "$(dirname "$build_root")" && ln -s "$PWD" "$build_root"
fi
if [ ! -e target/release ]; then
    mkdir -p target && ln -s ../.dev/bin target/release
fi
mkdir -p target/tmp
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
