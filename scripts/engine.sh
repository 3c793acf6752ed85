#!/usr/bin/env bash
# Real single-node Elasticsearch / OpenSearch engines from Maven Central jars (tests/engines/).
#
#   scripts/engine.sh start ENGINE PORT DIR [SETTING=VALUE ...]
#       ENGINE: opensearch-2 | elasticsearch-7 | elasticsearch-6 | opensearch-1 | opensearch-3 |
#               elasticsearch-8 | elasticsearch-7.10  (docs/engines.md: which boot)
#       Starts one node detached (own session), HTTP on 127.0.0.1:PORT (0 = a free port), data, pid
#       and log (engine.log) in DIR, the extra args as node settings. Returns once
#       GET /_cluster/health?wait_for_status=yellow answers 200 and prints url=http://127.0.0.1:PORT.
#       A failed start exits non-zero with the JVM's error as its last line.
#   scripts/engine.sh stop DIR       SIGTERM; returns once the JVM has exited and its port is free.
#   scripts/engine.sh resolve [ENGINE ...]   resolve jars + compile the launcher (default: all engines)
#   scripts/engine.sh url DIR        prints url=... of a running engine
#   scripts/engine.sh java ENGINE    prints java_home=... of the JDK ENGINE runs on, or fails saying
#       what is missing (opensearch-3 needs Java 21+; the tests skip it then)
#
# ENGINE_HEAP (default 512m) sets the heap. ENGINE_START_TIMEOUT (default 240 s) bounds a start.
# Jars are cached in ~/.m2, the classpath and launcher under $RR_TOOLS/engines/ENGINE
# (RR_TOOLS defaults to ~/.cache/remote-reindex).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINES_SRC="$ROOT/tests/engines"
RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
CACHE="$RR_TOOLS/engines"
ALL_ENGINES="opensearch-2 elasticsearch-7 elasticsearch-6 opensearch-1 opensearch-3 elasticsearch-8 elasticsearch-7.10"

die() { echo "engine.sh: $*" >&2; exit 1; }

# The JDK an engine needs: OpenSearch 3.x is built for Java 21+, the others run on Java 17.
java_home_for() {
  case "$1" in
    opensearch-3)
      for j in ${ENGINE_JAVA21_HOME:-} /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64 \
               /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64; do
        [ -x "$j/bin/java" ] && { echo "$j"; return; }
      done
      die "opensearch-3 needs Java 21+: none found under /usr/lib/jvm (set ENGINE_JAVA21_HOME)" ;;
    *)
      for j in ${ENGINE_JAVA17_HOME:-} /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-17-jdk-amd64; do
        [ -x "$j/bin/java" ] && { echo "$j"; return; }
      done
      local j; j=$(readlink -f "$(command -v javac 2>/dev/null || true)" 2>/dev/null || true)
      [ -n "$j" ] && { dirname "$(dirname "$j")"; return; }
      die "no Java 17 JDK found (install openjdk-17-jdk-headless or set ENGINE_JAVA17_HOME)" ;;
  esac
}

check_engine() {
  case " $ALL_ENGINES " in *" $1 "*) ;; *) die "unknown engine '$1' (one of: $ALL_ENGINES)" ;; esac
}

stamp() { cat "$ENGINES_SRC/pom.xml" "$ENGINES_SRC"/src/*.java "$ENGINES_SRC"/src/*/*.java | sha256sum | cut -c1-16; }

resolved() { [ -f "$CACHE/$1/stamp" ] && [ "$(cat "$CACHE/$1/stamp")" = "$(stamp)" ]; }

