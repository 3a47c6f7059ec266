#!/usr/bin/env bash
# The install test (run by scripts/test.sh after the workspace is built): builds the Debian
# packages as they are shipped (scripts/build-debs.sh: release profile, stripped, lintian with
# no error or warning), installs extmem-vulkan-layer and extmem with dpkg into an empty root,
# points the Vulkan loader at that root only, runs `vulkaninfo --summary`, the packaged
# `extmem run` and the C client (tests/c/nv_client.c) through the installed layer, checks the
# man pages and completions, purges both packages and checks that nothing is left; then the
# same with scripts/install.sh under a prefix.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "install test: FAILED: $*" >&2; exit 1; }

# The packages from the release build (built here if missing: about 2 minutes on 2 cores).
bash scripts/build-debs.sh --lintian --out "$work/debs" >"$work/build-debs.log" 2>&1 ||
    { cat "$work/build-debs.log"; fail "scripts/build-debs.sh"; }
grep '^build-debs: \(NOTE\|lintian\)' "$work/build-debs.log" || true
layer_deb="$(ls "$work"/debs/extmem-vulkan-layer_*.deb)"
deb="$(ls "$work"/debs/extmem_*.deb)"
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
# The root holds no libc or loader of its own: the dependencies are the host's.
dpkg --root="$root" --force-depends --force-not-root -i "$layer_deb" "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
triple="$(gcc -print-multiarch)"
[ -f "$root/usr/lib/$triple/libVkLayer_extmem.so" ] || fail "the layer is not in /usr/lib/$triple"
# (Each tool's whole output is read: with pipefail, `grep -q` closing a pipe early would fail it.)
grep -qF 'Library soname: [libVkLayer_extmem.so]' <<<"$(readelf -d "$root/usr/lib/$triple/libVkLayer_extmem.so")" ||
    fail "the layer's SONAME is not its file name"
! grep -qE '\.(debug_info|symtab) ' <<<"$(readelf -SW "$root/usr/bin/extmem" "$root/usr/lib/$triple/libVkLayer_extmem.so")" ||
    fail "the packaged binaries are not stripped"
! grep -q 'usr/bin' <<<"$(dpkg-deb -c "$layer_deb")" || fail "the layer's package holds a program"
! grep -q '\.so' <<<"$(dpkg-deb -c "$deb")" || fail "the command's package holds a library"
# Man pages and completions, where this CLI generates them (build-debs.sh says when it does not).
if ! grep -q '^build-debs: NOTE' "$work/build-debs.log"; then
    for f in share/man/man1/extmem.1.gz share/bash-completion/completions/extmem \
        share/zsh/vendor-completions/_extmem share/fish/vendor_completions.d/extmem.fish; do
        [ -s "$root/usr/$f" ] || fail "/usr/$f is not installed"
    done
    zcat "$root/usr/share/man/man1/extmem.1.gz" | grep -q '^\.TH' || fail "extmem.1 is not a man page"
fi
[ -f "$root/usr/share/vulkan/implicit_layer.d/VkLayer_extmem.json" ] || fail "no implicit manifest"
[ "$(find "$root" -name 'VkLayer_extmem*.json' | wc -l)" = 1 ] || fail "more than one manifest installed"

cc -std=c11 -O1 -o "$work/nv_client" tests/c/nv_client.c -lvulkan
icds="$(ls /usr/share/vulkan/icd.d/*.json | paste -sd:)"
mkdir -p "$work/home"
# The loader sees the drivers and the given data folder only: no layer of the build tree or the host.
# The manifest names the library by file name, which the dynamic linker resolves in the
# multiarch folder (on a real system a default folder; here the root's, given explicitly).
isolated() {
    local data="$1" libs="$2"
    shift 2
    env -u VK_ADD_LAYER_PATH -u VK_LAYER_PATH -u VK_INSTANCE_LAYERS -u VK_LOADER_LAYERS_ENABLE \
        -u EXTMEM_LAYER_DIR -u EXTMEM_ENABLE_NV -u EXTMEM_DISABLE_NV -u XDG_CONFIG_HOME -u XDG_DATA_HOME \
        HOME="$work/home" XDG_CONFIG_DIRS="$work/home" XDG_DATA_DIRS="$data" LD_LIBRARY_PATH="$libs" \
        VK_DRIVER_FILES="$icds" VK_ICD_FILENAMES="$icds" XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" "$@"
}
listed_once() { [ "$(grep -c '^VK_LAYER_EXTMEM_external_memory' "$1")" = 1 ] || { cat "$1"; fail "$2: the layer is not listed exactly once"; }; }
nv_ext='^[[:space:]]*VK_NV_external_memory_capabilities[[:space:]]*:'
has_nv() { grep -q "$nv_ext" "$1" || { cat "$1"; fail "$2: VK_NV_external_memory_capabilities missing"; }; }
passes() { local out="$1" what="$2"; shift 2; "$@" >"$out" 2>&1 && [ "$(tail -n1 "$out")" = PASS ] || { cat "$out"; fail "$what"; }; }

