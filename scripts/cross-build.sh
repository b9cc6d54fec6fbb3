#!/usr/bin/env bash
# Builds one binary of the workspace for a deployment's architecture, whatever Debian
# machine (or build container) this is: Debian's cross compiler links it, so an image's
# build stage runs on the build machine's own platform (`FROM --platform=$BUILDPLATFORM`)
# and no Rust compiles under emulation. Checks the result is of that architecture.
#
# Usage: cross-build.sh ARCH PACKAGE BINARY OUT [--static]
#   ARCH     arm64 or amd64 (Docker's names; x86_64 is taken for amd64); empty: this
#            machine's (a build without BuildKit sets no TARGETARCH)
#   --static links the C library in (the sandbox agent: it runs on any libc)
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
arch=${1:-$(dpkg --print-architecture)} package=$2 binary=$3 out=$4 static=${5:-}
case "$arch" in
  arm64 | aarch64) arch=arm64 triple=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu machine=b7 ;;
  amd64 | x86_64) arch=amd64 triple=x86_64-unknown-linux-gnu gnu=x86_64-linux-gnu machine=3e ;;
  *)
    echo "cross-build: ARCH must be arm64 or amd64, not '$arch'" >&2
    exit 2
    ;;
esac
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The cross compiler and C library, from Debian, where this machine is another arch.
if [ "$(dpkg --print-architecture)" != "$arch" ] && ! command -v "$gnu-gcc" >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "cross-build: $gnu-gcc is missing; as root: apt-get install gcc-${gnu//_/-} libc6-dev-$arch-cross" >&2
    exit 1
  fi
  echo "cross-build: installing Debian's cross compiler for $arch ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "gcc-${gnu//_/-}" "libc6-dev-$arch-cross" >/dev/null
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$triple"; then
  rustup target add "$triple" >&2
fi

# Cargo's linker, and the C compiler of crates that build C (ring), for the target only.
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
lower=${triple//-/_}
export "CARGO_TARGET_${upper}_LINKER=$gnu-gcc" "CC_${lower}=$gnu-gcc" "AR_${lower}=$gnu-ar"
flags=()
[ "$static" = --static ] && flags=(--config "target.$triple.rustflags=['-C','target-feature=+crt-static']")
cargo build --quiet --release --locked --manifest-path "$top/Cargo.toml" \
  -p "$package" --bin "$binary" --target "$triple" "${flags[@]}"
built="${CARGO_TARGET_DIR:-$top/target}/$triple/release/$binary"

# ELF's e_machine (bytes 18-19): 0xb7 aarch64, 0x3e x86-64.
got=$(od -An -tx1 -j18 -N1 "$built" | tr -d ' ')
if [ "$got" != "$machine" ]; then
  echo "cross-build: $built is not an $arch binary (ELF machine 0x$got)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$built" "$out"
echo "cross-build: $out ($arch${static:+, static})" >&2
