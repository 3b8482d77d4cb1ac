#!/usr/bin/env bash
# Runs every unit-test binary given and prints the total "N passed, N failed".
set -u
passed=0 failed=0 status=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	last=$(printf '%s\n' "$out" | tail -n 1)
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
	fi
	[ $rc -eq 0 ] || { status=1; printf '%s\n' "$out" | sed "s|^|$(basename "$t"): |"; }
done
echo "unit: $passed passed, $failed failed"
exit $status
