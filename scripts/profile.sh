#!/bin/sh
# scripts/profile.sh BENCH SEDIMENT DIR [bench flags...]: runs the bench's
# sediment target once with --profile DIR (CPU and allocation profiles of the
# broker during the produce and the consume phase, BENCH.md "Profiles"), then
# prints the top 10 frames of each profile with `go tool pprof`, and for the CPU
# profiles the system calls the kernel time went to. allocs-PHASE.pprof is
# made here: the difference of the bench's two heap snapshots of the phase.
set -eu
GO=${GO:-go}
bench=$1 sediment=$2 dir=$3
shift 3
mkdir -p "$dir"
"$bench" --sediment-bin "$sediment" --only sediment --raw=false --profile "$dir" "$@"
for phase in produce consume; do
	echo
	echo "== cpu-$phase.pprof: top 10 by flat CPU time"
	"$GO" tool pprof -top -nodecount=10 "$sediment" "$dir/cpu-$phase.pprof" 2>/dev/null
	echo
	echo "== cpu-$phase.pprof: the system calls behind Syscall6 (kernel time, by call)"
	"$GO" tool pprof -top -cum -show='^syscall\.([a-z]+|Fdatasync)$' "$sediment" "$dir/cpu-$phase.pprof" 2>/dev/null | sed -n '/flat%/,$p'
	echo
	echo "== allocs-$phase.pprof: top 10 by bytes allocated during the phase"
	"$GO" tool pprof -proto -base "$dir/allocs-$phase-start.pprof" "$sediment" "$dir/allocs-$phase-end.pprof" >"$dir/allocs-$phase.pprof" 2>/dev/null
	"$GO" tool pprof -top -nodecount=10 -sample_index=alloc_space "$sediment" "$dir/allocs-$phase.pprof" 2>/dev/null
done
