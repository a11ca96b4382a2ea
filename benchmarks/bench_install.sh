#!/usr/bin/env bash
# Install time, from nothing to the kit installed, locked against unlocked, side by side in one run.
#   bash benchmarks/bench_install.sh            (about 15 minutes: the unlocked install is the slow one)
# Each way gets a new virtual environment and an empty package cache; torch is put in first and not
# timed (it is the exception: kept when installed). The machine's pip settings (local mirrors, caps)
# are switched off so pip talks to PyPI as a new user's does. Timings are printed, never asserted.
#   locked, uv     what scripts/setup.sh does: uv into the venv, then uv pip install -c constraints.txt
#   locked, pip    setup's fallback without uv: pip install -c constraints.txt
#   unlocked, pip  what setup did before the lock: pip install -e ".[dev]", the resolver picks versions
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_CONSTRAINT PIP_EXTRA_INDEX_URL PIP_INDEX_URL
torch_spec="torch==${KIT_TORCH_VERSION:-2.13.0}"

fresh_venv() {  # fresh_venv NAME: a venv with torch (untimed) and empty caches for what comes next
  python3 -m venv "$work/$1"
  "$work/$1/bin/pip" install -q --find-links /opt/wheels "$torch_spec" ${KIT_TORCH_INDEX_URL:+--index-url "$KIT_TORCH_INDEX_URL"}
  export PIP_CACHE_DIR="$work/$1.pip-cache" UV_CACHE_DIR="$work/$1.uv-cache"
}

timed() {  # timed NAME COMMAND...: seconds of COMMAND, its output in $work/NAME.log
  local name=$1; shift
  local start=$SECONDS
  if "$@" >"$work/$name.log" 2>&1; then echo $((SECONDS - start)); else echo "failed (see log)"; tail -5 "$work/$name.log" >&2; fi
}

fresh_venv uv
t_uv=$(timed uv bash -c ". '$work/uv/bin/activate' && python -m pip install -q uv==${KIT_UV_VERSION:-0.13.9} \
  && python -m uv pip install --python '$work/uv/bin/python' -c constraints.txt -e '.[dev]'")
"$work/uv/bin/python" -m pip freeze --exclude-editable | grep -v '^uv==' >"$work/uv.freeze"

fresh_venv pip
t_pip=$(timed pip "$work/pip/bin/pip" install -c constraints.txt -e ".[dev]")
"$work/pip/bin/python" -m pip freeze --exclude-editable >"$work/pip.freeze"

fresh_venv unlocked
t_unlocked=$(timed unlocked "$work/unlocked/bin/pip" install -e ".[dev]")
"$work/unlocked/bin/python" -m pip freeze --exclude-editable >"$work/unlocked.freeze"
backtracked=$(grep -c "is looking at multiple versions" "$work/unlocked.log" || true)

printf '\n%-16s %10s   %s\n' "install" "seconds" "what"
printf '%-16s %10s   %s\n' "locked, uv" "$t_uv" "scripts/setup.sh (uv + constraints.txt)"
printf '%-16s %10s   %s\n' "locked, pip" "$t_pip" "setup without uv (pip + constraints.txt)"
printf '%-16s %10s   %s\n' "unlocked, pip" "$t_unlocked" "pip resolves ($backtracked backtracking notices)"
echo
if cmp -s "$work/uv.freeze" "$work/pip.freeze"; then
  echo "pip freeze: identical after the uv and the pip install from the lock ($(wc -l <"$work/uv.freeze") packages)"
else
  echo "pip freeze differs between the uv and the pip install from the lock:"; diff "$work/uv.freeze" "$work/pip.freeze" || true
fi
echo "unlocked install: $(diff "$work/uv.freeze" "$work/unlocked.freeze" | grep -c '^>' || true) packages at other versions than the lock"
for v in uv pip; do "$work/$v/bin/python" -m pip check >/dev/null && echo "pip check ($v): clean" || echo "pip check ($v): problems"; done
