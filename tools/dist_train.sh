#!/usr/bin/env bash
# Train with N processes per node through torchrun: tools/dist_train.sh CONFIG N [tools/train.py args...]
# Each process takes batch_size images per step (the global batch is N x nodes x batch_size). With CUDA
# every process drives one GPU (nccl); without, the processes share the CPUs (gloo).
# Several nodes: run the same command on each, with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR (the
# address of node 0) and the same PORT.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCESSES [tools/train.py args...]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec torchrun \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
