#!/usr/bin/env bash
# Installs extmem under any prefix with the Debian packages' layout, for distributions without
# dpkg: PREFIX/bin/extmem, the layer in LIBDIR, one implicit manifest in
# PREFIX/share/vulkan/implicit_layer.d/ whose library_path is the library's absolute path, and
# (where the binary generates them: `extmem generate`) man pages in PREFIX/share/man/man1 and
# bash, zsh and fish completions in PREFIX/share.
#
#   bash scripts/install.sh [--prefix DIR] [--libdir DIR] [--destdir DIR] [--profile release|debug] [--no-build]
#   bash scripts/install.sh --uninstall [--prefix DIR] [--libdir DIR] [--destdir DIR]
#
# Defaults: --prefix /usr/local, --libdir PREFIX/lib, --profile release. --destdir stages the
# files under another root (the manifest still names PREFIX). The loader finds the manifest
# where PREFIX/share is in XDG_DATA_DIRS (default /usr/local/share:/usr/share).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local libdir="" destdir="" profile=release build=1 uninstall=0
while (($#)); do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --libdir) libdir="$2"; shift 2 ;;
        --destdir) destdir="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path, not '$prefix'" >&2; exit 2 ;; esac
libdir="${libdir:-$prefix/lib}"
case "$libdir" in /*) ;; *) echo "install.sh: --libdir must be an absolute path, not '$libdir'" >&2; exit 2 ;; esac
case "$profile" in release|debug) ;; *) echo "install.sh: --profile is release or debug, not '$profile'" >&2; exit 2 ;; esac

bin="$destdir$prefix/bin/extmem"
lib="$destdir$libdir/libVkLayer_extmem.so"
manifest="$destdir$prefix/share/vulkan/implicit_layer.d/VkLayer_extmem.json"
man1="$destdir$prefix/share/man/man1"
completions=("$destdir$prefix/share/bash-completion/completions/extmem" "$destdir$prefix/share/zsh/site-functions/_extmem"
    "$destdir$prefix/share/fish/vendor_completions.d/extmem.fish")

if ((uninstall)); then
    rm -f "$bin" "$lib" "$manifest" "$man1"/extmem.1 "$man1"/extmem-*.1 "${completions[@]}"
    echo "extmem: removed $bin, $lib, $manifest, the man pages and the completions"
    exit 0
fi

if ((build)); then
    flag=""
    [ "$profile" = release ] && flag=--release
    cargo build $flag --locked -p extmem-layer -p extmem-cli
fi
target="${CARGO_TARGET_DIR:-target}/$profile"
for f in extmem libVkLayer_extmem.so package/VkLayer_extmem.json; do
    [ -f "$target/$f" ] || { echo "install.sh: $target/$f is missing: build first (without --no-build)" >&2; exit 1; }
done
install -D -m 755 "$target/extmem" "$bin"
install -D -m 644 "$target/libVkLayer_extmem.so" "$lib"
mkdir -p "$(dirname "$manifest")"
# The installed manifest names the library by its absolute path: LIBDIR need not be one the
# dynamic linker searches.
python3 - "$target/package/VkLayer_extmem.json" "$libdir/libVkLayer_extmem.so" "$manifest" <<'EOF'
import json, sys
source, library, out = sys.argv[1:]
manifest = json.load(open(source))
manifest["layer"]["library_path"] = library
with open(out, "w") as f:
    json.dump(manifest, f, indent=4)
    f.write("\n")
EOF
chmod 644 "$manifest"
echo "extmem: installed $bin, $lib and $manifest"
if "$target/extmem" generate --help >/dev/null 2>&1; then
    generated="$(mktemp -d)"
    trap 'rm -rf "$generated"' EXIT
    "$target/extmem" generate man "$generated/man" && "$target/extmem" generate completions "$generated/completions"
    install -D -m 644 -t "$man1" "$generated"/man/*.1
    for pair in "extmem.bash:${completions[0]}" "_extmem:${completions[1]}" "extmem.fish:${completions[2]}"; do
        install -D -m 644 "$generated/completions/${pair%%:*}" "${pair#*:}"
    done
    echo "extmem: installed the man pages in $man1 and the bash, zsh and fish completions"
else
    echo "extmem: this extmem has no 'generate' subcommand: no man pages or completions installed"
fi
case ":${XDG_DATA_DIRS:-/usr/local/share:/usr/share}:" in
    *":$prefix/share:"*) ;;
    *) echo "extmem: add $prefix/share to XDG_DATA_DIRS so that the Vulkan loader finds the layer" ;;
esac
echo "extmem: the layer is off until EXTMEM_ENABLE_NV=1 (or run programs with 'extmem run')"
