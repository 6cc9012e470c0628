#!/usr/bin/env bash
# `npm run bench [-- FILTER [ARGS…]]`: the core benchmark (embedded broker,
# bench/core.bench.ts), then every broker benchmark bench/<name>.bench.ts.
# The soak (bench/soak.bench.ts, 60 minutes by default) runs only when FILTER
# names it: `npm run bench -- soak --minutes 5`.
# The hostile-input campaign (bench/fuzz.bench.ts, ≥ 10 000 cases, no
# figures) runs only when asked for by name: `npm run bench -- fuzz`.
# FILTER keeps only the benchmarks whose name contains it (core, growth,
# amqp, sqs, kafka, move); ARGS go to each benchmark that runs. growth
# (bench/growth.bench.ts) is a table of how CPU per message and RSS grow with
# payload, concurrency, sources and chain length: no targets. A broker benchmark that cannot
# reach its broker exits 3 (bench/lib/skip.ts) and is reported as skipped, not
# failed. Exit status: 0 when every benchmark that ran met its targets.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
source scripts/deps.sh

filter="${1:-}"
[ $# -gt 0 ] && shift
SKIP_EXIT=3
status=0
ran=0
files=(bench/core.bench.ts)
for f in bench/*.bench.ts; do
  [ "$f" = bench/core.bench.ts ] || files+=("$f")
done
for f in "${files[@]}"; do
  [ -e "$f" ] || continue
  name="$(basename "$f" .bench.ts)"
  if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then continue; fi
  # The soak runs for an hour by default: only when asked for by name.
  if [ -z "$filter" ] && [ "$name" = soak ]; then echo "turnout: bench soak not run (an hour long): npm run bench -- soak [--minutes N]" >&2; continue; fi
  if [ "$name" = fuzz ] && [ "$filter" != fuzz ]; then continue; fi
  ran=$((ran + 1))
  echo "turnout: bench $name: node $f $*" >&2
  node "$f" "$@"
  rc=$?
  case $rc in
    0) ;;
    "$SKIP_EXIT") echo "turnout: bench $name skipped: its broker is not reachable" >&2 ;;
    *) echo "turnout: bench $name exited $rc (a target was missed or the run failed)" >&2; status=1 ;;
  esac
done
if [ "$ran" -eq 0 ]; then
  echo "turnout: no benchmark name contains '$filter' (have: $(for f in "${files[@]}"; do basename "$f" .bench.ts; done | tr '\n' ' '))" >&2
  exit 2
fi
exit "$status"
