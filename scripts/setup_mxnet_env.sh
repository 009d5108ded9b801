#!/usr/bin/env bash
# Build the MXNet 1.9.1 runtime that mmconv uses to check its MXNet output.
#
# MXNet is retired: its last release (1.9.1) pins numpy < 1.24, so it can never
# share mmconv's environment.  It gets its own Python 3.11 venv with exactly
# mxnet==1.9.1 and numpy==1.23.5 (the last numpy it imports with).  The wheel
# bundles its BLAS and libgfortran; on Python 3.11 `import mxnet` also needs
# requests and graphviz<0.9, which pip resolves from mxnet's own requirements.
#
#   $MMCONV_MXNET_HOME/bin/python    the interpreter
#
# Point mmconv at it with MMCONV_MXNET_PYTHON=$(scripts/setup_mxnet_env.sh).
# Idempotent: re-running is cheap once everything is there.
set -euo pipefail

home="${MMCONV_MXNET_HOME:-$HOME/.cache/mmconv/mxnet-env}"
tag=setup_mxnet_env
# shellcheck source=scripts/_runtime_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/_runtime_env.sh"
py311="$(find_python "${MMCONV_PY311:-}" 3.11.7 MMCONV_PY311)"

if [ ! -x "$home/bin/python" ]; then
  echo "setup_mxnet_env: creating venv at $home" >&2
  mkdir -p "$(dirname "$home")"
  quiet "creating the venv" "$py311" -m venv "$home"
fi

if ! "$home/bin/python" -c "import mxnet" >/dev/null 2>&1; then
  echo "setup_mxnet_env: installing mxnet 1.9.1 + numpy 1.23.5" >&2
  quiet "pip install mxnet==1.9.1 numpy==1.23.5" "$home/bin/python" -m pip install -q \
    --disable-pip-version-check "mxnet==1.9.1" "numpy==1.23.5"
fi
# One import that both checks the env and reports the versions.
if ! version="$("$home/bin/python" -W ignore -c \
    "import mxnet, numpy; print(mxnet.__version__, 'numpy', numpy.__version__)" 2>>"$log")"; then
  echo "setup_mxnet_env: mxnet does not import in $home; last lines:" >&2
  tail -n 25 "$log" >&2
  exit 1
fi
echo "setup_mxnet_env: mxnet $version ready" >&2
echo "$home/bin/python"
