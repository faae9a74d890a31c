#!/usr/bin/env bash
# Every performance figure README quotes, from one run: builds the release
# binary, runs `ecops bench all` (each bench a separate process), writes one
# JSON with the commit, the build profile and the load average beside every
# result, and prints README's performance tables rendered from it.
#
#   scripts/bench.sh                           # the goals' scales (hours), → assets/bench/results.json
#   ECOPS_BENCH_SCALE=quick scripts/bench.sh   # small versions of the same (minutes)
#   ECOPS_BENCH_ONLY=parts,ingest-shuffled scripts/bench.sh --out /tmp/r.json
#   target/release/ecops bench report --results assets/bench/results.json   # tables again
#
# ECOPS_BENCH_BIN=path uses that binary instead of building one. Figures are
# only comparable on an otherwise idle machine: check the load averages.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${ECOPS_BENCH_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/ecops
fi
exec "$bin" bench all "$@"
