#!/usr/bin/env bash
# Testing on a Slurm cluster, one task per GPU (or CPU process on nodes without GPUs):
#
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments ...]
#
# GPUS, GPUS_PER_NODE, TASKS_PER_NODE and CPUS_PER_TASK (tools/slurm_resources.sh),
# SRUN_ARGS (extra srun options) and MASTER_PORT (default: random) come from
# the environment; PYTHON picks the interpreter (default: python).
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments ...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")
# shellcheck source=tools/slurm_resources.sh
source "$TOOLS/slurm_resources.sh"
slurm_resources "$PARTITION"
# A random rendezvous port, so that several jobs can share a node.
export MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}

set -x
# SRUN_ARGS is unquoted on purpose: it holds several srun options.
# shellcheck disable=SC2086
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    "${SRUN_RESOURCES[@]}" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "$@"
