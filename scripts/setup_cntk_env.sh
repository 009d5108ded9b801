#!/usr/bin/env bash
# Build the CNTK 2.7 runtime that mmconv uses to check its work against real CNTK.
#
# CNTK's last release (2.7) ships a Linux wheel for CPython 3.6 only, and that
# wheel links OpenMPI 1.10 (libmpi.so.12, libmpi_cxx.so.1).  We make a Python
# 3.6 venv, install the wheel, and satisfy the MPI libraries with Debian's
# OpenMPI 4 through symlinks carrying the old sonames (see
# shared notes/cntk-format.md).  The result is a self-contained folder:
#
#   $MMCONV_CNTK_HOME/bin/python     the interpreter (venv)
#   $MMCONV_CNTK_HOME/mpilib/        the soname symlinks
#   $MMCONV_CNTK_HOME/python         a wrapper that sets LD_LIBRARY_PATH
#
# Point mmconv at it with MMCONV_CNTK_PYTHON=$MMCONV_CNTK_HOME/python.
# Idempotent: re-running is cheap once everything is there.
set -euo pipefail

home="${MMCONV_CNTK_HOME:-$HOME/.cache/mmconv/cntk-env}"
tag=setup_cntk_env
# shellcheck source=scripts/_runtime_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/_runtime_env.sh"
py36="$(find_python "${MMCONV_PY36:-}" 3.6.15 MMCONV_PY36)"

# OpenMPI from Debian, if not there yet.
mpi_so="$(ls /usr/lib/x86_64-linux-gnu/libmpi.so.40* 2>/dev/null | head -n1 || true)"
if [ -z "$mpi_so" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_cntk_env: installing libopenmpi3 (apt)" >&2
    quiet "apt-get update" apt-get update -qq
    quiet "apt-get install libopenmpi3" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends libopenmpi3
  else
    echo "setup_cntk_env: OpenMPI 4 (libmpi.so.40) is missing; install Debian's libopenmpi3" >&2
    exit 1
  fi
fi
libdir=/usr/lib/x86_64-linux-gnu
mpi_so="$(ls $libdir/libmpi.so.40 2>/dev/null || ls $libdir/openmpi/lib/libmpi.so.40)"
mpicxx_so="$(ls $libdir/libmpi_cxx.so.40 2>/dev/null || ls $libdir/openmpi/lib/libmpi_cxx.so.40)"

if [ ! -x "$home/bin/python" ]; then
  echo "setup_cntk_env: creating venv at $home" >&2
  mkdir -p "$(dirname "$home")"
  quiet "creating the venv" "$py36" -m venv "$home"
fi
mkdir -p "$home/mpilib"
ln -sf "$mpi_so" "$home/mpilib/libmpi.so.12"
ln -sf "$mpicxx_so" "$home/mpilib/libmpi_cxx.so.1"

cat > "$home/python" <<WRAP
#!/usr/bin/env bash
# CNTK 2.7 interpreter with its MPI libraries on the loader path.
export LD_LIBRARY_PATH="$home/mpilib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$home/bin/python" "\$@"
WRAP
chmod +x "$home/python"

if ! "$home/python" -c "import cntk" >/dev/null 2>&1; then
  echo "setup_cntk_env: installing cntk 2.7 (this takes a few minutes)" >&2
  quiet "pip install pip<22" "$home/bin/python" -m pip install -q --disable-pip-version-check \
    --upgrade "pip<22"
  quiet "pip install cntk==2.7.post2" "$home/bin/python" -m pip install -q \
    --disable-pip-version-check "cntk==2.7.post2"
fi
# One import that both checks the env and reports the version (CNTK's GPU warnings silenced).
if ! version="$("$home/python" -W ignore -c "import cntk; print(cntk.__version__)" 2>>"$log")"; then
  echo "setup_cntk_env: cntk does not import in $home; last lines:" >&2
  tail -n 25 "$log" >&2
  exit 1
fi
echo "setup_cntk_env: cntk $version ready" >&2
echo "$home/python"
