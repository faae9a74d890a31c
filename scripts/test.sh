#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the Python packages the
# interop tests use (into a venv outside the repo), starts a real S3-compatible
# server on 127.0.0.1 and a single-node Slurm cluster (scripts/slurm.sh), runs
# `cargo test`, and stops them by their PIDs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${ECOPS_VENV:-$HOME/.cache/ecops/venv}"
stamp="$venv/.requirements-$(sha256sum scripts/requirements-test.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "test.sh: installing Python test packages into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  touch "$stamp"
fi

workdir="$(mktemp -d)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export AWS_ACCESS_KEY_ID=ecops-test AWS_SECRET_ACCESS_KEY=ecops-test-secret AWS_REGION=us-east-1
"$venv/bin/python" scripts/s3_server.py --port "$port" --bucket ecops-test --ready-file "$workdir/s3.ready" \
  >"$workdir/s3.log" 2>&1 &
s3_pid=$!
cleanup() {
  kill "$s3_pid" 2>/dev/null || true
  wait "$s3_pid" 2>/dev/null || true
  bash scripts/slurm.sh stop "$workdir/slurm" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  [ -f "$workdir/s3.ready" ] && break
  if ! kill -0 "$s3_pid" 2>/dev/null; then
    echo "test.sh: the S3 test server failed to start:"; cat "$workdir/s3.log"; exit 1
  fi
  sleep 0.2
done
[ -f "$workdir/s3.ready" ] || { echo "test.sh: the S3 test server did not become ready"; cat "$workdir/s3.log"; exit 1; }

# A single-node Slurm cluster (installed from Debian's packages when missing)
# for the backfill tests; stopped by pid in cleanup.
if bash scripts/slurm.sh start "$workdir/slurm" >"$workdir/slurm.log" 2>&1; then
  # shellcheck disable=SC1091
  source "$workdir/slurm/env"
  export ECOPS_TEST_SLURM_CONF="$SLURM_CONF"
else
  echo "test.sh: the Slurm test cluster failed to start:"; cat "$workdir/slurm.log"; exit 1
fi

export ECOPS_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export ECOPS_TEST_S3_BUCKET=ecops-test
export ECOPS_TEST_PYTHON="$venv/bin/python"
# Tests that need the S3 server or PyIceberg fail (rather than skip) when this is set.
export ECOPS_REQUIRE_EXTERNAL=1

cargo test --all-targets "$@"

# Smoke bench (whole-suite runs only): CPU time per part file written and per
# item ingested, against tests/bench/smoke-baseline.json; fails only above 3×.
if [ "$#" -eq 0 ]; then
  cargo run --quiet -- bench smoke
fi
