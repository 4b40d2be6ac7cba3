#!/usr/bin/env bash
# Multi-process training with torchrun, one process per GPU (or, on a CPU-only
# machine, per CPU process group member over gloo):
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments ...]
#   GPUS=8 bash tools/dist_train.sh CONFIG [train.py arguments ...]
#
# Multi-node: on every node, the same NNODES, MASTER_ADDR (node 0's address) and
# PORT, and its own NODE_RANK (0 .. NNODES-1); GPUS is the processes per node.
# PYTHON picks the interpreter (default: python).
#
# Failures and preemption (README "Failures and preemption"):
#   MAX_RESTARTS=N (torchrun's --max-restarts, default 0): when a worker dies,
#     torchrun starts the worker group again, up to N times, and every restart
#     resumes from the newest intact checkpoint of the work dir.
#   SIGTERM or SIGUSR1 to this script (a scheduler's preemption notice) reaches
#     every worker as SIGTERM: they finish the iteration, rank 0 saves iter_N.pth,
#     and the script exits with status 143; start it again with --resume.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: bash $0 CONFIG [GPUS] [train.py arguments ...]" >&2
    exit 2
fi
CONFIG=$1
shift
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
    GPUS=$1
    shift
fi
GPUS=${GPUS:-1}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
# Every node names node 0's address: with 127.0.0.1, nodes 1.. would wait for themselves.
if [ "$NNODES" -gt 1 ] && [ -z "${MASTER_ADDR:-}" ]; then
    echo "$0: NNODES=$NNODES: set MASTER_ADDR to node 0's address on every node" \
        "(and NODE_RANK=0..$((NNODES - 1)), one per node)" >&2
    exit 2
fi
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")

MAX_RESTARTS=${MAX_RESTARTS:-0}
# Restarts need a store of their own for the workers of each attempt: in torchrun's store
# the failed attempt's addresses stay, and restarted workers that read them cannot connect
# (torch 2.10). With the c10d rendezvous and the store not shared, rank 0 hosts a new one.
RENDEZVOUS=()
if [ "$MAX_RESTARTS" -gt 0 ]; then
    RENDEZVOUS=(--rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$PORT")
    export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
fi
# Exit status of a job stopped by SIGTERM / SIGUSR1 (nlnet.utils.preemption.PREEMPTED_EXIT_CODE).
PREEMPTED_STATUS=143

# torchrun runs in the background, in its own process group (set -m: without job control it
# would ignore SIGINT), so that this script can pass signals on: torchrun handles SIGTERM
# (and passes it to the workers) but dies at once on SIGUSR1.
set -m
set -x
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    --max-restarts="$MAX_RESTARTS" \
    ${RENDEZVOUS[@]+"${RENDEZVOUS[@]}"} \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@" &
{ set +x; } 2>/dev/null
LAUNCHER=$!
PREEMPTED=0
trap 'PREEMPTED=1; kill -TERM "$LAUNCHER" 2>/dev/null || true' TERM USR1
trap 'kill -INT "$LAUNCHER" 2>/dev/null || true' INT
# A trapped signal ends `wait` early: wait again until torchrun has ended.
while kill -0 "$LAUNCHER" 2>/dev/null; do
    wait "$LAUNCHER" || true
done
STATUS=0
wait "$LAUNCHER" || STATUS=$?
if [ "$STATUS" -ne 0 ] && [ "$PREEMPTED" -eq 1 ]; then
    echo "$0: stopped by a preemption signal; exit status $PREEMPTED_STATUS (requeue, then" \
        "continue with --resume)" >&2
    exit "$PREEMPTED_STATUS"
fi
exit "$STATUS"
