#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft) for development, tests and CI.
#
#   kafka-local.sh start | stop | status | logs [-f]
#
# The broker is built from Maven Central jars (pom.xml beside this script), so only a JDK >= 17 and
# Maven are needed: no Kafka tarball, no Docker. Progress goes to stderr; on success `start` prints a
# single `KAFKA_BOOTSTRAP_SERVERS=host:port` line on stdout, so callers can `eval "$(kafka-local.sh start)"`.
# See README.md beside this script for the environment variables.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

KDIR=${MLC_KAFKA_DIR:-$REPO/.run/kafka}
LIBS=${MLC_KAFKA_LIBS:-$KDIR/libs}
DATA=$KDIR/data
PIDFILE=$KDIR/broker.pid
LOGFILE=$KDIR/broker.log
PROPS=$KDIR/server.properties

PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
BOOTSTRAP=127.0.0.1:$PORT
READY_TIMEOUT=${MLC_KAFKA_READY_TIMEOUT:-120}
STOP_TIMEOUT=30

JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# Kafka's own GC settings from kafka-run-class.sh, with a heap sized for a test broker instead of 1 GiB.
read -r -a HEAP_OPTS <<< "${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
JVM_OPTS=(
  "${HEAP_OPTS[@]}"
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent
  # A broker that ran out of memory is broken; dying makes the failure visible instead of a hang.
  -XX:+ExitOnOutOfMemoryError
  -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$HERE/log4j2.properties"
)

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The venv's python carries aiokafka (a project dependency), which makes the readiness check a real
# client round-trip rather than a port probe.
probe_python() {
  local py=${MLC_KAFKA_PYTHON:-$REPO/.venv/bin/python}
  if [ -x "$py" ] && "$py" -c 'import aiokafka' 2>/dev/null; then
    printf '%s\n' "$py"
  fi
}

# probe MODE BOOTSTRAP TIMEOUT: MODE is roundtrip (our own broker) or metadata (a cluster we do not own).
# Without a usable python only a TCP connect is possible; that is said out loud, not hidden.
probe() {
  local mode=$1 bootstrap=$2 timeout=$3 py
  py=$(probe_python)
  if [ -n "$py" ]; then
    "$py" "$HERE/probe.py" "$bootstrap" --mode "$mode" --timeout "$timeout"
  else
    log "warning: no python with aiokafka (set MLC_KAFKA_PYTHON); checking only that ${bootstrap%%,*} accepts TCP"
    tcp_open "${bootstrap%%,*}"
  fi
}

tcp_open() {  # host:port
  local host=${1%:*} port=${1##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# The pid file alone is not trusted: after a reboot or a crash its pid may belong to another process.
broker_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $PROPS" || return 1
  printf '%s\n' "$pid"
}

# The port the running broker was started with, which need not be today's KAFKA_PORT.
running_bootstrap() {
  sed -n 's#^advertised.listeners=PLAINTEXT://##p' "$PROPS" 2>/dev/null
}

libs_current() {  # expected-checksum
  [ -f "$LIBS/.fetched" ] && [ "$(<"$LIBS/.fetched")" = "$1" ]
}

fetch_libs() {
  # The marker holds the pom's checksum, so a version bump in pom.xml refetches instead of mixing jars.
  local want
  want=$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)
  libs_current "$want" && return 0
  command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch the broker jars"
  mkdir -p "$(dirname "$LIBS")"
  # Several runtime dirs may share one jar dir (MLC_KAFKA_LIBS); its own lock stops two fetches from
  # deleting each other's jars. The fd is closed again below so that the broker JVM never inherits it.
  if command -v flock >/dev/null; then
    exec 8> "$LIBS.lock"
    flock -w 600 8 || die "another fetch holds $LIBS.lock"
  fi
  if ! libs_current "$want"; then
    log "fetching broker jars with Maven into $LIBS (once; ~/.m2 caches the downloads)"
    rm -rf "$LIBS"
    local start=$SECONDS
    # Some Maven builds print bare colour-reset codes even in batch mode; they are stripped from the output.
    mvn -B -q -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS" 2>&1 | sed $'s/\e\\[0m//g' >&2 \
      || die "Maven could not fetch the broker jars (see above)"
    printf '%s\n' "$want" > "$LIBS/.fetched"
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - start)) s"
  fi
  exec 8>&-
}

