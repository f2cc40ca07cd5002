#!/usr/bin/env bash
# Scaling of data-parallel training on this machine: the same training (same global batch,
# seed and data order) in 1 process and in N processes (`mmlatent train --nproc N`), one
# libtorch thread per process. Steps per second come from metrics.csv's wall times between the
# first and the last logged step of each stage, so start-up, dataset loading and the final sample
# grids are left out. Efficiency = (N-process rate) / (N × 1-process rate): 1.0 is perfect. The
# last column is the alternative on the same cores: one process with N threads.
#
# Usage: scripts/bench_parallel.sh [N=2] [STEPS=150]   (MMLATENT=path/to/mmlatent to choose the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2}
STEPS=${2:-150}
# BIN, WORK, OMP_NUM_THREADS=1 and rate RUN STAGE.
source scripts/bench_lib.sh

# name | config | --set values | stages measured
WORKLOADS=(
  "MLD autoencoders + score|configs/default-mld.toml|model.autoencoder.steps=$STEPS train.steps=$STEPS train.warmup_steps=0|ae_m0 score"
  "EBM prior|configs/default-ebm.toml|train.steps=$((STEPS / 4))|ebm"
  "MoPoE|configs/default-mopoe.toml|train.steps=$((STEPS / 2))|vae"
)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| workload | stage | 1 process (steps/s) | %s processes | speed-up | efficiency | 1 process, %s threads |\n' "$N" "$N"
printf '|---|---|---|---|---|---|---|\n'
for w in "${WORKLOADS[@]}"; do
  IFS='|' read -r name config sets stages <<< "$w"
  args=(--set train.log_every=5 --set train.checkpoint_every=100000 --set train.sample_every=100000)
  for s in $sets; do args+=(--set "$s"); done
  run="$WORK/${config//\//_}"
  for shape in "1 1" "$N 1" "1 $N"; do
    read -r procs threads <<< "$shape"
    "$BIN" train "$config" --run "$run-$procs-$threads" --nproc "$procs" --set "train.threads=$threads" "${args[@]}" \
      > "$WORK/log" 2>&1 || { cat "$WORK/log" >&2; exit 1; }
  done
  for stage in $stages; do
    one=$(rate "$run-1-1" "$stage")
    many=$(rate "$run-$N-1" "$stage")
    threaded=$(rate "$run-1-$N" "$stage")
    awk -v name="$name" -v st="$stage" -v a="$one" -v b="$many" -v c="$threaded" -v n="$N" \
      'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2f× | %.2f | %.2f |\n", name, st, a, b, b / a, b / (n * a), c }'
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
