#!/usr/bin/env bash
# Builds the sandbox runner image offline, in two layers:
#   1. the base: mmdebstrap makes a bookworm root filesystem of Debian packages from the
#      host's own apt mirror and `docker import` loads it (about 2.5 minutes; done once,
#      and again when the package list or its exclusions change);
#   2. the sandbox agent (crate `agent`, a static binary) copied in as
#      /usr/local/bin/codebox-agent, labelled with its protocol and checksum (seconds;
#      redone whenever the agent changes).
# No container registry is needed (worker/runner/Dockerfile is the same image for hosts
# that have one).
#
# Usage: build-image.sh [--force] [--keep]
#   --force  rebuild the base too, even if present (replaces the tags)
#   --keep   keep build/runner-rootfs.tar afterwards
# Environment:
#   CODEBOX_RUNNER_IMAGE   image name (default codebox-runner:latest; the base is
#                          <name>-base:latest)
#   CODEBOX_DEBIAN_MIRROR  Debian mirror URL (default: the host's apt mirror)
set -euo pipefail

image="${CODEBOX_RUNNER_IMAGE:-codebox-runner:latest}"
suite=bookworm
force=0
keep=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --keep) keep=1 ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-image: unknown argument '$arg' (use --force, --keep)" >&2
      exit 2
      ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/../.." && pwd)"

base="${image%:*}-base:latest"

# --- What goes in: the essential set (dash, coreutils, tar, perl-base, bash ... no apt)
# plus the interpreters and compilers of core/src/languages.rs. clang-14 uses gcc-12's
# libstdc++ headers; TypeScript compiles with Debian's tsc and runs on node; Kotlin and
# Java share the JDK; C# is Mono's mcs. Then Judge0's languages Debian packages: NASM
# (linked by binutils' ld), SBCL, GDC, Elixir on Erlang, GFortran, OCaml, Octave (its CLI
# comes with the Qt libraries of its GUI), Free Pascal, GNU Prolog, GnuCOBOL, Objective-C
# (gobjc with GNUstep's Foundation), R, Scala, SQLite, Clojure and Groovy on the JDK.
packages=python3,gcc,g++,libc6-dev,libstdc++-12-dev,clang
packages+=,nodejs,node-typescript,golang-go,rustc,default-jdk-headless,kotlin
packages+=,mono-mcs,ruby,php-cli,lua5.4,ghc
packages+=,nasm,sbcl,gdc,elixir,erlang-nox,gfortran,ocaml-nox,octave,fp-compiler,gprolog
packages+=,gnucobol3,gobjc,libgnustep-base-dev,gnustep-make,r-base-core,scala,sqlite3
packages+=,clojure,groovy
# The base is rebuilt when this list or the exclusions below change (a label records it).
packages_sum="$(printf '%s\n' "$packages" "$(sed -n '/^mmdebstrap \\$/,/^  "\$suite"/p' "$0")" \
  "$(cat "$here/node-globals.d.ts")" | sha256sum | cut -d' ' -f1)"
protocol="$(sed -n 's/^pub const PROTOCOL: &str = "\(.*\)";/\1/p' "$top/agent/src/lib.rs")"

# --- The agent: a static binary, so it runs on any libc the image has.
target="$(rustc -vV | sed -n 's/^host: //p')"
echo "build-image: building the sandbox agent ($target, static) ..."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
  -p codebox-agent --bin codebox-agent --target "$target" \
  --manifest-path "$top/Cargo.toml"
agent="${CARGO_TARGET_DIR:-$top/target}/$target/release/codebox-agent"
agent_sum="$(sha256sum "$agent" | cut -d' ' -f1)"

label() { docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }
base_current() { [ "$(label "$1" codebox.packages.sha256)" = "$packages_sum" ]; }
present() {
  base_current "$image" &&
    [ "$(label "$image" codebox.agent.sha256)" = "$agent_sum" ] &&
    [ "$(label "$image" codebox.agent.protocol)" = "$protocol" ]
}
if [ "$force" = 0 ] && present; then
  echo "build-image: $image is present with this agent (use --force to rebuild)"
  exit 0
fi

# One build at a time (they share build/): a second run waits, then finds the image.
mkdir -p "$top/build"
exec 9>"$top/build/.runner-image.lock"
if ! flock -n 9; then
  echo "build-image: another build is running; waiting for it ..."
  flock 9
  if [ "$force" = 0 ] && present; then
    echo "build-image: $image is present (use --force to rebuild)"
    exit 0
  fi
fi

add_agent() {
  local cid
  cid="$(docker create "$base" /usr/local/bin/codebox-agent)"
  docker cp "$agent" "$cid:/usr/local/bin/codebox-agent" >/dev/null
  docker commit \
    --change "LABEL codebox.agent.protocol=$protocol codebox.agent.sha256=$agent_sum" \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --message "codebox sandbox agent $agent_sum" \
    "$cid" "$image" >/dev/null
  docker rm "$cid" >/dev/null
  size="$(docker image inspect --format '{{.Size}}' "$image")"
  echo "build-image: $image has the agent ($agent_sum), $((size / 1000000)) MB"
}

if [ "$force" = 0 ] && base_current "$base"; then
  add_agent
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-image: mmdebstrap is missing; install it with 'sudo apt-get install mmdebstrap'" >&2
    exit 1
  fi
  echo "build-image: installing mmdebstrap ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