check_layer() {
    local where="$1" data="$2" libs="$3" o="$work/out.txt"
    isolated "$data" "$libs" vulkaninfo --summary >"$o" 2>&1 || { cat "$o"; fail "$where: vulkaninfo"; }
    listed_once "$o" "$where, off"
    ! grep -q "$nv_ext" "$o" || fail "$where: the layer is on without EXTMEM_ENABLE_NV"
    isolated "$data" "$libs" env EXTMEM_ENABLE_NV=1 vulkaninfo --summary >"$o" 2>&1 || { cat "$o"; fail "$where: vulkaninfo"; }
    listed_once "$o" "$where, EXTMEM_ENABLE_NV=1"
    has_nv "$o" "$where, EXTMEM_ENABLE_NV=1"
    passes "$o" "$where: nv_client with EXTMEM_ENABLE_NV=1" \
        isolated "$data" "$libs" env EXTMEM_ENABLE_NV=1 "$work/nv_client" --export --require-global
    passes "$o" "$where: nv_client with VK_LOADER_LAYERS_ENABLE" \
        isolated "$data" "$libs" env VK_LOADER_LAYERS_ENABLE=VK_LAYER_EXTMEM_external_memory "$work/nv_client" --export
    passes "$o" "$where: nv_client naming the layer in ppEnabledLayerNames" \
        isolated "$data" "$libs" "$work/nv_client" --layer VK_LAYER_EXTMEM_external_memory
    ! isolated "$data" "$libs" env EXTMEM_ENABLE_NV=1 EXTMEM_DISABLE_NV=1 "$work/nv_client" >"$o" 2>&1 ||
        fail "$where: EXTMEM_DISABLE_NV=1 left the layer on"
}

check_layer "package" "$root/usr/share" "$root/usr/lib/$triple"
o="$work/out.txt"
isolated "$root/usr/share" "$root/usr/lib/$triple" "$root/usr/bin/extmem" run -- vulkaninfo --summary >"$o" 2>&1 ||
    { cat "$o"; fail "packaged extmem run"; }
listed_once "$o" "packaged extmem run"
has_nv "$o" "packaged extmem run"
passes "$o" "packaged extmem run --validate -- nv_client" \
    isolated "$root/usr/share:/usr/share" "$root/usr/lib/$triple" "$root/usr/bin/extmem" run --validate -- "$work/nv_client" --export --require-global

# The packaged extmem's own instances name the installed layer (as a `cargo install`ed one does).
isolated "$root/usr/share" "$root/usr/lib/$triple" "$root/usr/bin/extmem" caps >"$o" 2>&1 || { cat "$o"; fail "packaged extmem caps"; }
grep -q 'opaque-win32 .*export import' "$o" || { cat "$o"; fail "packaged extmem caps: no NV view through the installed layer"; }

dpkg --root="$root" --purge extmem extmem-vulkan-layer >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
left="$(find "$root" -mindepth 1 -not -path "$root/var" -not -path "$root/var/lib" -not -path "$root/var/lib/dpkg*")"
[ -z "$left" ] || fail "left after dpkg --purge: $left"

# The same layout under a prefix, by scripts/install.sh (absolute library path, no linker help).
prefix="$work/prefix"
bash scripts/install.sh --prefix "$prefix" --profile release --no-build >/dev/null
if ! grep -q '^build-debs: NOTE' "$work/build-debs.log"; then
    [ -s "$prefix/share/man/man1/extmem.1" ] && [ -s "$prefix/share/bash-completion/completions/extmem" ] ||
        fail "install.sh installed no man page or completions"
fi
check_layer "install.sh" "$prefix/share" ""
bash scripts/install.sh --uninstall --prefix "$prefix" >/dev/null
left="$(find "$prefix" -type f)"
[ -z "$left" ] || fail "left after install.sh --uninstall: $left"
echo "install test: passed (packages $(basename "$layer_deb") and $(basename "$deb"): lintian clean, installed, layer listed once, vulkaninfo, extmem run and the C client through it, purged clean; install.sh likewise)"
