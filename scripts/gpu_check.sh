#!/usr/bin/env bash
# The GPU checks, prepared for a session that is lent an NVIDIA GPU (short and run once): every
# model family end to end on `--device cuda` (train, sample, eval, tiny), MLD in bf16 mixed precision, then a
# data-parallel job
# of one process over NCCL (the path of `--nproc` on GPUs; a single GPU cannot hold two NCCL
# ranks). No Rust on that machine: build the release binary here, carry it, and run
#   bash scripts/gpu_check.sh          (logs go to $OUT when set, else a temporary folder)
# in the repository root there. It finds PyTorch in /opt/torch/.venv (the device machine's) or in
# the project's .venv. Prints one line per check, ok or FAIL with the log's tail.
set -uo pipefail
cd "$(dirname "$0")/.."
TORCH=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/torch .venv/lib/python3*/site-packages/torch 2>/dev/null | head -n1)
[ -n "$TORCH" ] || { echo "no PyTorch found (/opt/torch/.venv or .venv)" >&2; exit 1; }
export LD_LIBRARY_PATH="$TORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN=${MMLATENT:-target/release/mmlatent}
[ -x "$BIN" ] || { echo "no $BIN: build it with cargo build --release and carry it" >&2; exit 1; }
LOGS=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
nvidia-smi -L || true
failed=0

check() { # check NAME COMMAND...: runs the command, logs it to $LOGS/NAME.log, reports
  local name=$1 start=$SECONDS
  shift
  if "$@" > "$LOGS/$name.log" 2>&1; then
    echo "ok    $name ($((SECONDS - start)) s)"
  else
    echo "FAIL  $name ($((SECONDS - start)) s):"
    tail -n 8 "$LOGS/$name.log" | sed 's/^/      /'
    failed=1
  fi
}

SHORT=(--set data.max_train=4096 --set data.max_test=512 --set train.steps=60 --set train.checkpoint_every=30
       --set train.sample_every=1000 --set train.log_every=10 --set train.warmup_steps=0)
for kind in mld ebm mopoe mmvaeplus; do
  extra=()
  [ "$kind" = mld ] && extra=(--set model.autoencoder.steps=60)
  check "train-$kind" "$BIN" train "configs/default-$kind.toml" --device cuda --run "$WORK/$kind" "${SHORT[@]}" "${extra[@]}"
  check "sample-$kind" "$BIN" sample "$WORK/$kind" --device cuda --out "$WORK/$kind-samples"
  check "eval-$kind" "$BIN" eval "$WORK/$kind" --device cuda --samples 200
done
# bf16 mixed precision on CUDA (autocast on the CUDA device type): a short training run and a sample.
check "train-mld-bf16" "$BIN" train configs/default-mld.toml --device cuda --run "$WORK/mld-bf16" "${SHORT[@]}" \
  --set model.autoencoder.steps=60 --set train.precision=bf16
check "sample-mld-bf16" "$BIN" sample "$WORK/mld-bf16" --device cuda --precision bf16 --out "$WORK/mld-bf16-samples"
# Resuming on the GPU continues where the run stopped.
check "resume-mld" "$BIN" train configs/default-mld.toml --device cuda --run "$WORK/mld" --resume "${SHORT[@]}" \
  --set model.autoencoder.steps=60 --set train.steps=90

# NCCL: a job of one (every collective runs, on one rank); its log must say NCCL.
check "nccl-job-of-one" env WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
  "$BIN" train configs/default-mld.toml --device cuda --run "$WORK/nccl" "${SHORT[@]}" --set model.autoencoder.steps=60
grep -q "c10d, NCCL" "$LOGS/nccl-job-of-one.log" && echo "ok    the job of one used NCCL" ||
  { echo "FAIL  the job of one did not report NCCL"; failed=1; }
rm -rf "$WORK"
echo "logs in $LOGS"
exit $failed
