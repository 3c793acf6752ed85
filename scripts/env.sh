#!/usr/bin/env bash
# Prints export lines that put this project's tools first on PATH:
#
#   eval "$(scripts/env.sh)"
#
# $RR_TOOLS/bin (kubectl, helm, noida-db, osmem-server, kube-apiserver; default
# ~/.cache/remote-reindex, installed by scripts/install-test-deps.sh), the Python venv's bin,
# and the built remote-reindex binaries (target/quickstart, then target/debug). The project's
# kubectl comes before a different one the machine may have. Running it again does not
# duplicate entries.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac

first=("$RR_TOOLS/bin" "$RR_TOOLS/venv/bin" "$TARGET/quickstart" "$TARGET/debug")
rest=()
IFS=: read -r -a old <<<"${PATH:-}"
for d in "${old[@]}"; do
  keep=1
  for f in "${first[@]}"; do [ "$d" = "$f" ] && keep=0; done
  [ -n "$d" ] && [ "$keep" = 1 ] && rest+=("$d")
done
# nginx (tests) lives in /usr/sbin, which a non-root PATH may lack.
case ":${PATH:-}:" in *:/usr/sbin:*) ;; *) rest+=(/usr/sbin) ;; esac
new=$(IFS=:; echo "${first[*]}:${rest[*]}")
printf 'export RR_TOOLS=%q\n' "$RR_TOOLS"
printf 'export PATH=%q\n' "$new"
