#!/usr/bin/env bash
# The OCI runtime-tools validation suite against cvisor, crun and runc
# (`make oci-validation`; docs/oci-validation.md has the results and the
# limits of this host).
#
# What it does:
#   1. installs what is missing with apt-get: golang-go, Debian's
#      golang-github-opencontainers-runtime-tools-dev and the Go libraries the
#      suite imports, as Debian packages (no Go module proxy is reachable here);
#   2. finds the suite's sources: validation/*/ (one main package per test),
#      validation/util and cmd/runtimetest, in $RUNTIME_TOOLS_SRC (a checkout
#      of opencontainers/runtime-tools) or in the Debian package. Debian 12's
#      package (0.9.0+git20220423) ships only the library directories (api,
#      cgroups, error, filepath, generate, specerror, validate), not the suite,
#      and github.com/mndrix/tap-go, which the suite imports, is not packaged:
#      without a checkout the script says so and stops, skipped (exit 0,
#      "oci-validation: SKIPPED: ...");
#   3. builds runtimetest and one binary per test into build/oci-validation/
#      (module mode with -mod=vendor when the checkout has vendor/, else GOPATH
#      mode over the checkout and /usr/share/gocode);
#   4. packs the busybox bundle's rootfs (make bundle) as
#      rootfs-$GOARCH.tar.gz, which the suite untars into each bundle it makes;
#   5. runs every test against each runtime, RUNTIME=<a wrapper that adds a
#      private --root>, TMPDIR private too, with a per-test timeout; prints one
#      line per test and runtime and the summary "cvisor N/T, crun N/T, runc N/T".
#
# Environment: RUNTIME_TOOLS_SRC (the checkout), RUNTIMES (default
# "cvisor crun runc"), TEST_TIMEOUT (seconds per test binary, default 120),
# TESTS (space-separated test names, default all), CVISOR_BIN, CRUN_BIN,
# RUNC_BIN, OUT (default build/oci-validation).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$here/build/oci-validation}
RUNTIMES=${RUNTIMES:-cvisor crun runc}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
CVISOR_BIN=${CVISOR_BIN:-$here/build/cvisor}
CRUN_BIN=${CRUN_BIN:-$(command -v crun || true)}
RUNC_BIN=${RUNC_BIN:-$(command -v runc || true)}
BUNDLE_ROOTFS=$here/test/fixtures/busybox/rootfs
debian_src=/usr/share/gocode/src/github.com/opencontainers/runtime-tools

