#!/usr/bin/env bash
# Fetches OpenSearch 2.19.x (server, netty4 transport, analysis-common,
# mapper-extras) and log4j-core from Maven Central into ./.cache/opensearch/lib
# and compiles the tiny launcher in hack/opensearch/. Idempotent: does nothing
# when the jars and the compiled launcher are already there.
# Java 17 is the newest Java on this machine, and 2.19.x is the newest OpenSearch
# line that runs on it (3.x needs Java 21).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${OPENSEARCH_VERSION:-2.19.6}"
LOG4J="${LOG4J_VERSION:-2.25.4}"
DIR=.cache/opensearch
LIB="$DIR/lib"
CLASSES="$DIR/classes"
SRC=hack/opensearch/OvertureNode.java
STAMP="$DIR/.stamp-$VERSION"

# apt_install PKG: install, refreshing the package lists first when they are
# empty or stale (a fresh machine has none).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$1" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$1"; }
}

if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt_install openjdk-17-jdk-headless
  else
    echo "opensearch: java 17 (javac) is required" >&2; exit 1
  fi
fi
if ! command -v mvn >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt_install maven
  else
    echo "opensearch: maven is required" >&2; exit 1
  fi
fi

mkdir -p "$DIR"
if [ ! -f "$STAMP" ]; then
  cat > "$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>music.overture</groupId>
  <artifactId>opensearch-node</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>transport-netty4-client</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>analysis-common</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>mapper-extras-client</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIB"
  mvn -q -B -f "$DIR/pom.xml" dependency:copy-dependencies -DoutputDirectory="$PWD/$LIB" -DincludeScope=runtime
  touch "$STAMP"
fi
if [ ! -f "$CLASSES/OvertureNode.class" ] || [ "$SRC" -nt "$CLASSES/OvertureNode.class" ]; then
  mkdir -p "$CLASSES"
  javac -d "$CLASSES" -cp "$LIB/*" "$SRC"
fi
