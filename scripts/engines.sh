#!/usr/bin/env bash
# Start and stop the database engines that Parley's tests use: Cassandra and Elasticsearch.
#
#   scripts/engines.sh start   [cassandra|elasticsearch|all]   fetch if needed, start, wait until ready
#   scripts/engines.sh stop    [cassandra|elasticsearch|all]
#   scripts/engines.sh restart [cassandra|elasticsearch|all]   stop and start, keeping the data
#   scripts/engines.sh status
#   scripts/engines.sh env                                     export lines for the tests
#
# Neither engine is packaged by Debian and there is no Docker here, so both come from Maven
# Central (the only JVM registry this machine reaches). Downloads and unpacked trees are cached
# outside the clone, because CI runs in a fresh clone and a second run must start in seconds.
#
# `start` wipes the engine's data so every test run begins clean; KEEP_DATA=1 (or `restart`)
# keeps it. Starting an engine that is already running restarts it.
#
# Settings (environment):
#   PARLEY_CASSANDRA_PORT          CQL port                        (default 9042)
#   PARLEY_CASSANDRA_STORAGE_PORT  inter-node port, loopback only  (default 7000)
#   PARLEY_CASSANDRA_COMMITLOG_SYNC batch, group or periodic       (default batch: acked = durable)
#   PARLEY_ES_PORT                 HTTP port                       (default 9200)
#   PARLEY_ENGINE_TIMEOUT          seconds to wait for readiness   (default 180)
#   PARLEY_CACHE_DIR               cache and run directory         (default ~/.cache/parley)
#   PARLEY_JAVA_HOME               a Java 17 to use                (default: found under /usr/lib/jvm)
#   PARLEY_MVN_OPTS                extra mvn arguments, e.g. -Dmaven.repo.local=/tmp/m2
#   KEEP_DATA=1                    do not wipe data on start
set -euo pipefail

CASSANDRA_VERSION=${PARLEY_CASSANDRA_VERSION:-5.0.9}
ES_VERSION=${PARLEY_ES_VERSION:-8.19.21}
CASSANDRA_PORT=${PARLEY_CASSANDRA_PORT:-9042}
CASSANDRA_STORAGE_PORT=${PARLEY_CASSANDRA_STORAGE_PORT:-7000}
ES_PORT=${PARLEY_ES_PORT:-9200}
TIMEOUT=${PARLEY_ENGINE_TIMEOUT:-180}
CACHE=${PARLEY_CACHE_DIR:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/parley}
KEEP_DATA=${KEEP_DATA:-0}

CASSANDRA_HOME=$CACHE/cassandra-$CASSANDRA_VERSION
CASSANDRA_RUN=$CACHE/run/cassandra

# Elasticsearch refuses to run as root. As root we run it as a system user, and since /root is
# mode 0700 that user could not read a tree under ~/.cache, so its tree and data live in the
# user's own home instead (the zip itself stays cached in ~/.m2 like every Maven download).
ES_USER=parley-es
if [ "$(id -u)" = 0 ]; then ES_BASE=/var/lib/$ES_USER; else ES_BASE=$CACHE; fi
ES_HOME=$ES_BASE/elasticsearch-$ES_VERSION
ES_RUN=$ES_BASE/run/elasticsearch

log() { echo "engines: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools

# Maven's output is kept out of the way unless it fails.
mvn_() {
  local out
  # shellcheck disable=SC2086  # PARLEY_MVN_OPTS holds several words on purpose
  if ! out=$(mvn -B -q --no-transfer-progress ${PARLEY_MVN_OPTS:-} "$@" 2>&1); then
    printf '%s\n' "$out" | tail -n 40 >&2
    die "mvn $* failed"
  fi
}

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then die "please install: $*"; fi
  log "installing $* from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_tools() {
  command -v mvn >/dev/null || apt_install maven
  command -v unzip >/dev/null || apt_install unzip
  command -v curl >/dev/null || apt_install curl
  command -v setsid >/dev/null || apt_install util-linux
}

