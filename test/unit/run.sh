#!/usr/bin/env bash
# Runs every unit-test binary given and prints the total
# "unit: N passed, N failed, N skipped" as its last line. Every skipped test
# is shown with its reason (a skip is never a silent pass); a failing binary's
# whole output is shown. A binary that exits 77 (automake's "skip") without
# a summary line counts as one skipped test.
set -u
passed=0 failed=0 skipped=0 status=0
for t in "$@"; do
	name=$(basename "$t")
	out=$("$t" 2>&1); rc=$?
	last=$(printf '%s\n' "$out" | tail -n 1)
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
		passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
		skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf 'SKIP %s: the whole binary (exit 77): %s\n' "$name" \
			"$(printf '%s\n' "$out" | tr '\n' ' ' | sed 's/ *$//')"
		continue
	else
		failed=$((failed + 1))
	fi
	if [ $rc -ne 0 ]; then
		status=1
		# A non-zero exit with no failed test (a crash after the summary,
		# a leak report) still counts as a failure.
		[[ $last =~ \ 0\ failed ]] && failed=$((failed + 1))
		printf '%s\n' "$out" | sed "s|^|$name: |"
	else
		printf '%s\n' "$out" | grep '^SKIP ' || true
	fi
done
echo "unit: $passed passed, $failed failed, $skipped skipped"
exit $status
