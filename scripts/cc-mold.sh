#!/bin/sh
# Linker for the Linux test and fuzz builds of scripts/test.sh: the system C compiler
# driving mold, which links the many test binaries several times faster than GNU ld.
# Selected through CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER, which (unlike RUSTFLAGS)
# also reaches doctests and cargo-fuzz builds; the Windows build keeps mingw's linker.
exec cc -fuse-ld=mold "$@"
