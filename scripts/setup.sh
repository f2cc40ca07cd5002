#!/usr/bin/env bash
# Installs the engine mmlatent builds against: PyTorch 2.11.0 from PyPI in a project-local
# virtualenv (.venv), and links its package folder to .libtorch (see .cargo/config.toml).
# Idempotent: a second run only checks. Also used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_version=2.11.0

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
if ! .venv/bin/python - <<PY 2>/dev/null
import sys, torch, numpy
sys.exit(torch.__version__.split("+")[0] != "$torch_version")
PY
then
  echo "setup: installing torch==$torch_version into .venv (several GB, a few minutes)"
  .venv/bin/pip install --quiet --disable-pip-version-check "torch==$torch_version" numpy scipy pillow
fi
# Evaluation's agreement test builds pytorch-fid's Inception in Python; torchvision is pinned to
# the release made for torch 2.11 so that pip never moves torch.
if ! .venv/bin/python -c 'import pytorch_fid, torchvision' 2>/dev/null; then
  echo "setup: installing pytorch-fid==0.3.0 (with torchvision==0.26.0) into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "torch==$torch_version" "torchvision==0.26.0" "pytorch-fid==0.3.0"
fi
torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
ln -sfn "$torch_dir" .libtorch
echo "setup: libtorch $torch_version at $torch_dir"

# The Python package `mmlatent` (crates/python): built by maturin against this libtorch and
# installed into .venv without dependencies, so pip never moves torch. It is built with the
# `dev` profile of `cargo test` (shared artifacts: only PyO3 and the bindings crate are added);
# MMLATENT_PYTHON_PROFILE=release builds it with the release binary's. cargo rebuilds only what
# changed; the wheel is reinstalled only when the extension differs from the installed one.
maturin_version=1.16.0
profile=${MMLATENT_PYTHON_PROFILE:-dev}
if [ "$(.venv/bin/maturin --version 2>/dev/null)" != "maturin $maturin_version" ]; then
  echo "setup: installing maturin==$maturin_version into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "maturin==$maturin_version"
fi
root=$PWD
(
  cd crates/python
  VIRTUAL_ENV="$root/.venv" PATH="$root/.venv/bin:$PATH" \
    "$root/.venv/bin/maturin" build --quiet --profile "$profile" --auditwheel skip \
    -i "$root/.venv/bin/python" -o "$root/target/wheels"
)
case $profile in dev | test) out_dir=debug ;; *) out_dir=$profile ;; esac
extension=target/$out_dir/libmmlatent_native.so
stamp=.venv/mmlatent-extension.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null || ! .venv/bin/python -c 'import mmlatent' 2>/dev/null; then
  wheel=$(ls -t target/wheels/mmlatent-*.whl | head -n 1)
  echo "setup: installing $wheel into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  sha256sum "$extension" > "$stamp"
fi
echo "setup: Python package mmlatent ($profile build) in $(.venv/bin/python -c 'import mmlatent, os; print(os.path.dirname(mmlatent.__file__))')"
