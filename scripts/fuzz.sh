#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed number of executions each
# (counts, not durations: Go 1.26 fuzzing can fail spuriously with -fuzztime=Ns).
set -euo pipefail
fuzztime=${1:-2000x}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $target ($fuzztime)"
    if ! go test -run "^$" -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 50x "$pkg"; then
      status=1
    fi
  done
done
exit $status
