#!/bin/sh
# Builds the PVH test guest: build.sh OUT_DIR  ->  OUT_DIR/hello.elf
# Needs GNU as and ld (binutils).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
as --32 -o "$out/hello.o" "$here/hello.S"
ld -m elf_i386 -T "$here/hello.ld" --build-id=none -z noexecstack \
    $(ld --help | grep -q -- --no-warn-rwx-segments && echo --no-warn-rwx-segments) \
    -o "$out/hello.elf" "$out/hello.o"
