#!/usr/bin/env bash
# check-dist.sh DIR VERSION OS/ARCH...
#
# Verifies the release binaries that `make dist` wrote: for each OS/ARCH there
# must be DIR/event_dispatcher-OS-ARCH, and its embedded build information
# (`go version -m`) must show that GOOS, that GOARCH, CGO_ENABLED=0, the main
# package ./cmd/event_dispatcher and -X .../internal/app.Version=VERSION.
# Reports every missing binary and mismatch, then exits non-zero if there was any.
set -euo pipefail

if [[ $# -lt 3 ]]; then
	echo "usage: $0 DIR VERSION OS/ARCH..." >&2
	exit 2
fi

dir=$1
version=$2
shift 2

module=github.com/SRGSSR/pillarbox-event-dispatcher
main_pkg=$module/cmd/event_dispatcher
version_var=$module/internal/app.Version

status=0
bad=0
fail() {
	echo "check-dist: $bin: $*" >&2
	status=1
	bad=1
}

# setting KEY prints the value of the `build KEY=value` line of $info.
setting() {
	awk -F'\t' -v key="$1" '$2 == "build" { i = index($3, "="); if (substr($3, 1, i - 1) == key) print substr($3, i + 1) }' <<<"$info"
}

for platform in "$@"; do
	os=${platform%/*}
	arch=${platform#*/}
	bin=$dir/event_dispatcher-$os-$arch
	bad=0
	if [[ ! -f $bin ]]; then
		fail "missing (run make dist)"
		continue
	fi
	if ! info=$(go version -m "$bin"); then
		fail "go version -m failed: not a Go binary?"
		continue
	fi

	path=$(awk -F'\t' '$2 == "path" { print $3 }' <<<"$info")
	[[ $path == "$main_pkg" ]] || fail "main package is '$path', want '$main_pkg'"

	got=$(setting GOOS)
	[[ $got == "$os" ]] || fail "GOOS is '$got', want '$os'"
	got=$(setting GOARCH)
	[[ $got == "$arch" ]] || fail "GOARCH is '$got', want '$arch'"
	got=$(setting CGO_ENABLED)
	[[ $got == 0 ]] || fail "CGO_ENABLED is '$got', want '0'"

	# -ldflags="-s -w -X <module>/internal/app.Version=<version>" (quoted by go
	# when it holds spaces). Take the word after "<version_var>=".
	ldflags=$(setting -ldflags)
	ldflags=${ldflags#\"}
	ldflags=${ldflags%\"}
	embedded=
	found=0
	read -ra words <<<"$ldflags"
	for word in "${words[@]}"; do
		if [[ $word == "$version_var="* ]]; then
			embedded=${word#"$version_var="}
			found=1
		fi
	done
	if [[ $found == 0 ]]; then
		fail "no -X $version_var in -ldflags '$ldflags'"
	elif [[ $embedded != "$version" ]]; then
		fail "embedded version is '$embedded', want '$version'"
	fi

	if [[ $bad == 0 ]]; then
		echo "ok   $bin  $os/$arch  version=$embedded"
	fi
done

if [[ $status != 0 ]]; then
	echo "check-dist: FAILED" >&2
fi
exit "$status"
