#!/usr/bin/env bash
# Builds the overture image with ko and applies, in dependency order: the
# namespace, brokers/ (Broker + its ConfigMap), every function and service as
# a Knative Service with the SinkBinding and the CDC ContainerSource (rendered
# by `overture deploy render`), then triggers/ (Triggers and PingSources).
# Needs kubectl and ko, and a cluster from `make kind-up` (or any Knative
# cluster with the Kafka broker: set KO_DOCKER_REPO to a registry it pulls from).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE="${NAMESPACE:-overture}"
for tool in kubectl ko go; do
  command -v "$tool" >/dev/null || { echo "deploy: $tool is required (see docs/deploy.md)" >&2; exit 1; }
done
if [ -z "${KO_DOCKER_REPO:-}" ]; then
  # On kind, ko loads images straight into the cluster's nodes.
  export KO_DOCKER_REPO=kind.local KIND_CLUSTER_NAME=overture
fi

kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$NAMESPACE" -f brokers/
if [ "$KO_DOCKER_REPO" = kind.local ]; then
  # kind-up's Kafka has one node: topics cannot have three replicas.
  kubectl patch configmap/kafka-broker-config -n "$NAMESPACE" --type merge \
    -p '{"data":{"default.topic.replication.factor":"1"}}'
fi
go run ./cmd/overture deploy render -namespace "$NAMESPACE" | ko resolve -f - | kubectl apply -f -
kubectl apply -n "$NAMESPACE" -f triggers/
kubectl wait ksvc --all --for=condition=Ready --timeout=300s -n "$NAMESPACE"
kubectl get ksvc -n "$NAMESPACE"
