#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`. As root it installs docker.io (apt)
# when dockerd is missing and starts dockerd when it is not running; otherwise it says in
# one line what to do and exits 1. Idempotent: exits 0 at once when the engine answers.
set -euo pipefail

log=/tmp/codebox-dockerd.log
wait_s=60

answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

if answers; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  if ! is_root; then
    echo "ensure-docker: Docker is not installed; install it with 'sudo apt-get install docker.io' (or run this as root)" >&2
    exit 1
  fi
  echo "ensure-docker: installing docker.io ..."
  # Without a running systemd, keep the package's postinst from trying to start the
  # daemon through its init script (that can fail and fail the install); it is started
  # below. An existing policy-rc.d is left alone.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  if [ "$added_policy" = 1 ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  if answers; then
    exit 0
  fi
fi

if ! is_root; then
  echo "ensure-docker: the Docker daemon is not running; start it with 'sudo systemctl start docker' (or 'sudo dockerd &'), and make sure you may use /var/run/docker.sock (group docker)" >&2
  exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: dockerd is running but not answering yet; waiting ..."
elif [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
  echo "ensure-docker: starting docker.service ..."
  systemctl start docker.service || true
else
  echo "ensure-docker: starting dockerd (log: $log) ..."
  # Detached (own session, no terminal, stdin closed) so it outlives this script.
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 $((wait_s * 2))); do
  if answers; then
    exit 0
  fi
  sleep 0.5
done
echo "ensure-docker: the Docker daemon did not answer within ${wait_s} s; see $log (or 'journalctl -u docker')" >&2
exit 1
