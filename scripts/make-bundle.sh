#!/usr/bin/env bash
# Builds cvisor's built-in OCI bundle from busybox-static:
#   scripts/make-bundle.sh DIR   → DIR/rootfs and DIR/config.json
# Idempotent: re-running refreshes the applet links and rewrites config.json.
set -euo pipefail

dir=${1:?usage: make-bundle.sh DIR}
busybox=/bin/busybox
if [ ! -x "$busybox" ]; then
	echo "make-bundle.sh: $busybox is missing (apt-get install busybox-static)" >&2
	exit 1
fi
if ! applets=$("$busybox" --list 2>/dev/null) || [ -z "$applets" ]; then
	echo "make-bundle.sh: $busybox --list failed; is it busybox-static?" >&2
	exit 1
fi

rootfs=$dir/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,home/alice,usr/bin,usr/sbin,sbin,var,run}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

install -m 0755 "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
	[ -n "$applet" ] && [ "$applet" != busybox ] && ln -sfn busybox "$rootfs/bin/$applet"
done <<<"$applets"

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
alice:x:1000:1000:alice:/home/alice:/bin/sh
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
alice:x:1000:
GROUP
echo cvisor >"$rootfs/etc/hostname"
chown 1000:1000 "$rootfs/home/alice"

tmp=$(mktemp "$dir/config.json.XXXXXX")
cat >"$tmp" <<'CONFIG'
{
	"ociVersion": "1.0.2",
	"process": {
		"terminal": false,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
				"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
				"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"
			],
			"effective": [
				"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
				"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
				"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"
			],
			"permitted": [
				"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
				"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
				"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"
			]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": false
	},
	"hostname": "cvisor",
	"mounts": [
		{
			"destination": "/proc",
			"type": "proc",
			"source": "proc"
		},
		{
			"destination": "/dev",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
		},
		{
			"destination": "/dev/pts",
			"type": "devpts",
			"source": "devpts",
			"options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
		},
		{
			"destination": "/dev/shm",
			"type": "tmpfs",
			"source": "shm",
			"options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
		},
		{
			"destination": "/dev/mqueue",
			"type": "mqueue",
			"source": "mqueue",
			"options": ["nosuid", "noexec", "nodev"]
		},
		{
			"destination": "/sys",
			"type": "sysfs",
			"source": "sysfs",
			"options": ["nosuid", "noexec", "nodev", "ro"]
		},
		{
			"destination": "/tmp",
			"type": "tmpfs",
			"source": "tmpfs",
			"options": ["nosuid", "nodev", "mode=1777"]
		}
	],
	"linux": {
		"resources": {
			"memory": {
				"limit": 268435456
			},
			"pids": {
				"limit": 1024
			},
			"cpu": {
				"shares": 1024
			}
		},
		"namespaces": [
			{ "type": "pid" },
			{ "type": "ipc" },
			{ "type": "uts" },
			{ "type": "mount" },
			{ "type": "network" }
		],
		"maskedPaths": [
			"/proc/acpi",
			"/proc/asound",
			"/proc/kcore",
			"/proc/keys",
			"/proc/latency_stats",
			"/proc/timer_list",
			"/proc/timer_stats",
			"/proc/sched_debug",
			"/sys/firmware",
			"/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus",
			"/proc/fs",
			"/proc/irq",
			"/proc/sys",
			"/proc/sysrq-trigger"
		]
	}
}
CONFIG
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/config.json"
echo "bundle ready: $dir (rootfs with $(wc -l <<<"$applets") busybox applets)"