render_config() {
  local tpl
  tpl=$(<"$HERE/server.properties.in")
  # Bash substitution rather than sed: a runtime dir containing sed's delimiter cannot break it.
  tpl=${tpl//__LOG_DIR__/$DATA}
  tpl=${tpl//__CONTROLLER_PORT__/$CONTROLLER_PORT}
  tpl=${tpl//__PORT__/$PORT}
  printf '%s\n' "$tpl" > "$PROPS"
}

format_storage() {
  # A fresh data dir on every start: a dev/test broker should begin empty, and it sidesteps any
  # mismatch between an old log dir and a changed config. MLC_KAFKA_KEEP_DATA=1 keeps topics instead.
  if [ "${MLC_KAFKA_KEEP_DATA:-0}" = 1 ] && [ -f "$DATA/meta.properties" ]; then
    log "keeping existing data in $DATA (MLC_KAFKA_KEEP_DATA=1)"
    return 0
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  # Cluster id in Kafka's usual form (16 random bytes, base64url, unpadded) without a JVM start for
  # `StorageTool random-uuid`. Like Kafka's own generator, never one starting with '-': the format
  # tool's option parser would take it for an option (1 start in 64 failed that way).
  local cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  # The format tool runs for a second or two: a small serial-GC JVM starts faster than the broker's.
  # Its output (a full config dump) goes to format.log and is shown only when it fails.
  if ! "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      "-Dlog4j2.configurationFile=$HERE/log4j2.properties" \
      -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" > "$KDIR/format.log" 2>&1; then
    tail -n 40 "$KDIR/format.log" >&2
    die "formatting $DATA failed"
  fi
}

# Kill a broker this run launched but that never became ready, so the next start begins clean.
abort_start() {
  local pid=$1 reason=$2
  log "error: $reason; last broker log lines:"
  tail -n 60 "$LOGFILE" >&2 || true
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  exit 1
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + READY_TIMEOUT))
  # The log line comes first: KafkaRaftServer prints it only after the controller has caught up, the
  # broker is unfenced and every acceptor is open. A port probe alone can pass before requests are served.
  until grep -q "Kafka Server started" "$LOGFILE"; do
    kill -0 "$pid" 2>/dev/null || abort_start "$pid" "broker process exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || abort_start "$pid" "no 'Kafka Server started' within ${READY_TIMEOUT} s"
    sleep 0.2
  done
  local remaining=$((deadline - SECONDS))
  [ "$remaining" -gt 5 ] || remaining=5
  probe roundtrip "$BOOTSTRAP" "$remaining" || abort_start "$pid" "client round-trip against $BOOTSTRAP failed"
  kill -0 "$pid" 2>/dev/null || abort_start "$pid" "broker process exited during start-up"
}

cmd_start() {
  # An existing cluster (CI service container, shared dev cluster) takes precedence over a local broker.
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ "${MLC_KAFKA_FORCE_LOCAL:-0}" != 1 ]; then
    log "KAFKA_BOOTSTRAP_SERVERS is set: using the existing cluster at $KAFKA_BOOTSTRAP_SERVERS, not starting one"
    probe metadata "$KAFKA_BOOTSTRAP_SERVERS" 30 || die "the cluster at $KAFKA_BOOTSTRAP_SERVERS does not answer"
    printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$KAFKA_BOOTSTRAP_SERVERS"
    return 0
  fi

  local pid
  if pid=$(broker_pid); then
    local running
    running=$(running_bootstrap)
    [ "$running" = "$BOOTSTRAP" ] \
      || die "a broker from $KDIR already runs on $running (pid $pid); stop it before using port $PORT"
    if probe metadata "$BOOTSTRAP" 15; then
      log "already running (pid $pid) on $BOOTSTRAP"
      printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$BOOTSTRAP"
      return 0
    fi
    log "pid $pid is alive but the broker does not answer; restarting it"
    cmd_stop
  elif [ -f "$PIDFILE" ]; then
    log "removing stale pid file $PIDFILE"
    rm -f "$PIDFILE"
  fi

  command -v "$JAVA" >/dev/null || die "java not found (JDK 17+ needed; set JAVA_HOME)"
  # Someone else on the port would make our broker die at bind time with a less obvious message.
  tcp_open "$BOOTSTRAP" && die "port $PORT is in use by another process (set KAFKA_PORT, or KAFKA_BOOTSTRAP_SERVERS to use it)"
  tcp_open "127.0.0.1:$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is in use (set KAFKA_CONTROLLER_PORT)"

  fetch_libs
  render_config
  format_storage

  local start=$SECONDS
  : > "$LOGFILE"
  # setsid: own session and process group, so a CI step's shell or a closing terminal that signals its
  # group does not take the broker down; nohup ignores SIGHUP as well. stdin from /dev/null and output to
  # the log file, so nobody waits on the broker's pipes. Backgrounded children of a non-interactive shell
  # are not group leaders, so setsid does not fork and $! is the JVM's pid.
  # fd 9 (the lock) is closed for the JVM, or the broker would hold the lock for its whole life.
  nohup setsid "$JAVA" "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
      < /dev/null >> "$LOGFILE" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" > "$PIDFILE"
  log "started broker pid $pid, waiting for it to be ready (up to ${READY_TIMEOUT} s)"
  wait_ready "$pid"
  log "ready on $BOOTSTRAP in $((SECONDS - start)) s (pid $pid, log $LOGFILE)"
  printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$BOOTSTRAP"
}

