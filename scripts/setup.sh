#!/usr/bin/env bash
# Installs what extmem needs on Debian 12 when it is missing, and checks for Rust.
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

# python3-venv: the Python module is installed with pip into a virtual environment (.venv).
# libegl1 libegl-mesa0 libgl1-mesa-dri libgles2: OpenGL through EGL (llvmpipe and zink) for the
# GL consumer; extmem loads them at run time, so they are needed for its tests only.
packages=(libvulkan1 libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools gcc libc6-dev python3
    python3-venv fonts-dejavu-core libegl1 libegl-mesa0 libgl1-mesa-dri libgles2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "extmem setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || {
    echo "extmem setup: no Rust toolchain found; install Rust 1.82 or newer (https://rustup.rs) and run this again" >&2
    exit 1
}

# The lint gate in scripts/test.sh needs rustfmt and clippy.
for component in rustfmt clippy; do
    cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done

# vulkaninfo and the loader want a runtime directory; CI and root shells often have none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
