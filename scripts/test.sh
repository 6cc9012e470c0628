#!/usr/bin/env bash
# The whole test suite, from a fresh machine: Node 24, dependencies, type
# check, test brokers (scripts/test-setup.d/*.sh), then node --test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
source scripts/deps.sh
echo "turnout: node $(node --version), type-checking" >&2
npx --no-install tsc -p tsconfig.json
for hook in scripts/test-setup.d/*.sh; do
  [ -e "$hook" ] || continue
  echo "turnout: test setup: $hook" >&2
  # shellcheck disable=SC1090
  source "$hook"
done
# Files run in parallel processes; broker tests isolate themselves by queue name.
exec node --test --test-concurrency="${TURNOUT_TEST_CONCURRENCY:-2}" --test-timeout=300000 "$@" \
  'test/unit/**/*.test.ts' 'test/e2e/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/deploy/**/*.test.ts' 'test/fuzz/*.test.ts' 'test/page/*.test.ts'
