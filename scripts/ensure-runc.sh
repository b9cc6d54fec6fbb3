#!/usr/bin/env bash
# Makes sure the runc engine's two host requirements are there: the `runc` binary (it
# comes with docker.io) and Docker's default seccomp profile in its JSON format (Debian's
# golang-github-containers-common ships it as /usr/share/containers/seccomp.json). As root
# it installs what is missing; otherwise it says in one line what to do and exits 1.
set -euo pipefail

profile=${CODEBOX_SECCOMP_PROFILE:-/usr/share/containers/seccomp.json}
missing=()
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -r "$profile" ] || missing+=(golang-github-containers-common)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-runc: missing ${missing[*]}; install with 'sudo apt-get install ${missing[*]}'" >&2
  exit 1
fi
echo "ensure-runc: installing ${missing[*]} ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -r "$profile" ] || { echo "ensure-runc: $profile is still missing" >&2; exit 1; }
