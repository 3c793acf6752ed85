# Progress output shared by the install, build and quick-start scripts (sourced, not run):
#   step "what is happening" "how long it takes on 2 cores"   prints a header, starts a clock
#   step_done                                                  prints the step's duration
#   heartbeat CMD...                 runs CMD; prints "still running (Ns)" every 30 s while it is
#                                    silent for long (go build), so a terminal never looks stuck
#   apt_get ARGS...                  apt-get that waits for a busy dpkg lock (APT_LOCK_TIMEOUT s,
#                                    default 300, saying so), its output kept short: errors are shown, and
#                                    the "Download is performed unsandboxed as root" warning is
#                                    replaced by what it means
STEP_START=$SECONDS

step() {
  STEP_START=$SECONDS
  printf '==> %s (%s)\n' "$1" "$2"
}

step_done() {
  printf '    done in %ss\n' "$((SECONDS - STEP_START))"
}

heartbeat() {
  "$@" &
  local pid=$! started=$SECONDS rc=0
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      printf '    ... still running (%ss)\n' "$((SECONDS - started))"
    fi
  done
  wait "$pid" || rc=$?
  return "$rc"
}

apt_get() {
  local log rc=0
  log=$(mktemp)
  # Another apt (an unattended upgrade, a second install) may hold the dpkg lock: wait for it,
  # up to APT_LOCK_TIMEOUT seconds (default 300), instead of failing at once.
  if command -v fuser >/dev/null && fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1; then
    echo "    apt is busy (another package manager holds the dpkg lock); waiting up to ${APT_LOCK_TIMEOUT:-300} s"
  fi
  apt-get -o DPkg::Lock::Timeout="${APT_LOCK_TIMEOUT:-300}" "$@" >"$log" 2>&1 || rc=$?
  if grep -q 'Download is performed unsandboxed as root' "$log"; then
    # apt downloads as the unprivileged user _apt when it can; running as root in a container
    # whose download directory _apt cannot write, it downloads as root instead and says so.
    echo "    note: apt downloaded as root (its sandbox user _apt cannot write the download directory; usual in containers, harmless)"
  fi
  grep -v -e 'Download is performed unsandboxed as root' -e '^debconf: ' "$log" \
    | grep -E '^(E:|W:|Err:)' >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "apt-get $* failed (exit $rc):" >&2
    tail -20 "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}
