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
# The VAE baselines' agreement test (crates/bench/tests/multivae.rs) trains MultiVae's MoPoE and
# MMVAE+ beside mmlatent's; a pinned release, installed with torch and torchvision pinned too.
if ! .venv/bin/python -c 'import multivae' 2>/dev/null; then
  echo "setup: installing multivae==1.0.3 into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "torch==$torch_version" "torchvision==0.26.0" "multivae==1.0.3"
fi
torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
ln -sfn "$torch_dir" .libtorch
echo "setup: libtorch $torch_version at $torch_dir"
# The HTML report's test loads a page in a real headless browser: Chromium from Debian's packages.
if ! command -v "${MMLATENT_CHROMIUM:-chromium}" >/dev/null 2>&1; then
  echo "setup: installing chromium (apt-get) for the HTML report's browser test"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; }; then
    echo "setup: could not install chromium: the report test (crates/cli/tests/export_report.rs) will fail" >&2
  fi
fi

# The Python package `mmlatent` (crates/python), installed in place as `maturin develop` would:
# a .pth file puts crates/python/python on .venv's path, and the extension module there is a link
# to the one `cargo build --workspace` / `cargo test --workspace` builds (dev profile; with
# MMLATENT_PYTHON_PROFILE=release, `cargo build --release -p mmlatent-python`'s). So the set-up
# compiles nothing, the tests always import the extension they just built, and pip never moves
# torch. A wheel: `maturin build --release` in crates/python.
profile=${MMLATENT_PYTHON_PROFILE:-debug}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
package=$PWD/crates/python/python
if .venv/bin/python -m pip show --disable-pip-version-check mmlatent >/dev/null 2>&1; then
  echo "setup: removing an installed mmlatent wheel (the package is now used in place)"
  .venv/bin/python -m pip uninstall --quiet --disable-pip-version-check -y mmlatent
fi
ln -sfn "$target_dir/$profile/deps/libmmlatent_native.so" "$package/mmlatent/_native.so"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(cat "$site/mmlatent.pth" 2>/dev/null)" != "$package" ]; then
  echo "$package" > "$site/mmlatent.pth"
fi
echo "setup: Python package mmlatent at $package (extension: $target_dir/$profile/deps/libmmlatent_native.so, built by cargo)"
