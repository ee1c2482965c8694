# shellcheck shell=bash
# Helpers for .ci/run and the other .ci/*.sh scripts. Source it, don't run it.

export LC_NUMERIC=C # '.' as the decimal point in the timings below

die() {
  echo "ci: error: $*" >&2
  exit 1
}

# Seconds since an $EPOCHREALTIME value, one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# step NAME: prints "== NAME" and starts its timer; the previous step's time is printed and kept
# for timing_table.
CI_STEP=''
CI_STEP_START=''
CI_TIMINGS=()
step() {
  step_done
  CI_STEP=$1
  CI_STEP_START=$EPOCHREALTIME
  echo "== $CI_STEP"
}
step_done() {
  [[ -n $CI_STEP ]] || return 0
  local secs
  secs=$(since "$CI_STEP_START")
  echo "   ($CI_STEP: ${secs}s)"
  CI_TIMINGS+=("$(printf '%7.1fs  %s' "$secs" "$CI_STEP")")
  CI_STEP=''
}
timing_table() {
  step_done
  printf '   %s\n' "${CI_TIMINGS[@]}"
}

# wait_until WHAT SECONDS CMD...: retries CMD every half second until it succeeds; fails after SECONDS.
wait_until() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "$what did not answer within ${secs}s"
}

# Background jobs. bg_start NAME LOG CMD... runs CMD (a program or script, not a function) in its
# own process group with its output in LOG; bg_wait NAME [LINES] waits for it, prints LOG (only
# its last LINES lines if it succeeded and LINES is given, its last 100 if it failed) and returns
# its status. bg_cleanup (for an EXIT trap) kills jobs still running, except those started with
# BG_NO_KILL=1 (apt-get: killing dpkg half-way leaves the machine's package database broken),
# which it waits for instead.
declare -A CI_BG_PID=() CI_BG_LOG=() CI_BG_START=() CI_BG_NO_KILL=()
bg_start() {
  local name=$1 log=$2
  shift 2
  # Without job control (as in any script) a background child is never a process-group leader,
  # so setsid needs no fork: $! is the new group's id.
  setsid "$@" >"$log" 2>&1 </dev/null &
  CI_BG_PID[$name]=$!
  CI_BG_LOG[$name]=$log
  CI_BG_START[$name]=$EPOCHREALTIME
  CI_BG_NO_KILL[$name]=${BG_NO_KILL:-0}
  echo "   $name: started in the background (pid $!, log $log)"
}
bg_wait() {
  local name=$1 lines=${2:-} rc=0
  wait "${CI_BG_PID[$name]}" || rc=$?
  unset "CI_BG_PID[$name]"
  if ((rc != 0)); then
    lines=100
  fi
  if [[ -n $lines ]]; then
    tail -n "$lines" "${CI_BG_LOG[$name]}" | sed 's/^/   | /'
  else
    sed 's/^/   | /' "${CI_BG_LOG[$name]}"
  fi
  echo "   $name: exit $rc after $(since "${CI_BG_START[$name]}")s in the background"
  return "$rc"
}
bg_cleanup() {
  local name pid
  for name in "${!CI_BG_PID[@]}"; do
    pid=${CI_BG_PID[$name]}
    if [[ ${CI_BG_NO_KILL[$name]} == 1 ]]; then
      echo "ci: waiting for background job $name (pid $pid) to finish" >&2
    else
      kill -TERM -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
