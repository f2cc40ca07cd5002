#!/usr/bin/env bash
# Whether all-reducing gradient buckets during the backward pass (libtorch's DDP reducer) pays
# on this machine: MLD's default config on the bundled set in 2 processes (one libtorch thread
# each), once with the overlap off (MMLATENT_BUCKET_MIB=0: one flat all-reduce after the pass)
# and once per bucket size given, each REPEATS times, interleaved. Steps/s of the first
# autoencoder and of the score network from metrics.csv, as in scripts/bench_parallel.sh.
#
# Usage: scripts/bench_overlap.sh [STEPS=200] [REPEATS=2] [BUCKET_MIB…=4]
# To see a slower network than loopback, shape it first (root; docs/src/results/parallel.md says how).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-200}
REPEATS=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
SIZES=("${@:-4}")
# BIN, WORK, OMP_NUM_THREADS=1 and rate RUN STAGE.
source scripts/bench_lib.sh

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| MMLATENT_BUCKET_MIB | repeat | ae_m0 (steps/s) | score (steps/s) |\n|---|---|---|---|\n'
for repeat in $(seq "$REPEATS"); do
  for mib in 0 "${SIZES[@]}"; do
    run="$WORK/$mib-$repeat"
    MMLATENT_BUCKET_MIB=$mib "$BIN" train configs/default-mld.toml --run "$run" --nproc 2 --set train.threads=1 \
      --set train.log_every=5 --set train.checkpoint_every=100000 --set train.sample_every=100000 \
      --set model.autoencoder.steps="$STEPS" --set train.steps="$STEPS" --set train.warmup_steps=0 \
      > "$WORK/log" 2>&1 || { cat "$WORK/log" >&2; exit 1; }
    label=$mib
    [ "$mib" = 0 ] && label="0 (after the pass)"
    printf '| %s | %s | %s | %s |\n' "$label" "$repeat" "$(rate "$run" ae_m0)" "$(rate "$run" score)"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
