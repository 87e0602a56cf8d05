#!/usr/bin/env bash
# The long runs CI leaves out (docs/security.md, "What was measured"):
#   1. every fuzz target (tests/test_fuzz_*.py) with the hypothesis profile "soak": at least
#      10,000 examples each, random (failures are kept in .hypothesis/ and replayed first);
#   2. scripts/load.py: 100,000 native queries at 500/s, then 100,000 Hermes ones;
#   3. the fault tests (tests/test_daemon_faults.py) REPEAT times (default 5).
# Everything runs, whatever fails; the figures and logs go to OUT (default soak-<time>/) and
# the exit status is 1 when anything failed. Needs mosquitto and the dev extra (hypothesis).
#   scripts/soak.sh                 # about an hour on one core
#   COUNT=20000 REPEAT=2 OUT=/tmp/soak scripts/soak.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-${VENV:-.venv}/bin/python}
OUT=${OUT:-soak-$(date +%Y%m%d-%H%M%S)}
REPEAT=${REPEAT:-5}
COUNT=${COUNT:-100000}
RATE=${RATE:-500}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
failed=()

run() {  # run NAME COMMAND...: its output to OUT/NAME.txt (and the terminal)
  local name=$1; shift
  echo "== $name: $*" >&2
  local start=$SECONDS
  if "$@" 2>&1 | tee "$OUT/$name.txt"; then
    echo "== $name: passed in $((SECONDS - start)) s" >&2
  else
    echo "== $name: FAILED in $((SECONDS - start)) s" >&2
    failed+=("$name")
  fi
}

run fuzz env EDGE_SLM_FUZZ_PROFILE=soak "$PY" -m pytest -q -p no:cacheprovider \
  --hypothesis-show-statistics tests/test_fuzz_messages.py tests/test_fuzz_frames.py \
  tests/test_fuzz_files.py
run load-native "$PY" scripts/load.py --count "$COUNT" --rate "$RATE" --quiet \
  --json "$OUT/load-native.json"
run load-hermes "$PY" scripts/load.py --count "$COUNT" --rate "$RATE" --api hermes --quiet \
  --json "$OUT/load-hermes.json"
for i in $(seq "$REPEAT"); do
  run "faults-$i" "$PY" -m pytest -q -s -p no:cacheprovider tests/test_daemon_faults.py
done

echo "figures and logs in $OUT/" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "soak: everything passed" >&2
