#!/usr/bin/env bash
# Installs extmem's C library from a build into a prefix, laid out as a C library is:
#
#   <libdir>/libextmem.so.<version>        the library (SONAME libextmem.so.<major>)
#   <libdir>/libextmem.so.<major>          -> libextmem.so.<version>   (runtime: libextmem0)
#   <libdir>/libextmem.so                  -> libextmem.so.<major>     (development, below)
#   <libdir>/libextmem.a
#   <prefix>/include/extmem.h
#   <libdir>/pkgconfig/extmem.pc
#   <libdir>/cmake/extmem/extmem-config.cmake, extmem-config-version.cmake
#
# A Debian split puts the first two lines in libextmem0 and the rest in libextmem-dev.
# scripts/install.sh --prefix calls this (or does the same); it builds nothing itself:
#
#   cargo build --release -p extmem-capi
#   crates/extmem-capi/install-dev.sh --prefix /usr/local [--libdir DIR] [--profile release]
#                                     [--target-dir DIR] [--destdir DIR]
#
# --destdir stages the files under DIR while they name --prefix (packaging).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix="" libdir="" profile="release" target_dir="${CARGO_TARGET_DIR:-$root/target}" destdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --libdir) libdir="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --target-dir) target_dir="$2"; shift 2 ;;
        --destdir) destdir="$2"; shift 2 ;;
        *) echo "install-dev.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
[ -n "$prefix" ] || { echo "install-dev.sh: --prefix is required" >&2; exit 2; }
case "$prefix" in /*) ;; *) echo "install-dev.sh: --prefix must be absolute" >&2; exit 2 ;; esac
libdir="${libdir:-$prefix/lib}"
includedir="$prefix/include"

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
major="${version%%.*}"
built="$target_dir/$profile"
for f in libextmem.so libextmem.a; do
    [ -f "$built/$f" ] || { echo "install-dev.sh: $built/$f is missing: cargo build --profile $profile -p extmem-capi" >&2; exit 1; }
done
soname="$(readelf -d "$built/libextmem.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
[ "$soname" = "libextmem.so.$major" ] || { echo "install-dev.sh: $built/libextmem.so has SONAME '$soname', not libextmem.so.$major (is it the Python module?)" >&2; exit 1; }

# What rustc links a Rust static library with (`cargo rustc -p extmem-capi --crate-type
# staticlib -- --print native-static-libs`); tests/install.rs links libextmem.a with it.
libs_private="-ldl -lgcc_s -lutil -lrt -lpthread -lm -lc"
cmake_libs_private="$(echo "$libs_private" | sed 's/-l//g; s/ /;/g')"

fill() {
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@INCLUDEDIR@|$includedir|g" \
        -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" -e "s|@LIBS_PRIVATE@|$libs_private|g" \
        -e "s|@CMAKE_LIBS_PRIVATE@|$cmake_libs_private|g" "$1"
}

d_lib="$destdir$libdir" d_inc="$destdir$includedir"
install -d "$d_lib" "$d_inc" "$d_lib/pkgconfig" "$d_lib/cmake/extmem"
install -m 0755 "$built/libextmem.so" "$d_lib/libextmem.so.$version"
ln -sfn "libextmem.so.$version" "$d_lib/libextmem.so.$major"
ln -sfn "libextmem.so.$major" "$d_lib/libextmem.so"
install -m 0644 "$built/libextmem.a" "$d_lib/libextmem.a"
install -m 0644 "$here/include/extmem.h" "$d_inc/extmem.h"
fill "$here/pkg/extmem.pc.in" > "$d_lib/pkgconfig/extmem.pc"
fill "$here/pkg/extmem-config.cmake.in" > "$d_lib/cmake/extmem/extmem-config.cmake"
fill "$here/pkg/extmem-config-version.cmake.in" > "$d_lib/cmake/extmem/extmem-config-version.cmake"
echo "installed extmem $version (C library) under $destdir$prefix"
