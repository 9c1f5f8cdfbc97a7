#!/bin/sh
# fuzz/run.sh SECONDS JOBS TARGET...: run each libFuzzer TARGET for SECONDS on
# its seed corpus (fuzz/corpus/NAME) plus what earlier runs found
# (build/fuzz/corpus-NAME), JOBS at a time. Prints each target's final stats
# and a verdict line; exits 1 when any target crashed, leaked or timed out
# (its reproducer is build/fuzz/crash-* / leak-* / timeout-*).
set -u
secs=$1
jobs=$2
shift 2
out=build/fuzz/logs
mkdir -p "$out"
for f in "$@"; do echo "$f"; done | xargs -P "$jobs" -I{} sh -c '
	f=$1 secs=$2 out=$3
	n=$(basename "$f" -fuzzer)
	mkdir -p "build/fuzz/corpus-$n"
	"$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/ \
		"build/fuzz/corpus-$n" "fuzz/corpus/$n" >"$out/$n.log" 2>&1
	echo $? >"$out/$n.rc"
' sh {} "$secs" "$out"
bad=0
for f in "$@"; do
	n=$(basename "$f" -fuzzer)
	rc=$(cat "$out/$n.rc" 2>/dev/null || echo 99)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$n.log")
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $n: ok, ${runs:-?} runs in ${secs}s"
	else
		bad=1
		echo "fuzz $n: FAILED (exit $rc); the report:"
		grep -A40 -m1 "==ERROR\|runtime error\|deadly signal\|ERROR: libFuzzer" "$out/$n.log" | head -60
	fi
done
exit $bad
