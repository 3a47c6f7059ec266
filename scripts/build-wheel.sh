#!/usr/bin/env bash
# Builds the Python module's wheel into target/wheels/ as published: one abi3 wheel (CPython
# 3.8+), release profile, stripped, linked against glibc 2.28 at most through zig
# (manylinux_2_28, which Debian 12's own linker cannot target), and checked by auditwheel.
#
#   bash scripts/build-wheel.sh
#
# maturin, ziglang and auditwheel come from PyPI into a virtual environment of their own
# (.venv-wheel), once.
set -euo pipefail
cd "$(dirname "$0")/.."
maturin_version=1.16.0 zig_version=0.15.2 auditwheel_version=6.8.2
venv=.venv-wheel
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
if ! "$venv/bin/maturin" --version 2>/dev/null | grep -qF "$maturin_version"; then
    echo "build-wheel: installing maturin $maturin_version, ziglang $zig_version and auditwheel $auditwheel_version into $venv"
    "$venv/bin/pip" install -q "maturin==$maturin_version" "ziglang==$zig_version" "auditwheel==$auditwheel_version"
fi
rm -rf target/wheels
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/maturin" build --release --strip --locked --zig --compatibility manylinux_2_28 --out target/wheels
wheel="$(ls target/wheels/extmem-*.whl)"
report="$("$venv/bin/auditwheel" show "$wheel")"
echo "$report"
# (auditwheel wraps its lines: read the report as one line.)
grep -qE 'is consistent with the following platform tag: "manylinux_2_(2[0-8]|1[0-9]|[5-9])_x86_64"' <<<"$(tr -s '\n ' '  ' <<<"$report")" ||
    { echo "build-wheel: auditwheel does not accept $wheel as manylinux_2_28 or older" >&2; exit 1; }
case "$wheel" in *manylinux_2_28*) ;; *) echo "build-wheel: $wheel is not tagged manylinux_2_28" >&2; exit 1 ;; esac
# Stripped (no symbol table or debug information in the compiled module), with its license
# texts and type stubs.
so="$(mktemp)"
trap 'rm -f "$so"' EXIT
unzip -p "$wheel" 'extmem/_extmem*.so' >"$so"
! grep -qE '\.(symtab|debug_info) ' <<<"$(readelf -SW "$so")" || { echo "build-wheel: the module in $wheel is not stripped" >&2; exit 1; }
listing="$(unzip -Z1 "$wheel")"
for f in extmem/__init__.py extmem/_extmem.pyi extmem/py.typed 'dist-info/licenses/LICENSE-MIT' 'dist-info/licenses/LICENSE-APACHE'; do
    grep -qF "$f" <<<"$listing" || { echo "build-wheel: $wheel lacks $f" >&2; exit 1; }
done
echo "build-wheel: $wheel ($(du -k "$wheel" | cut -f1) KiB; module stripped, $(du -k "$so" | cut -f1) KiB; licenses and type stubs present)"
