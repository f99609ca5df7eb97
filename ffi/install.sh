#!/usr/bin/env bash
# Builds libpdipam and installs the header, the static and shared libraries and two pkg-config
# files into a prefix:
#
#   ffi/install.sh --prefix /usr/local            # or --prefix "$HOME/.local", ...
#
#   PREFIX/include/pdipam.h
#   PREFIX/lib/libpdipam.a
#   PREFIX/lib/libpdipam.so.MAJOR.MINOR.0, libpdipam.so.MAJOR (the soname) -> it, libpdipam.so -> it
#   PREFIX/lib/pkgconfig/pdipam.pc          links the shared library: pkg-config --libs pdipam
#   PREFIX/lib/pkgconfig/pdipam-static.pc   links libpdipam.a: pkg-config --libs pdipam-static
#
# Options: --libdir DIR (default PREFIX/lib); --no-build (install what is already built); --debug
# (the debug build instead of the release build, for tests).
# DESTDIR is honoured as packagers expect (files go to DESTDIR/PREFIX/..., the .pc files name
# PREFIX). The build uses CARGO_TARGET_DIR when it is set, like any cargo command.
set -euo pipefail

prefix=""
libdir=""
build=1
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --libdir) libdir="${2:?--libdir needs a directory}"; shift 2 ;;
        --libdir=*) libdir="${1#--libdir=}"; shift ;;
        --no-build) build=0; shift ;;
        --debug) profile=debug; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix DIR is required (see --help)" >&2; exit 2; }
case "$prefix" in /*) ;; *) prefix="$(cd "$prefix" 2>/dev/null && pwd || echo "$PWD/$prefix")" ;; esac
libdir="${libdir:-$prefix/lib}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ "$build" -eq 1 ]; then
    if [ "$profile" = release ]; then
        cargo build --release --quiet -p libpdipam
    else
        cargo build --quiet -p libpdipam
    fi
fi
target="${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}"
release="$target/$profile"
for f in libpdipam.a libpdipam.so; do
    [ -f "$release/$f" ] || { echo "install.sh: $release/$f is missing: build it first" >&2; exit 1; }
done

abi() { sed -n "s/^pub const PDIPAM_ABI_VERSION_$1: u32 = \([0-9]*\);/\1/p" ffi/src/lib.rs; }
major="$(abi MAJOR)"
minor="$(abi MINOR)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' ffi/libpdipam/Cargo.toml | head -n 1)"
real="libpdipam.so.$major.$minor.0"

dest_inc="${DESTDIR:-}$prefix/include"
dest_lib="${DESTDIR:-}$libdir"
install -d "$dest_inc" "$dest_lib/pkgconfig"
install -m 0644 include/pdipam.h "$dest_inc/pdipam.h"
install -m 0644 "$release/libpdipam.a" "$dest_lib/libpdipam.a"
install -m 0755 "$release/libpdipam.so" "$dest_lib/$real"
ln -sf "$real" "$dest_lib/libpdipam.so.$major"
ln -sf "$real" "$dest_lib/libpdipam.so"

pc() {
    cat <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=$libdir

Name: $1
Description: Embeddable IP address manager for pod networking built on prefix delegation ($2)
Version: $version
Cflags: -I\${includedir}
$3
PC
}
pc pdipam "shared library" "Libs: -L\${libdir} -lpdipam
Libs.private: -lpthread -ldl -lm" >"$dest_lib/pkgconfig/pdipam.pc"
pc pdipam-static "static library" "Libs: \${libdir}/libpdipam.a -lpthread -ldl -lm" \
    >"$dest_lib/pkgconfig/pdipam-static.pc"
echo "installed pdipam $version (ABI $major.$minor) into ${DESTDIR:-}$prefix"