# --- Which mirror: the host's own Debian entries (one-line sources.list and deb822
# .sources), so the build needs nothing but the mirror apt already uses here. Prints
# "URI SUITE" for every enabled `deb` entry.
host_sources() {
  local files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk '
    function flush() {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no[ \t]*$/) {
        n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
        for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
          if (u[i] != "" && s[j] != "") print u[i], s[j]
      }
      types = ""; uris = ""; suites = ""; enabled = ""
    }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]*#/) next
      line = $0; key = tolower(line); sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line)
      if (key == "types") types = line
      else if (key == "uris") uris = line
      else if (key == "suites") suites = line
      else if (key == "enabled") enabled = tolower(line)
      next
    }
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if (i + 1 <= NF) print $i, $(i + 1)
    }
    END { flush() }
  ' "${files[@]}"
}

codename='(buster|bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)'
pairs="$(host_sources || true)"
main_uri="${CODEBOX_DEBIAN_MIRROR:-}"
if [ -z "$main_uri" ]; then
  main_uri="$(awk -v re="^${codename}$" '$2 ~ re { print $1; exit }' <<<"$pairs")"
fi
main_uri="${main_uri:-http://deb.debian.org/debian}"
main_uri="${main_uri%/}"
security_uri="$(awk -v re="^${codename}(-security|/updates)$" '$2 ~ re { print $1; exit }' <<<"$pairs")"
security_uri="${security_uri%/}"
has_updates="$(awk -v re="^${codename}-updates$" '$2 ~ re { print "yes"; exit }' <<<"$pairs")"

sources="$top/build/runner-sources.list"
{
  echo "deb $main_uri $suite main"
  # Point releases and security fixes too, when the host's apt has them.
  [ "$has_updates" = yes ] && echo "deb $main_uri $suite-updates main"
  [ -n "$security_uri" ] && echo "deb $security_uri $suite-security main"
  true
} >"$sources"


tarball="$top/build/runner-rootfs.tar"
cleanup() { rm -f "$sources"; [ "$keep" = 1 ] || rm -f "$tarball"; }
trap cleanup EXIT

started=$(date +%s)
echo "build-image: building $image ($suite from $(tr '\n' ';' <"$sources")) ..."
# Merged /usr set up by mmdebstrap's own hook rather than the usrmerge package, which
# would pull in perl (~55 MB) for nothing.
merged_usr=()
if [ -d /usr/share/mmdebstrap/hooks/merged-usr ]; then
  merged_usr=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
fi

# Documentation, manuals, translations and apt's state are dropped; copyright files stay.
# Files no compile of a task needs are dropped too (about 660 MB, to keep the image under
# 2.5 GB): gcc's LTO dump tool (32 MB; -flto itself still works), libclang's C API
# library (30 MB; the clang driver links libclang-cpp), the Go toolchain's own compiled
# packages (cmd/, 140 MB) and its tests, the JDK's jmods (75 MB; only jlink reads them),
# Kotlin's second copy of its compiler for Gradle (94 MB), and GHC's static library of
# the GHC API and its GHCi objects (280 MB; programs link base & co., and the dynamic ghc
# loads shared libraries, not .o files). Do not delete the root's /tmp in a hook: mmdebstrap keeps
# its apt configuration there until its own clean-up. The JDK's scripts register their
# manual pages as alternatives, which fails without /usr/share/man/man1.
# shellcheck disable=SC2016 # the hooks are expanded by mmdebstrap, with $1 = the root
mmdebstrap \
  --variant=essential \
  "${merged_usr[@]}" \
  --format=tar \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/bug/*' \
  --dpkgopt='path-exclude=/usr/bin/*lto-dump*' \
  --dpkgopt='path-exclude=/usr/lib/*/libclang-14.so*' \
  --dpkgopt='path-exclude=/usr/lib/go-*/pkg/*/cmd/*' \
  --dpkgopt='path-exclude=/usr/share/go-*/src/*_test.go' \
  --dpkgopt='path-exclude=/usr/share/go-*/src/*/testdata/*' \
  --dpkgopt='path-exclude=/usr/share/go-*/test/*' \
  --dpkgopt='path-exclude=/usr/lib/jvm/*/jmods/*' \
  --dpkgopt='path-exclude=/usr/share/java/kotlin-compiler-embeddable*' \
  --dpkgopt='path-exclude=/usr/lib/ghc/ghc-9.*/libHSghc-9.*.a' \
  --dpkgopt='path-exclude=/usr/lib/ghc/Cabal-*/libHSCabal-*.a' \
  --dpkgopt='path-exclude=/usr/lib/ghc/*/HS*.o' \
  --setup-hook='mkdir -p "$1"/usr/share/man/man1' \
  --customize-hook='mkdir -p "$1"/usr/local/share/codebox' \
  --customize-hook="copy-in $here/node-globals.d.ts /usr/local/share/codebox" \
  --customize-hook='rm -rf "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old "$1"/var/log/*' \
  "$suite" "$tarball" "$sources"
built=$(date +%s)

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /tmp' \
  --change 'USER 65534:65534' \
  --change "LABEL org.opencontainers.image.title=codebox-runner codebox.packages.sha256=$packages_sum" \
  --message "codebox runner: $suite, mmdebstrap" \
  "$tarball" "$base" >/dev/null
done_at=$(date +%s)

size="$(docker image inspect --format '{{.Size}}' "$base")"
echo "build-image: $base built in $((done_at - started)) s (mmdebstrap $((built - started)) s, import $((done_at - built)) s), $((size / 1000000)) MB"
add_agent