say() { echo "oci-validation: $*"; }
skip_all() { say "SKIPPED: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip_all "not root (uid $(id -u)): the runtimes need namespaces, cgroups and mounts"

# --- 1. dependencies (Debian packages only) ----------------------------------
godeps=(golang-go golang-github-opencontainers-runtime-tools-dev
	golang-github-opencontainers-specs-dev golang-github-google-uuid-dev
	golang-github-hashicorp-go-multierror-dev golang-gocapability-dev
	golang-github-sirupsen-logrus-dev golang-github-urfave-cli-dev
	golang-github-mrunalp-fileutils-dev golang-github-opencontainers-selinux-dev
	golang-github-xeipuuv-gojsonschema-dev golang-github-blang-semver-dev)
need=()
for p in "${godeps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		skip_all "apt-get install ${need[*]} failed"
fi
command -v go >/dev/null || skip_all "no go binary after installing golang-go"

# --- 2. the suite's sources ------------------------------------------------------
has_suite() { [ -d "$1/validation/util" ] && [ -d "$1/cmd/runtimetest" ]; }
src=""
if [ -n "${RUNTIME_TOOLS_SRC:-}" ]; then
	has_suite "$RUNTIME_TOOLS_SRC" ||
		skip_all "RUNTIME_TOOLS_SRC=$RUNTIME_TOOLS_SRC has no validation/util or cmd/runtimetest"
	src=$(cd "$RUNTIME_TOOLS_SRC" && pwd)
elif has_suite "$debian_src"; then
	src=$debian_src
else
	ver=$(dpkg-query -W -f='${Version}' golang-github-opencontainers-runtime-tools-dev 2>/dev/null)
	skip_all "the validation suite's sources are not on this host: Debian's" \
		"golang-github-opencontainers-runtime-tools-dev $ver ships only" \
		"$(cd "$debian_src" && ls -d */ | tr -d / | tr '\n' ' ')(no validation/, no cmd/runtimetest)," \
		"the suite's TAP library github.com/mndrix/tap-go is not packaged, and no Go module proxy" \
		"is reachable here. Set RUNTIME_TOOLS_SRC to a runtime-tools checkout (with vendor/) to run it."
fi
say "suite sources: $src"

# --- 3. build ---------------------------------------------------------------------
mkdir -p "$OUT/tests"
gowork=$(mktemp -d /tmp/ociv-go.XXXXXX)
cleanup_go() { rm -rf "$gowork"; }
trap cleanup_go EXIT
export GOCACHE=$gowork/cache GOTOOLCHAIN=local GOPROXY=off GOFLAGS=
if [ -f "$src/vendor/modules.txt" ] && [ -f "$src/go.mod" ]; then
	mode="modules, -mod=vendor"
	export GO111MODULE=on GOFLAGS=-mod=vendor GOPATH=$gowork/gopath
	builddir=$src
else
	mode="GOPATH ($src + /usr/share/gocode)"
	export GO111MODULE=off GOPATH=$gowork/gopath:/usr/share/gocode
	mkdir -p "$gowork/gopath/src/github.com/opencontainers"
	cp -a "$src" "$gowork/gopath/src/github.com/opencontainers/runtime-tools"
	builddir=$gowork/gopath/src/github.com/opencontainers/runtime-tools
fi
say "building with $(go version | cut -d' ' -f3) in $mode"
if ! (cd "$builddir" && go build -o "$OUT/runtimetest" ./cmd/runtimetest) >"$OUT/build-runtimetest.log" 2>&1; then
	say "FAILED to build cmd/runtimetest:"; sed -n 1,20p "$OUT/build-runtimetest.log"; exit 1
fi
tests=()
for d in "$builddir"/validation/*/; do
	name=$(basename "$d")
	[ "$name" = util ] && continue
	grep -qs '^package main' "$d"/*.go || continue
	if [ -n "${TESTS:-}" ] && ! [[ " $TESTS " == *" $name "* ]]; then continue; fi
	if (cd "$builddir" && go build -o "$OUT/tests/$name" "./validation/$name") >"$OUT/build-$name.log" 2>&1; then
		tests+=("$name")
	else
		say "FAILED to build validation/$name: $(head -1 "$OUT/build-$name.log")"
		tests+=("$name")   # counted: a test that does not build cannot pass
		rm -f "$OUT/tests/$name"
	fi
done
total=${#tests[@]}
[ "$total" -gt 0 ] || { say "no test found under $src/validation"; exit 1; }
say "$total test binaries in $OUT/tests"

# --- 4. rootfs tarball ---------------------------------------------------------
[ -x "$BUNDLE_ROOTFS/bin/busybox" ] || skip_all "no busybox rootfs at $BUNDLE_ROOTFS (run make bundle)"
arch=$(go env GOARCH)
tar -C "$BUNDLE_ROOTFS" -czf "$OUT/rootfs-$arch.tar.gz" .

# --- 5. run ---------------------------------------------------------------------------
hugetlb_bound_to_v1() { awk '$3 == "cgroup" && $4 ~ /(^|,)hugetlb(,|$)/ {f=1} END {exit !f}' /proc/self/mounts; }
# crun 1.8 refuses a hybrid host whose v2 hierarchy could take hugetlb
# ("cgroups in hybrid mode not supported"); binding hugetlb to a v1 hierarchy
# satisfies it (bench/bench.py prepare_crun_hybrid). The mount stays: a v1
# hierarchy with cgroups in it outlives its mount, and unmounting would leave
# a hierarchy in /proc/<pid>/cgroup with no mount point.
prepare_crun_hybrid() {
	[ -d /sys/fs/cgroup/unified ] || return 0
	hugetlb_bound_to_v1 && return 0
	mkdir -p /sys/fs/cgroup/hugetlb
	if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
		say "mounted the hugetlb cgroup v1 hierarchy at /sys/fs/cgroup/hugetlb so that crun 1.8 accepts this hybrid-cgroup host (it stays mounted)"
	else
		say "could not mount the hugetlb v1 hierarchy for crun"
	fi
}

# TAP counts of one output: "ok not_ok skip plan"
tap_counts() {
	awk '/^ok /{ if (/# *[Ss][Kk][Ii][Pp]/) s++; else o++ }
	     /^not ok /{ if (/# *[Tt][Oo][Dd][Oo]/) t++; else n++ }
	     /^1\.\.[0-9]+/{ split($1, a, "."); p = a[3] }
	     END { printf "%d %d %d %s\n", o, n, s, (p == "" ? "-" : p) }' "$1"
}

declare -A passed
results=$OUT/results.tsv
: >"$results"
for rt in $RUNTIMES; do
	case $rt in
	cvisor) exe=$CVISOR_BIN ;;
	crun) exe=$CRUN_BIN ;;
	runc) exe=$RUNC_BIN ;;
	*) exe=$(command -v "$rt" || true) ;;
	esac
	if [ -z "$exe" ] || ! [ -x "$exe" ]; then
		say "$rt: not installed, skipped"; continue
	fi
	[ "$rt" = crun ] && prepare_crun_hybrid
	ver=$("$exe" --version 2>/dev/null | head -1)
	say "$rt: $exe ($ver)"
	tmp=$(mktemp -d "/tmp/ociv-$rt.XXXXXX")
	mkdir -p "$tmp/root" "$tmp/bundles" "$tmp/work" "$tmp/logs"
	# The suite calls $RUNTIME <verb> ...: the wrapper puts every runtime
	# under its own --root.
	printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$exe" "$tmp/root" >"$tmp/$rt"
	chmod +x "$tmp/$rt"
	# The suite reads runtimetest and rootfs-<arch>.tar.gz from its cwd.
	cp "$OUT/runtimetest" "$OUT/rootfs-$arch.tar.gz" "$tmp/work/"
	passed[$rt]=0
	for t in "${tests[@]}"; do
		log=$tmp/logs/$t.log
		if ! [ -x "$OUT/tests/$t" ]; then
			status=fail; counts="0 0 0 -"; why="does not build"
		else
			(cd "$tmp/work" && RUNTIME=$tmp/$rt TMPDIR=$tmp/bundles \
				timeout -k 5 "$TEST_TIMEOUT" "$OUT/tests/$t") >"$log" 2>&1 </dev/null
			rc=$?
			read -r ok notok skip plan < <(tap_counts "$log")
			counts="$ok $notok $skip $plan"
			why=""
			# A run that stops short of its plan has not passed.
			short=0
			[ "$plan" != - ] && [ $((ok + notok + skip)) -lt "$plan" ] && short=1
			if [ $rc = 124 ] || [ $rc = 137 ]; then
				status=timeout; why="timed out after ${TEST_TIMEOUT}s"
			elif [ $rc = 0 ] && [ $short = 0 ] && [ "$notok" = 0 ] && [ "$ok" -gt 0 ]; then
				status=pass
			elif [ $rc = 0 ] && [ $short = 0 ] && [ "$notok" = 0 ] && [ "$skip" -gt 0 ]; then
				status=skip; why=$(grep -m1 -i '# *skip' "$log")
			else
				status=fail
				why=$(grep -m1 '^not ok' "$log" || true)
				[ -n "$why" ] || why=$(grep -m1 -v -e '^\s*$' -e '^1\.\.' -e '^ok ' "$log" || echo "exit $rc, no output")
				[ $short = 1 ] && why="$why; stopped after $((ok + notok + skip)) of $plan"
				why="$why (exit $rc)"
			fi
		fi
		[ $status = pass ] && passed[$rt]=$((passed[$rt] + 1))
		read -r ok notok skip plan <<<"$counts"
		printf '%-7s %-40s %-7s ok=%s not_ok=%s skip=%s plan=%s %s\n' \
			"$rt" "$t" "$status" "$ok" "$notok" "$skip" "$plan" "${why:0:160}"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rt" "$t" "$status" "$ok" "$notok" "$skip" "$plan" "$why" >>"$results"
		mkdir -p "$OUT/logs/$rt" && cp "$log" "$OUT/logs/$rt/" 2>/dev/null
	done
	# Clean up whatever a test left: containers under the private root,
	# then the root, the bundles and the wrapper.
	for id in $("$tmp/$rt" list -q 2>/dev/null); do
		"$tmp/$rt" delete --force "$id" >/dev/null 2>&1
	done
	rm -rf "$tmp"
done

summary=""
for rt in $RUNTIMES; do
	[ -n "${passed[$rt]:-}" ] || continue
	summary+="${summary:+, }$rt ${passed[$rt]}/$total"
done
say "results in $results, logs in $OUT/logs"
echo "$summary"
