#!/usr/bin/env bash
# Runs every cvisor benchmark against its baseline in one go (see README.md).
#   bench/run.sh BIN BUNDLE RAW_PINGPONG    (`make bench` passes these)
# rpc_bench, setns_floor and trace_cost are expected next to raw_pingpong (built by `make bench`).
set -euo pipefail
if [ $# -ne 3 ]; then
	echo "usage: bench/run.sh BIN BUNDLE RAW_PINGPONG" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "$1") bundle=$(realpath "$2") raw=$(realpath "$3")
rpc=$(dirname "$raw")/rpc_bench
floor=$(dirname "$raw")/setns_floor
for f in "$bin" "$raw" "$rpc" "$floor" "$(dirname "$raw")/trace_cost"; do
	[ -x "$f" ] || { echo "bench: $f is missing or not executable (run make bench)" >&2; exit 1; }
done
[ -f "$bundle/config.json" ] || { echo "bench: no config.json in $bundle (run make bundle)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, cgroups)" >&2; exit 1; }
exec /usr/bin/python3 "$here/bench.py" --bin "$bin" --bundle "$bundle" --raw "$raw" --rpc "$rpc" --floor "$floor" --out "$here"
