#!/usr/bin/env bash
# Model-checks scale-out's slice protocol (model/slices.pml) with SPIN (Debian package `spin`,
# installed by scripts/install-test-deps.sh):
#
#   scripts/check-model.sh
#
# Exhaustive safety search (assertions and invalid end states; states compressed with
# -DCOLLAPSE) of the model as the code runs
# it: never two writers of one slice, every document written at least once across crashes,
# pauses and takeovers, finalize only after every slice is done, all under one point in time
# (a lost PIT replans every slice, finished ones included); with 2 slices x 2 workers,
# 3 slices x 2 workers and 2 slices x 3 workers. The lost point in time (one loss) is explored
# with 2 slices x 2 workers (28.5 M states, ~6 min, 1.3 GB on 2 busy cores); the larger
# configurations run without it (-DMAXLOSS=0) to stay within CI time. Then each variant that breaks one rule on
# purpose must be caught, so a model that cannot fail does not pass:
#   -DNOFENCE      bulks without the Lease-budget gate  -> two writers
#   -DREADCURSOR   checkpoint the read cursor, not the durable one -> lost documents
#   -DEARLY        finalize when one slice is done -> finalize before every slice is done
#   -DNOREGEN      after a lost point in time, replan only the slice that noticed -> a finished
#                  slice keeps pages of the old PIT (documents of the final one never written)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
command -v spin >/dev/null || { echo "spin not found: apt-get install spin (scripts/install-test-deps.sh)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "gcc not found (spin compiles its verifier with it)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rr-model.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILURES=0

# check NAME EXPECT(pass|fail) SPIN-DEFINES...
check() {
  local name=$1 expect=$2
  shift 2
  local dir="$WORK/$name"
  mkdir -p "$dir"
  cp "$ROOT/model/slices.pml" "$dir/"
  (cd "$dir" && spin -a "$@" slices.pml >/dev/null && gcc -O2 -DSAFETY -DCOLLAPSE -w -o pan pan.c)
  local out errors
  out=$(cd "$dir" && ./pan -m200000 2>&1 || true)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
  local states
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' <<<"$out" | head -1)
  if grep -q "depth too small\|max search depth too small" <<<"$out"; then
    echo "  FAIL: $name: the search was cut off (raise -m)"; FAILURES=$((FAILURES + 1)); return
  fi
  if [ "$expect" = pass ] && [ "$errors" = 0 ]; then
    echo "  ok: $name: no violation in $states states"
  elif [ "$expect" = fail ] && [ -n "$errors" ] && [ "$errors" != 0 ]; then
    echo "  ok: $name: caught: $(grep -m1 -E 'assertion violated|invalid end state' <<<"$out")"
  else
    echo "  FAIL: $name: expected $expect, got errors=${errors:-?}"
    echo "$out" | tail -20
    FAILURES=$((FAILURES + 1))
  fi
}

echo "== spin $(spin -V | head -1)"
check s2-w2 pass
check s3-w2 pass -DS=3 -DMAXLOSS=0
check s2-w3 pass -DW=3 -DMAXLOSS=0
check nofence fail -DNOFENCE
check readcursor fail -DREADCURSOR
check early fail -DEARLY
check noregen fail -DNOREGEN

if [ "$FAILURES" -gt 0 ]; then
  echo "check-model: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "check-model: all checks passed"
