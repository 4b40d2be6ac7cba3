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

set -x
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
