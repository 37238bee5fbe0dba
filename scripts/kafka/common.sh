# shellcheck shell=bash
# What scripts/kafka.sh (one broker) and scripts/kafka-cluster.sh (three brokers) share: the
# Kafka version and where its jars are cached, a CLI runner and the cluster-id generator.
# Source it after scripts/lib.sh (it reads NOTIFY_CACHE).

KAFKA_VERSION=4.1.1
KAFKA_HOME="$NOTIFY_CACHE/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"

# kafka_tool CLASS ARGS...: run a Kafka CLI class with quiet logging and fast JVM start.
kafka_tool() {
  local cls=$1
  shift
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto \
    -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.properties" \
    -Dnotify.log.level=WARN -Dnotify.log.target=SYSTEM_ERR \
    -cp "$KAFKA_LIBS/*" "$cls" "$@"
}

# cluster_id: a Kafka cluster id: 16 random bytes, base64url without padding, not starting
# with '-'.
cluster_id() {
  local id
  while :; do
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    case "$id" in -*) ;; *) echo "$id"; return ;; esac
  done
}