# Resolves ENGINE's Maven profile into $CACHE/ENGINE/classpath.txt and compiles the launcher.
resolve() {
  local e=$1 jh out
  check_engine "$e"
  resolved "$e" && return 0
  command -v mvn >/dev/null || die "mvn is missing (apt-get install maven) to resolve $e"
  jh=$(java_home_for "$e")
  out="$CACHE/$e"
  rm -rf "$out"; mkdir -p "$out/classes"
  echo "engine.sh: resolving $e from Maven Central (profile $e of tests/engines/pom.xml)" >&2
  if ! JAVA_HOME="$jh" mvn -q -B -f "$ENGINES_SRC/pom.xml" -P "$e" dependency:build-classpath \
      -Dmdep.outputFile="$out/classpath.txt" >"$out/resolve.log" 2>&1; then
    tail -5 "$out/resolve.log" >&2
    die "could not resolve $e from Maven Central (log: $out/resolve.log)"
  fi
  if ! "$jh/bin/javac" -nowarn -cp "$(cat "$out/classpath.txt")" -d "$out/classes" \
      "$ENGINES_SRC/src/Launcher.java" $(ls "$ENGINES_SRC/src/$e"/*.java 2>/dev/null) >"$out/javac.log" 2>&1; then
    cat "$out/javac.log" >&2; die "could not compile the launcher for $e"
  fi
  stamp >"$out/stamp"
}

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  [ $# -ge 3 ] || die "usage: engine.sh start ENGINE PORT DIR [SETTING=VALUE ...]"
  local e=$1 port=$2 dir=$3; shift 3
  check_engine "$e"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number (0 = a free port), got '$port'"
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  alive "$dir" && die "an engine is already running in $dir (pid $(cat "$dir/pid"))"
  resolve "$e"
  local jh heap log cp
  jh=$(java_home_for "$e")
  heap=${ENGINE_HEAP:-512m}
  log="$dir/engine.log"
  [ -f "$log" ] && mv -f "$log" "$dir/engine.log.prev"
  rm -f "$dir/port" "$dir/url"
  mkdir -p "$dir/tmp"
  echo "$e" >"$dir/engine"
  cp="$(cat "$CACHE/$e/classpath.txt"):$CACHE/$e/classes"
  local opts=(-Xms"$heap" -Xmx"$heap" -Xss1m -XX:+UseSerialGC -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError
    -Djava.io.tmpdir="$dir/tmp" -Dfile.encoding=UTF-8 -Djna.nosys=true
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0)
  # Java 17 still has the COMPAT locale data the older engines' date formats expect (gone in 23+).
  [ "$e" != opensearch-3 ] && opts+=(-Djava.locale.providers=SPI,COMPAT)
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1/pid"; shift; exec "$@"' _ "$dir" \
    "$jh/bin/java" "${opts[@]}" -cp "$cp" Launcher --dir "$dir" --port "$port" "$@" \
    </dev/null >"$log" 2>&1 &
  local deadline=$((SECONDS + ${ENGINE_START_TIMEOUT:-240})) url=""
  while :; do
    if grep -q '^remote-reindex-engine ready ' "$log" 2>/dev/null; then
      url=$(grep '^remote-reindex-engine ready ' "$log" | tail -1 | sed 's/.* url=\([^ ]*\).*/\1/')
      break
    fi
    if [ -f "$dir/pid" ] && ! alive "$dir"; then
      echo "engine.sh: $e exited during start; last lines of $log:" >&2
      grep -v '^remote-reindex-engine failed' "$log" | tail -15 >&2 || true
      grep '^remote-reindex-engine failed' "$log" | tail -1 >&2 || tail -1 "$log" >&2
      rm -f "$dir/pid"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -15 "$log" >&2
      cmd_stop "$dir" >/dev/null 2>&1 || true
      die "$e did not start within ${ENGINE_START_TIMEOUT:-240}s (log: $log)"
    fi
    sleep 0.2
  done
  local code
  code=$(curl -s -o "$dir/health.json" -w '%{http_code}' --max-time 70 \
    "$url/_cluster/health?wait_for_status=yellow&timeout=60s" || true)
  if [ "$code" != 200 ]; then
    cat "$dir/health.json" >&2 2>/dev/null || true
    cmd_stop "$dir" >/dev/null 2>&1 || true
    die "$e at $url: cluster health did not reach yellow (HTTP $code)"
  fi
  echo "$url" >"$dir/url"
  echo "url=$url"
}

cmd_stop() {
  [ $# -eq 1 ] || die "usage: engine.sh stop DIR"
  local dir=$1 pid port=""
  [ -f "$dir/port" ] && port=$(cat "$dir/port")
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 60))
      while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
          echo "engine.sh: pid $pid ignored SIGTERM for 60s; killing it" >&2
          kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
      done
    fi
    rm -f "$dir/pid"
  fi
  if [ -n "$port" ]; then
    local deadline=$((SECONDS + 30))
    while port_open "$port"; do
      [ $SECONDS -ge $deadline ] && die "port $port still open 30s after the engine in $dir exited"
      sleep 0.1
    done
  fi
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  resolve)
    shift
    if [ $# -eq 0 ]; then
      set -- $ALL_ENGINES
      # Every kind: one that needs a Java this machine lacks is skipped with the reason (its
      # tests skip too); named explicitly, it fails.
      for e in "$@"; do
        if why=$( (java_home_for "$e" >/dev/null) 2>&1 ); then resolve "$e"; else echo "$why; not resolved" >&2; fi
      done
    else
      for e in "$@"; do resolve "$e"; done
    fi ;;
  url) shift; [ -f "${1:-}/url" ] && alive "$1" || die "no engine running in ${1:-?}"; echo "url=$(cat "$1/url")" ;;
  java) shift; check_engine "${1:-}"; jh=$(java_home_for "$1"); echo "java_home=$jh" ;;
  *) die "usage: engine.sh start ENGINE PORT DIR [SETTING=VALUE ...] | stop DIR | resolve [ENGINE ...] | url DIR | java ENGINE" ;;
esac
