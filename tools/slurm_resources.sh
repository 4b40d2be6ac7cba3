# Sourced by tools/slurm_train.sh and tools/slurm_test.sh: `slurm_resources PARTITION` puts
# srun's resource options in the array SRUN_RESOURCES, from the environment:
#
#   GPUS_PER_NODE  GPUs per node; default: the partition's (its gres gpu:N), 0 when it
#                  has none. 0 runs CPU processes over gloo and asks no --gres.
#   GPUS           tasks in all, one per GPU (or CPU process); default: GPUS_PER_NODE,
#                  1 on a partition without GPUs.
#   TASKS_PER_NODE tasks per node; default: GPUS_PER_NODE (left to Slurm without GPUs).
#   CPUS_PER_TASK  default 5.

# GPUs per node in a gres list such as "gpu:8", "gpu:a100:4(S:0-1)" or "(null)"; 0 if none.
gres_gpus() {
    local gres
    gres=$(tr ',' '\n' <<< "$1" | grep -m1 '^gpu' || true)
    gres=${gres%%(*}
    if [[ ${gres##*:} =~ ^[0-9]+$ ]]; then
        echo "${gres##*:}"
    else
        echo 0
    fi
}

slurm_resources() {
    local partition=$1
    GPUS_PER_NODE=${GPUS_PER_NODE:-$(gres_gpus "$(sinfo -h -p "$partition" -o '%G')")}
    if [ "$GPUS_PER_NODE" -gt 0 ]; then
        GPUS=${GPUS:-$GPUS_PER_NODE}
        TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}
        SRUN_RESOURCES=(--gres=gpu:"$GPUS_PER_NODE")
    else
        GPUS=${GPUS:-1}
        SRUN_RESOURCES=()
        echo "$(basename "$0"): no GPUs on partition $partition (or GPUS_PER_NODE=0):" \
            "$GPUS CPU task(s) over gloo, no --gres" >&2
    fi
    SRUN_RESOURCES+=(--ntasks="$GPUS" --cpus-per-task="${CPUS_PER_TASK:-5}")
    if [ -n "${TASKS_PER_NODE:-}" ]; then
        SRUN_RESOURCES+=(--ntasks-per-node="$TASKS_PER_NODE")
    fi
}
