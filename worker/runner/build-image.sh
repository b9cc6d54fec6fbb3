#!/usr/bin/env bash
# Builds the runner image offline from Debian packages (mmdebstrap → docker import):
# no registry is needed. Usage: build-image.sh [--force]
# Image name: $CODEBOX_RUNNER_IMAGE (default codebox-runner:latest).
set -euo pipefail

image="${CODEBOX_RUNNER_IMAGE:-codebox-runner:latest}"
force=0
[ "${1:-}" = "--force" ] && force=1
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "runner image $image is present"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-image: mmdebstrap is missing; install it with 'sudo apt-get install mmdebstrap'" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

# The same mirror the host uses (first URIs/deb line), so this works wherever apt does.
mirror="$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

# Packages: the interpreters and compilers of languages.rs, nothing else.
packages="python3-minimal,libpython3-stdlib,gcc,g++,libc6-dev,clang,ca-certificates"

mkdir -p "$top/build"
tarball="$top/build/runner-rootfs.tar"
started=$(date +%s)
echo "building $image from $mirror (bookworm) ..."
mmdebstrap --variant=essential --mode=root --format=tar \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
  --customize-hook='mkdir -p "$1"/etc/codebox && printf "%s\n" "codebox runner" > "$1"/etc/codebox/role' \
  bookworm "$tarball" "$mirror" >/dev/null

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV HOME=/tmp' \
  --change 'WORKDIR /tmp' \
  --change 'USER 65534:65534' \
  --change 'LABEL org.opencontainers.image.title=codebox-runner' \
  "$tarball" "$image" >/dev/null
rm -f "$tarball"
echo "runner image $image built in $(( $(date +%s) - started )) s"
