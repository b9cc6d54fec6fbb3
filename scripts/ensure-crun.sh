#!/usr/bin/env bash
# Makes sure the OCI engine can run crun (CODEBOX_SANDBOX_RUNTIME=crun; the suite runs on
# it too): Debian's `crun` package, and a cgroup layout crun 1.8 accepts. On a hybrid host
# (v1 controllers, the v2 hierarchy mounted beside them) crun refuses to start while the
# v2 hierarchy holds any controller; each such controller (hugetlb, say, which no v1
# hierarchy claimed) is mounted as a v1 hierarchy of its own, where runc and Docker find
# it as they find the others. Idempotent; as a normal user it only says what is missing.
set -euo pipefail

unified=/sys/fs/cgroup/unified/cgroup.controllers
held() { [ -r "$unified" ] && tr ' ' '\n' < "$unified" | grep -v '^$' || true; }

if command -v crun >/dev/null 2>&1 && [ -z "$(held)" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-crun: crun is missing or the cgroup v2 hierarchy holds controllers ($(held | tr '\n' ' ')); as root: apt-get install crun, and mount those controllers as v1 hierarchies" >&2
  exit 1
fi
if ! command -v crun >/dev/null 2>&1; then
  echo "ensure-crun: installing crun ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends crun >/dev/null
fi
for controller in $(held); do
  mkdir -p "/sys/fs/cgroup/$controller"
  mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
  echo "ensure-crun: the $controller controller mounted as a v1 hierarchy"
done
if [ -n "$(held)" ]; then
  echo "ensure-crun: the cgroup v2 hierarchy still holds $(held | tr '\n' ' ')" >&2
  exit 1
fi
