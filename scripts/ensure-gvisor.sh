#!/usr/bin/env bash
# Makes gVisor's runsc a runtime of the Docker engine: installs Debian's `runsc` when
# missing, adds it to /etc/docker/daemon.json (keeping whatever else is there) and has
# dockerd reload its configuration (SIGHUP: no restart, running containers stay).
# Idempotent; as a normal user it only checks and says what is missing.
set -euo pipefail

# runsc's arguments: no network stack of its own (the sandbox has none anyway). Not
# `--oci-seccomp`: this runsc ignores a rule's errno (every refusal is EPERM), so the C
# library would not fall back from clone3 and no thread could start; the Sentry is the
# kernel the program sees, and it implements none of the families the policy refuses
# (its netlink is its own, not the host's).
ARGS='["--network=none"]'

has_runtime() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin).get("runsc") or {}; sys.exit(0 if r.get("runtimeArgs", r.get("Args")) == json.loads(sys.argv[1]) else 1)' "$ARGS"
}

if has_runtime; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-gvisor: the engine has no runsc runtime with the arguments $ARGS; as root: apt-get install runsc and register it in /etc/docker/daemon.json" >&2
  exit 1
fi
if ! command -v runsc >/dev/null 2>&1; then
  echo "ensure-gvisor: installing runsc ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi
mkdir -p /etc/docker
python3 - "$(command -v runsc)" "$ARGS" <<'PY'
import json, os, sys
path = "/etc/docker/daemon.json"
config = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        config = json.load(f)
config.setdefault("runtimes", {})["runsc"] = {"path": sys.argv[1], "runtimeArgs": json.loads(sys.argv[2])}
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
os.replace(path + ".tmp", path)
PY
if [ -d /run/systemd/system ] && systemctl is-active --quiet docker.service; then
  systemctl reload docker.service
else
  pkill -HUP -x dockerd
fi
for _ in $(seq 1 40); do
  if has_runtime; then
    echo "ensure-gvisor: runsc registered with the engine"
    exit 0
  fi
  sleep 0.25
done
echo "ensure-gvisor: dockerd did not pick up runsc; see /etc/docker/daemon.json" >&2
exit 1
