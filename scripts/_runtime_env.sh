# Sourced by the runtime set-up scripts (setup_cntk_env.sh, setup_mxnet_env.sh): a quiet
# step runner and the search for the Python a runtime's venv is made from.
# The caller sets $tag (the message prefix) before sourcing; stdout stays clean because
# callers use $(scripts/setup_X_env.sh) as the interpreter path.

# Tool output goes to this log and is shown only when a step fails.
log="${TMPDIR:-/tmp}/mmconv-${tag}.$$.log"
trap 'rm -f "$log"' EXIT

quiet() {  # quiet DESCRIPTION CMD...: run CMD with output to the log; on failure show its tail
  local what="$1"; shift
  if ! "$@" >>"$log" 2>&1; then
    echo "$tag: $what failed; last lines of its output:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

find_python() {  # find_python GIVEN X.Y.Z VARIABLE: GIVEN, else pyenv's X.Y.Z, else pythonX.Y
  local given="$1" full="$2" variable="$3" short
  short="${full%.*}"
  if [ -n "$given" ]; then
    echo "$given"
  elif command -v pyenv >/dev/null 2>&1 && [ -x "$(pyenv root)/versions/$full/bin/python" ]; then
    echo "$(pyenv root)/versions/$full/bin/python"
  elif command -v "python$short" >/dev/null 2>&1; then
    command -v "python$short"
  else
    echo "$tag: no Python $short found (set $variable=/path/to/python$short)" >&2
    return 1
  fi
}
