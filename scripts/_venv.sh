# Sourced by the set-up scripts: create (once) and activate the project's venv.
# MMCONV_VENV overrides the location; MMCONV_PYTHON the interpreter (>= 3.10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMCONV_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  "${MMCONV_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip_install() {
  # pip's output (build-backend notices, notes about optional local package
  # folders) is shown only when the install fails.
  local log status=0
  log="$(mktemp)"
  python -m pip install -q "$@" >"$log" 2>&1 || status=$?
  [ "$status" = 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}
