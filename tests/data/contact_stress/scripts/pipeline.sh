#!/bin/bash
# Train, freeze, convert and compress each model folder given (run in the folder holding them).
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1
DP=${DP:-dp}
for d in "$@"; do
  ( cd "$d" && $DP --pt train input.json > train.log 2>&1 && $DP --pt freeze -o frozen.pth > freeze.log 2>&1 \
    && $DP convert-backend frozen.pth frozen.dp > convert.log 2>&1 \
    && $DP --pt compress -i frozen.pth -o compressed.pth > compress.log 2>&1 && echo "$d done" || echo "$d FAILED" )
done