# Both engines run on Java 17: Cassandra 5.0 supports only 11 and 17, and JDK 24+ breaks it.
java_major() { sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null; }

find_java17() {
  if [ -n "${PARLEY_JAVA_HOME:-}" ]; then echo "$PARLEY_JAVA_HOME"; return; fi
  local d
  for d in /usr/lib/jvm/*; do
    [ -x "$d/bin/java" ] && [ ! -L "$d" ] && [ "$(java_major "$d")" = 17 ] && { echo "$d"; return; }
  done
  apt_install openjdk-17-jre-headless
  for d in /usr/lib/jvm/*; do
    [ -x "$d/bin/java" ] && [ ! -L "$d" ] && [ "$(java_major "$d")" = 17 ] && { echo "$d"; return; }
  done
  die "no Java 17 found under /usr/lib/jvm (set PARLEY_JAVA_HOME)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Both engines warn about the default open-file limit; take what the hard limit allows.
raise_nofile() { ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The last run's log is kept beside the new one: after a crash or kill it tells what happened.
keep_previous_log() { if [ -f "$1" ]; then mv -f "$1" "$1.previous"; fi; }

# Engines are started with setsid, so the pid in the pid file also names a process group that
# holds everything they spawned (Elasticsearch runs a launcher JVM and a server JVM).
stop_group() { # name pidfile
  local name=$1 pidfile=$2 pid
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  # SIGTERM lets Cassandra drain (flush memtables) and Elasticsearch close its shards cleanly.
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within 60s, killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$pidfile"
}

# wait_ready name pidfile logfile check-function
wait_ready() {
  local name=$1 pidfile=$2 logfile=$3 check=$4 start=$SECONDS
  while ! $check; do
    if ! pid_alive "$pidfile"; then
      log "$name exited during startup; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    if (( SECONDS - start >= TIMEOUT )); then
      log "$name not ready after ${TIMEOUT}s; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "$name ready (waited $((SECONDS - start))s)"
}

# ---------------------------------------------------------------- Cassandra

# Maven Central has no Cassandra binary tarball (apache-cassandra:tar.gz:bin is not published),
# so the server is assembled from cassandra-all and its runtime dependencies.
cassandra_install() {
  [ -f "$CASSANDRA_HOME/.complete" ] && return 0
  need_tools
  log "fetching Cassandra $CASSANDRA_VERSION from Maven Central"
  local tmp=$CASSANDRA_HOME.partial
  rm -rf "$tmp" && mkdir -p "$tmp"
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>parley.engines</groupId>
  <artifactId>cassandra-server</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  mvn_ -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib"
  ls "$tmp"/lib/jamm-*.jar >/dev/null || die "jamm jar missing from Cassandra's dependencies"
  touch "$tmp/.complete"
  rm -rf "$CASSANDRA_HOME" && mv "$tmp" "$CASSANDRA_HOME"
}

# Commit log sync. Cassandra's default, periodic, acknowledges writes before they are synced,
# and replay after a crash stops at the last sync marker, so `kill -9` loses up to a period of
# acknowledged writes (seen here with a 10 s period). Parley promises "acked means durable" and
# its chaos tests kill engines, so the default is batch: each write waits for an fsync, which
# concurrent writes share. Measured here (Python driver, 64 in flight): periodic ~7,600 writes/s
# and 1 ms per sequential write; batch ~2,550/s and 2 ms; group with a 10 ms window ~2,300/s and
# 10 ms. Benchmarks that want Cassandra's production default may set periodic.
commitlog_sync_settings() {
  case "${PARLEY_CASSANDRA_COMMITLOG_SYNC:-batch}" in
    batch) printf 'commitlog_sync: batch\n' ;;
    group) printf 'commitlog_sync: group\ncommitlog_sync_group_window: 10ms\n' ;;
    periodic) printf 'commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n' ;;
    *) die "PARLEY_CASSANDRA_COMMITLOG_SYNC must be batch, group or periodic" ;;
  esac
}

cassandra_config() {
  local sync
  sync=$(commitlog_sync_settings)
  mkdir -p "$CASSANDRA_RUN/conf"
  # Minimal single-node, loopback-only configuration. Cassandra rejects unknown keys, and the
  # directories all default to subdirectories of -Dcassandra.storagedir.
  cat >"$CASSANDRA_RUN/conf/cassandra.yaml" <<EOF
cluster_name: parley-test
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $CASSANDRA_STORAGE_PORT
start_native_transport: true
native_transport_port: $CASSANDRA_PORT
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$CASSANDRA_STORAGE_PORT"
$sync
# Tests drop and truncate a lot; snapshots would only fill the disk.
auto_snapshot: false
EOF
  cat >"$CASSANDRA_RUN/conf/logback.xml" <<'EOF'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{20} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

# The --add-exports/--add-opens list is the one Cassandra ships in conf/jvm17-server.options.
CASSANDRA_JPMS=(
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
)

# Readiness is a real CQL round trip: protocol v4 STARTUP, then
# SELECT release_version FROM system.local. Node is used because it is the project's runtime
# and no CQL client is installed yet; prints the version on success.
cql_release_version() {
  node -e '
    const net = require("net");
    const [port] = process.argv.slice(1);
    const frame = (stream, op, body) => {
      const h = Buffer.alloc(9);
      h[0] = 4; h.writeInt16BE(stream, 2); h[4] = op; h.writeInt32BE(body.length, 5);
      return Buffer.concat([h, body]);
    };
    const str = (s, n) => { const b = Buffer.from(s), l = Buffer.alloc(n);
      n === 2 ? l.writeUInt16BE(b.length) : l.writeInt32BE(b.length); return Buffer.concat([l, b]); };
    const startup = Buffer.concat([Buffer.from([0, 1]), str("CQL_VERSION", 2), str("3.0.0", 2)]);
    const query = Buffer.concat([str("SELECT release_version FROM system.local", 4), Buffer.from([0, 1, 0])]);
    const sock = net.connect(+port, "127.0.0.1");
    sock.setTimeout(3000, () => process.exit(1));
    sock.on("error", () => process.exit(1));
    let buf = Buffer.alloc(0);
    sock.on("connect", () => sock.write(frame(1, 0x01, startup)));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readInt32BE(5)) {
        const op = buf[4], body = buf.subarray(9, 9 + buf.readInt32BE(5));
        buf = buf.subarray(9 + body.length);
        if (op === 0x02) sock.write(frame(2, 0x07, query));           // READY -> send the query
        else if (op === 0x08) {                                        // RESULT -> the version
          const m = /\d+\.\d+\.\d+/.exec(body.toString("latin1"));
          if (m) { console.log(m[0]); process.exit(0); }
          process.exit(1);
        } else process.exit(1);                                        // ERROR or anything else
      }
    });
  ' "$CASSANDRA_PORT"
}

cassandra_ready() {
  grep -q "Starting listening for CQL clients" "$CASSANDRA_RUN/cassandra.log" 2>/dev/null &&
    cql_release_version >/dev/null 2>&1
}

cassandra_launch() {
  commitlog_sync_settings >/dev/null  # reject a bad setting before stopping or wiping anything
  cassandra_install
  cassandra_stop
  port_open "$CASSANDRA_PORT" && die "port $CASSANDRA_PORT is taken by another process (set PARLEY_CASSANDRA_PORT)"
  port_open "$CASSANDRA_STORAGE_PORT" && die "port $CASSANDRA_STORAGE_PORT is taken (set PARLEY_CASSANDRA_STORAGE_PORT)"
  if [ "$KEEP_DATA" != 1 ]; then rm -rf "$CASSANDRA_RUN/data"; fi
  mkdir -p "$CASSANDRA_RUN/data"
  cassandra_config
  local java_home jamm
  java_home=$(find_java17)
  jamm=("$CASSANDRA_HOME"/lib/jamm-*.jar)
  keep_previous_log "$CASSANDRA_RUN/cassandra.log"
  log "starting Cassandra $CASSANDRA_VERSION on 127.0.0.1:$CASSANDRA_PORT (log $CASSANDRA_RUN/cassandra.log)"
  raise_nofile
  mkdir -p "$CASSANDRA_RUN/triggers"
  setsid "$java_home/bin/java" \
    -Xms256m -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -XX:+HeapDumpOnOutOfMemoryError \
    -XX:HeapDumpPath="$CASSANDRA_RUN" \
    "-javaagent:${jamm[0]}" -Djdk.attach.allowAttachSelf=true \
    "${CASSANDRA_JPMS[@]}" \
    -Djava.net.preferIPv4Stack=true \
    -Dio.netty.tryReflectionSetAccessible=true \
    -Dcassandra-foreground=yes \
    "-Dcassandra.config=file://$CASSANDRA_RUN/conf/cassandra.yaml" \
    "-Dcassandra.storagedir=$CASSANDRA_RUN/data" \
    "-Dcassandra.logdir=$CASSANDRA_RUN" \
    "-Dlogback.configurationFile=file://$CASSANDRA_RUN/conf/logback.xml" \
    "-Dcassandra.triggers_dir=$CASSANDRA_RUN/triggers" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.shutdown_announce_in_ms=0 \
    -cp "$CASSANDRA_HOME/lib/*" org.apache.cassandra.service.CassandraDaemon \
    >"$CASSANDRA_RUN/cassandra.log" 2>&1 </dev/null &
  echo $! >"$CASSANDRA_RUN/pid"
}

cassandra_wait() { wait_ready cassandra "$CASSANDRA_RUN/pid" "$CASSANDRA_RUN/cassandra.log" cassandra_ready; }

cassandra_stop() { stop_group cassandra "$CASSANDRA_RUN/pid"; }

# ---------------------------------------------------------------- Elasticsearch

es_install() {
  [ -f "$ES_HOME/.complete" ] && return 0
  need_tools
  log "fetching Elasticsearch $ES_VERSION from Maven Central"
  local tmp=$ES_HOME.partial
  rm -rf "$tmp" && mkdir -p "$tmp"
  # The integ-test-zip is the only Elasticsearch server build on Maven Central: no bundled JDK
  # and only a few modules (see scripts/ENGINES-NOTES.md).
  mvn_ org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$tmp"
  unzip -q "$tmp/elasticsearch-$ES_VERSION.zip" -d "$tmp"
  mv "$tmp/elasticsearch-$ES_VERSION" "$tmp/home"
  rm "$tmp/elasticsearch-$ES_VERSION.zip"
  touch "$tmp/home/.complete"
  rm -rf "$ES_HOME" && mv "$tmp/home" "$ES_HOME" && rm -rf "$tmp"
}

es_user() {
  [ "$(id -u)" = 0 ] || return 0
  id "$ES_USER" >/dev/null 2>&1 ||
    useradd --system --home-dir "$ES_BASE" --create-home --shell /usr/sbin/nologin "$ES_USER"
  mkdir -p "$ES_BASE"
  chown "$ES_USER:$ES_USER" "$ES_BASE"
  chmod 755 "$ES_BASE"
}

es_health() { curl -fsS --max-time 3 "http://127.0.0.1:$ES_PORT/_cluster/health" 2>/dev/null; }

es_ready() { es_health | grep -Eq '"status":"(green|yellow)"'; }

es_launch() {
  es_user
  es_install
  es_stop
  port_open "$ES_PORT" && die "port $ES_PORT is taken by another process (set PARLEY_ES_PORT)"
  if [ "$KEEP_DATA" != 1 ]; then rm -rf "$ES_RUN/data"; fi
  # A private copy of config/: Elasticsearch writes its keystore there on first start.
  mkdir -p "$ES_RUN/data" "$ES_RUN/logs" "$ES_RUN/tmp"
  rm -rf "$ES_RUN/config" && cp -r "$ES_HOME/config" "$ES_RUN/config"
  local java_home run_as=() settings=()
  java_home=$(find_java17)
  if [ "$(id -u)" = 0 ]; then
    chown -R "$ES_USER:$ES_USER" "$ES_BASE/run"
    run_as=(setpriv "--reuid=$ES_USER" "--regid=$ES_USER" --init-groups env "HOME=$ES_BASE")
  fi
  settings=(
    -Ecluster.name=parley-test -Enode.name=parley
    -Ediscovery.type=single-node -Enetwork.host=127.0.0.1 "-Ehttp.port=$ES_PORT"
    "-Epath.data=$ES_RUN/data" "-Epath.logs=$ES_RUN/logs"
    # The disk watermarks would turn indices read-only on a nearly full test disk.
    -Ecluster.routing.allocation.disk.threshold_enabled=false
  )
  # Security would demand TLS and passwords; setting the key without the module is an error.
  if [ -d "$ES_HOME/modules/x-pack-security" ]; then settings+=(-Expack.security.enabled=false); fi
  keep_previous_log "$ES_RUN/stdout.log"
  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT (log $ES_RUN/stdout.log)"
  raise_nofile
  ES_JAVA_HOME=$java_home ES_JAVA_OPTS="-Xms512m -Xmx512m" \
    ES_PATH_CONF=$ES_RUN/config ES_TMPDIR=$ES_RUN/tmp \
    setsid "${run_as[@]}" "$ES_HOME/bin/elasticsearch" "${settings[@]}" \
    >"$ES_RUN/stdout.log" 2>&1 </dev/null &
  echo $! >"$ES_RUN/pid"
}

es_wait() { wait_ready elasticsearch "$ES_RUN/pid" "$ES_RUN/stdout.log" es_ready; }

es_stop() { stop_group elasticsearch "$ES_RUN/pid"; }

# ---------------------------------------------------------------- commands

status() {
  local v
  if pid_alive "$CASSANDRA_RUN/pid"; then
    v=$(cql_release_version 2>/dev/null || echo "not answering")
    echo "cassandra      running  pid $(cat "$CASSANDRA_RUN/pid")  127.0.0.1:$CASSANDRA_PORT  release_version $v"
  else
    echo "cassandra      stopped"
  fi
  if pid_alive "$ES_RUN/pid"; then
    v=$(es_health | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    echo "elasticsearch  running  pid $(cat "$ES_RUN/pid")  127.0.0.1:$ES_PORT  health ${v:-not answering}"
  else
    echo "elasticsearch  stopped"
  fi
}

print_env() {
  echo "export PARLEY_CASSANDRA_CONTACT_POINTS=127.0.0.1:$CASSANDRA_PORT"
  # SimpleSnitch puts the node in datacenter1; the Node driver needs the local data centre name.
  echo "export PARLEY_CASSANDRA_LOCAL_DC=datacenter1"
  echo "export PARLEY_ELASTICSEARCH_URL=http://127.0.0.1:$ES_PORT"
}

engines() { # expand the engine argument into a list
  case "${1:-all}" in
    all) echo cassandra elasticsearch ;;
    cassandra | elasticsearch) echo "$1" ;;
    es) echo elasticsearch ;;
    *) die "unknown engine '$1' (cassandra, elasticsearch or all)" ;;
  esac
}

run() { # action engine
  case "$2" in
    cassandra) "cassandra_$1" ;;
    elasticsearch) "es_$1" ;;
  esac
}

# Starting is split into launch and wait so that `start all` boots both JVMs at once.
start() {
  local e f
  for e in $ENGINES; do run launch "$e"; done
  for e in $ENGINES; do
    if ! run wait "$e"; then
      # Leave nothing half-started behind: a failed start stops what it launched.
      for f in $ENGINES; do run stop "$f"; done
      exit 1
    fi
  done
}

cmd=${1:-}
ENGINES=$(engines "${2:-all}")
case "$cmd" in
  start) start ;;
  stop) for e in $ENGINES; do run stop "$e"; done ;;
  restart) KEEP_DATA=1 start ;;  # launching stops a running engine first
  status) status ;;
  env) print_env ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