cmd_stop() {
  # Stops only the broker this runtime dir started; an external KAFKA_BOOTSTRAP_SERVERS is never touched.
  local pid
  if ! pid=$(broker_pid); then
    [ -f "$PIDFILE" ] && log "removing stale pid file $PIDFILE"
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  # SIGTERM runs the JVM shutdown hook: a controlled shutdown that closes logs cleanly.
  log "stopping broker pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "no exit after ${STOP_TIMEOUT} s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && die "pid $pid survived SIGKILL; pid file left in place"
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid=$(broker_pid); then
    local running
    running=$(running_bootstrap)
    if tcp_open "$running"; then
      echo "running (pid $pid) on $running"
    else
      echo "running (pid $pid), not yet accepting connections on $running"
    fi
    printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$running"
    return 0
  fi
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ "${MLC_KAFKA_FORCE_LOCAL:-0}" != 1 ]; then
    if probe metadata "$KAFKA_BOOTSTRAP_SERVERS" 10; then
      echo "not running locally; external cluster at $KAFKA_BOOTSTRAP_SERVERS answers"
      printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$KAFKA_BOOTSTRAP_SERVERS"
      return 0
    fi
    echo "not running locally; external cluster at $KAFKA_BOOTSTRAP_SERVERS does not answer"
    return 1
  fi
  echo "not running (would listen on $BOOTSTRAP)"
  return 1
}

cmd_logs() {
  [ -f "$LOGFILE" ] || die "no broker log at $LOGFILE"
  if [ "${1:-}" = "-f" ]; then
    exec tail -n 100 -F "$LOGFILE"
  fi
  tail -n "${MLC_KAFKA_LOG_LINES:-200}" "$LOGFILE"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    start|stop|status|logs) ;;
    *) echo "usage: $(basename "$0") start | stop | status | logs [-f]" >&2; exit 2 ;;
  esac
  mkdir -p "$KDIR"
  if [ "$cmd" != logs ] && command -v flock >/dev/null; then
    # Two starts at once (parallel CI steps, a developer and a test run) would both format and launch.
    exec 9> "$KDIR/.lock"
    flock -w 180 9 || die "another kafka-local.sh holds $KDIR/.lock"
  fi
  "cmd_$cmd" "$@"
}

main "$@"
