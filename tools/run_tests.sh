#!/usr/bin/env bash
# README command 2: set up the environment if needed, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
# Test models are tiny: one intra-op thread per process (tests spawn tool subprocesses and
# data workers) avoids oversubscribing the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python -m pytest tests "$@"
