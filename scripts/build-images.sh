#!/usr/bin/env bash
# Builds the worker and runner images for a deployment's architecture and pushes them to
# its registry (`make images`): Docker's BuildKit builds each for linux/<arch> whatever
# the build machine is — the Rust stages run on the build machine's own platform and
# cross-compile (scripts/cross-build.sh), the packages are the target's — and each pushed
# image is pulled back and checked to be of that architecture, which the stack's hosts
# check again before they join (an image of another architecture fails every sandbox
# with "exec format error").
#
# Usage: build-images.sh ARCH REGISTRY TAG
#   ARCH      arm64 or x86_64 (the stack's Architecture)
#   REGISTRY  e.g. <account>.dkr.ecr.<region>.amazonaws.com (logged in already, its
#             repositories codebox-worker and codebox-runner made)
#   TAG       the images' tag
set -euo pipefail

if [ $# -ne 3 ] || [ -z "$2" ]; then
  sed -n '10,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
arch=$1 registry=${2%/} tag=$3
case "$arch" in
  arm64) platform=linux/arm64 docker_arch=arm64 ;;
  x86_64) platform=linux/amd64 docker_arch=amd64 ;;
  *)
    echo "build-images: ARCH must be arm64 or x86_64, not '$arch'" >&2
    exit 2
    ;;
esac
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# buildx where it is installed; else the engine's own BuildKit (Docker 18.09 to 22).
build() {
  local file=$1 ref=$2
  echo "build-images: $ref for $platform ..." >&2
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --platform "$platform" -f "$top/$file" -t "$ref" --push "$top"
  else
    DOCKER_BUILDKIT=1 docker build --platform "$platform" -f "$top/$file" -t "$ref" "$top"
    docker push "$ref"
  fi
}

# What the registry holds for the platform is of that architecture.
check() {
  local ref=$1 got
  docker pull --quiet --platform "$platform" "$ref" >/dev/null
  got=$(docker image inspect --format '{{.Architecture}}' "$ref")
  if [ "$got" != "$docker_arch" ]; then
    echo "build-images: $ref is $got, not $docker_arch" >&2
    exit 1
  fi
}

worker="$registry/codebox-worker:$tag"
runner="$registry/codebox-runner:$tag"
build worker/Dockerfile "$worker"
build worker/runner/Dockerfile "$runner"
check "$worker"
check "$runner"
echo "build-images: pushed, both $docker_arch:" >&2
echo "WorkerImageUri=$worker RunnerImageUri=$runner"
