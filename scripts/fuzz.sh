#!/usr/bin/env bash
# scripts/fuzz.sh FUZZTIME [PACKAGE...]: run every Fuzz target of the
# packages (default ./...) for FUZZTIME each, go on after a failure, and
# exit non-zero at the end if any target failed, listing them.
#
# FUZZTIME is best a count of executions (20000x): with a duration (20s),
# Go before 1.27 can end a run that found nothing with "context deadline
# exceeded" (go.dev/issue/75804), more often on a loaded machine. Targets
# are discovered with go test -list, so new ones are picked up. A failing
# input is written to the package's testdata/fuzz/<Target>/: commit it with
# the fix, and it runs with every go test.
#
# Used by make fuzz, .ci/run and the Quality workflow (through make fuzz).
set -uo pipefail

if (($# < 1)) || [[ -z $1 ]]; then
	echo "usage: scripts/fuzz.sh FUZZTIME [PACKAGE...]  (FUZZTIME: 20000x, or a duration)" >&2
	exit 2
fi
fuzztime=$1
shift
packages=("$@")
if ((${#packages[@]} == 0)); then
	packages=(./...)
fi
if [[ ! $fuzztime =~ ^[0-9]+x$ ]]; then
	echo "fuzz: FUZZTIME=$fuzztime is not a count of executions (such as 20000x): a duration can fail" \
		"with 'context deadline exceeded' when it ends (go.dev/issue/75804)" >&2
fi

if ! pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${packages[@]}"); then
	echo "fuzz: go list ${packages[*]} failed" >&2
	exit 1
fi

found=0
failed=()
for pkg in $pkgs; do
	if ! list=$(go test -list '^Fuzz' "$pkg"); then
		echo "$list"
		failed+=("$pkg (go test -list)")
		continue
	fi
	for fn in $(grep '^Fuzz' <<<"$list" || true); do
		found=$((found + 1))
		echo "==> $pkg $fn ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed+=("$pkg $fn")
		fi
	done
done

echo "fuzz: ran $found target(s) for $fuzztime each"
if ((found == 0)); then
	echo "fuzz: no Fuzz target found in ${packages[*]}" >&2
	exit 1
fi
if ((${#failed[@]} > 0)); then
	echo "fuzz: ${#failed[@]} failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
