#!/bin/bash
# integration.sh [RUNTIME] [FILTER]: runs the integration tests against RUNTIME (default: the static
# berth-runtime; e.g. /usr/sbin/runc to check the suite itself), optionally filtered (swift test --filter).
# Builds the fixtures first; uses its own scratch path (.build-it). Root only.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
runtime=${1:-$repo/.build-static/release/berth-runtime}
filter=${2:-IntegrationTests}
scripts/fixtures.sh "$repo/fixtures/cache" >/dev/null
export BERTH_ROOT_TESTS=1 BERTH_RUNTIME=$runtime BERTH_FIXTURES=$repo/fixtures/cache BERTH_PROBE=$repo/fixtures/cache/probe
exec swift test ${PACKAGE_PATH:+--package-path "$PACKAGE_PATH"} --scratch-path "${SCRATCH:-$repo/.build-it}" --filter "$filter"
