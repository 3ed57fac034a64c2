#!/usr/bin/env bash
# Starts a single OpenSearch 2.19 node on loopback from Maven Central jars (no
# tarball, no Docker), in the foreground, until Ctrl-C. Data lives under
# ${OPENSEARCH_HOME:-.data/opensearch}. Then run the platform with
#   SEARCH_BACKEND=opensearch OPENSEARCH_URL=http://127.0.0.1:${OPENSEARCH_PORT:-9200}
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/deps/opensearch.sh
HOME_DIR="${OPENSEARCH_HOME:-.data/opensearch}"
PORT="${OPENSEARCH_PORT:-9200}"
TPORT="${OPENSEARCH_TRANSPORT_PORT:-9300}"
HEAP="${OPENSEARCH_HEAP:-512m}"
mkdir -p "$HOME_DIR"
cat > "$HOME_DIR/log4j2.properties" <<'LOG'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.node.name = org.opensearch.node
logger.node.level = info
LOG
exec java "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseSerialGC \
  "-Dlog4j2.configurationFile=$HOME_DIR/log4j2.properties" \
  -Dopensearch.set.netty.runtime.available.processors=false \
  -cp ".cache/opensearch/lib/*:.cache/opensearch/classes" \
  OvertureNode "$HOME_DIR/home" "$PORT" "$TPORT"
