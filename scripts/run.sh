#!/usr/bin/env bash
# Runs the turnout CLI from source on Node 24 (installed on first use), e.g.
#   bash scripts/run.sh demo      bash scripts/run.sh run      bash scripts/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node24.sh
source scripts/deps.sh
exec node src/cli.ts "$@"
