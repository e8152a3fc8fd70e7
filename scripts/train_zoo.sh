#!/usr/bin/env bash
# Train every model of the zoo into data/models/ (weights + model cards), two at a time with
# one torch thread each. About 20 minutes on 2 CPU cores. CI does not run this: the weights
# are committed. Usage: scripts/train_zoo.sh [variant ...]
set -euo pipefail
cd "$(dirname "$0")/.."
DIFFRED=${DIFFRED:-.venv/bin/diffred}
# variant and training seeds: more seeds where variants are expected to differ little
PLAN=(
  "cnn_adv 1,2" "cnn_ce 1,2,3" "vit 1,2" "cnn_mrl 1,2" "cnn_up10 1,2" "cnn_decov 1,2"
  "cnn_dropout10 1" "cnn_dropout30 1" "cnn_dropout50 1,2" "cnn_dropout80 1"
  "cnn_w16 1" "cnn_w64 1" "cnn_w128 1" "cnn_w512 1" "cnn_w1024 1"
)
jobs=()
for entry in "${PLAN[@]}"; do
  read -r variant seeds <<<"$entry"
  if [ $# -gt 0 ] && [[ ! " $* " =~ " $variant " ]]; then continue; fi
  for seed in ${seeds//,/ }; do jobs+=("$variant $seed"); done
done
printf '%s\n' "${jobs[@]}" | OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 xargs -P 2 -L 1 \
  bash -c "$DIFFRED"' train "$0" --seeds "$1" > "/tmp/diffred-train-$0-$1.log" 2>&1 && tail -1 "/tmp/diffred-train-$0-$1.log"'
