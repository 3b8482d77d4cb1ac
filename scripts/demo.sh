#!/usr/bin/env bash
# A step-by-step tour of cvisor:  scripts/demo.sh BIN BUNDLE
# Uses a private --root under /tmp and a unique container ID; exits non-zero
# (after cleaning up) if any step fails.
set -euo pipefail

bin=$(readlink -f "${1:?usage: demo.sh BIN BUNDLE}")
bundle=$(readlink -f "${2:?usage: demo.sh BIN BUNDLE}")
root=$(mktemp -d /tmp/cvisor-demo.XXXXXX)
id=demo-$$-$RANDOM
cv() { "$bin" --root "$root" "$@"; }

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || bold='' dim='' off=''
step() { printf '\n%s== %s%s\n' "$bold" "$1" "$off"; shift; printf '%s%s%s\n' "$dim" "$*" "$off"; }
show() { printf '$ cvisor %s\n' "$1"; }

cleanup() {
	status=$?
	if [ $status -ne 0 ]; then
		printf '\ndemo FAILED (exit %d) at: %s\n' "$status" "${BASH_COMMAND}" >&2
		[ -s "$root/container.out" ] && { echo "container output:" >&2; cat "$root/container.out" >&2; }
		[ -s "$root/$id/log" ] && { echo "sandbox log:" >&2; tail -n 20 "$root/$id/log" >&2; }
		if ! "$bin" --root "$root" delete --force "$id" >&2; then
			echo "could not delete sandbox $id; its state is kept in $root" >&2
			exit $status
		fi
	fi
	rm -rf "$root"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "1. create" "Binds the control socket, starts 'cvisor boot' (one process, one event loop per" \
	"sandbox) and returns once the root container's namespaces, cgroup and mounts exist."
show "create --bundle $bundle $id"
# The container's stdio goes to a file: create returns while the sandbox
# keeps running and would otherwise hold this terminal's pipes.
cv create --bundle "$bundle" "$id" </dev/null >"$root/container.out" 2>&1

step "2. state" "The OCI state: 'created' means the init is waiting to execve the workload."
show "state $id"
cv state "$id"
cv state "$id" | grep -q '"status": "created"'

step "3. start" "containerManager.StartRoot releases the init; it answers once execve succeeded."
show "start $id"
cv start "$id"
cv state "$id" | grep -q '"status": "running"'
echo "status: running"

step "4. exec" "ExecuteAsync runs a new process inside the container's namespaces and cgroup;" \
	"the CLI donates its stdout, then waits with WaitPID."
show "exec $id sh -c 'echo hello from \$(hostname)'"
out=$(cv exec "$id" sh -c 'echo hello from $(hostname)')
echo "$out"
[ "$out" = "hello from cvisor" ]

step "5. ps" "containerManager.Processes: every process of the container, PIDs in the sandbox's PID namespace."
show "ps $id"
cv ps "$id"

step "6. exit codes" "An exec'd process's exit status comes back through WaitPID and becomes the CLI's."
show "exec $id sh -c 'exit 7'"
set +e
cv exec "$id" sh -c 'exit 7'
code=$?
set -e
echo "exit code: $code"
[ "$code" -eq 7 ]

step "7. kill + wait" "SIGTERM goes to the container's init (its shell traps TERM and exits 0);" \
	"'wait' reports the root container's exit status."
show "kill $id TERM"
# Bounded: a container that ignores the signal must fail the demo, not hang it.
timeout 20 "$bin" --root "$root" wait "$id" >"$root/wait.out" 2>&1 &
waiter=$!
sleep 0.2
cv kill "$id" TERM
wait "$waiter" || { echo "wait failed or timed out:" >&2; cat "$root/wait.out" >&2; false; }
show "wait $id"
cat "$root/wait.out"
grep -q '"exitStatus":0' "$root/wait.out"

step "8. state" "The root container ended, so the sandbox process ended too."
for _ in $(seq 50); do
	cv state "$id" | grep -q '"status": "stopped"' && break
	sleep 0.1
done
show "state $id"
cv state "$id"
cv state "$id" | grep -q '"status": "stopped"'

step "9. delete" "Removes the cgroups and the sandbox's directory."
show "delete $id"
cv delete "$id"
if cv state "$id" >/dev/null 2>&1; then
	echo "state still answers after delete" >&2
	false
fi

printf '\n%sdemo finished%s\n' "$bold" "$off"
