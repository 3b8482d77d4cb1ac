#!/usr/bin/env bash
# Installs what cvisor needs to build, test and demo on Debian 12, only if
# something is missing (apt-get needs root). podman, containerd (with ctr)
# and runc are for the engine tests (test/integration/test_podman.py,
# test_containerd.py): the engines drive cvisor, runc is the reference.
# libdbus-1-dev is the systemd cgroup driver's bus client (its .a: the
# binary is static); dbus-daemon, python3-dbus and python3-gi run the fake
# systemd of test/integration/test_systemd_cgroup.py.
# criu: podman checks a CRIU binary's version before `podman container
# checkpoint` (test_checkpoint.py); cvisor never runs it.
set -eu
need=()
for p in build-essential pkg-config libev-dev libmsgpack-dev libseccomp-dev liblz4-dev \
	libjson-c-dev busybox-static python3 python3-msgpack python3-pytest iproute2 clang \
	podman containerd runc python3-lz4 \
	libdbus-1-dev dbus-daemon python3-dbus python3-gi criu; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
