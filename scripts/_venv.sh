# Sourced by the set-up scripts: create (once) and activate the project's venv.
# MMCONV_VENV overrides the location; MMCONV_PYTHON the interpreter (>= 3.10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMCONV_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  "${MMCONV_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip_install() {
  # pip's notes about optional local package folders on this machine are noise;
  # its exit status is kept (PIPESTATUS) so a failed install stops the script.
  python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
