#!/usr/bin/env bash
# Creates the kind cluster of kind-config.yaml and installs Knative Serving
# with Kourier, Knative Eventing, the Kafka broker and a one-node Kafka
# (Strimzi). Needs docker, kind, kubectl and curl. Idempotent: an existing cluster
# is reused and `kubectl apply` converges.
#
# No local registry: hack/deploy.sh builds the base image into the Docker
# daemon (ko.local/overture-base) and ko (KO_DOCKER_REPO=kind.local) loads
# each image it builds straight into the node; Knative Serving does not
# resolve kind.local tags (its default registries-skipping-tag-resolving).
set -euo pipefail
cd "$(dirname "$0")/.."

KNATIVE_VERSION="${KNATIVE_VERSION:-knative-v1.18.0}"
# The Strimzi release the Kafka broker of Knative v1.18 is tested with
# (eventing-kafka-broker release-1.18, test/kafka/strimzi-cluster-operator.yaml).
STRIMZI_VERSION="${STRIMZI_VERSION:-0.45.0}"
CLUSTER=overture

for tool in docker kind kubectl curl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is required (see docs/deploy.md)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "kind-up: no Docker engine is running" >&2; exit 1; }

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --config kind-config.yaml
fi
kubectl config use-context "kind-$CLUSTER"

gh() { echo "https://github.com/$1/releases/download/$KNATIVE_VERSION/$2"; }
wait_ns() { kubectl wait deployment --all --for=condition=Available --timeout=300s -n "$1"; }

echo "== Knative Serving + Kourier"
kubectl apply -f "$(gh knative/serving serving-crds.yaml)"
kubectl apply -f "$(gh knative/serving serving-core.yaml)"
kubectl apply -f "$(gh knative-extensions/net-kourier kourier.yaml)"
kubectl patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
kubectl patch configmap/config-domain -n knative-serving --type merge \
  -p '{"data":{"127.0.0.1.sslip.io":""}}'
# Expose Kourier on the NodePorts kind-config.yaml maps to the host.
kubectl patch service/kourier -n kourier-system --type merge -p '{"spec":{"type":"NodePort","ports":[
  {"name":"http2","port":80,"protocol":"TCP","targetPort":8080,"nodePort":31080},
  {"name":"https","port":443,"protocol":"TCP","targetPort":8443,"nodePort":31443}]}}'
wait_ns knative-serving
wait_ns kourier-system

echo "== Knative Eventing + Kafka broker"
kubectl apply -f "$(gh knative/eventing eventing-crds.yaml)"
kubectl apply -f "$(gh knative/eventing eventing-core.yaml)"
kubectl apply -f "$(gh knative-extensions/eventing-kafka-broker eventing-kafka-controller.yaml)"
kubectl apply -f "$(gh knative-extensions/eventing-kafka-broker eventing-kafka-broker.yaml)"
# Sender identity and authorization (docs/security.md): brokers verify each
# sender's OIDC token, and accept only what an EventPolicy of
# brokers/eventpolicies.yaml allows; with no policy, nothing.
kubectl patch configmap/config-features -n knative-eventing --type merge \
  -p '{"data":{"authentication-oidc":"enabled","default-authorization-mode":"deny-all"}}'
wait_ns knative-eventing

echo "== Kafka (Strimzi, one node)"
kubectl create namespace kafka --dry-run=client -o yaml | kubectl apply -f -
strimzi="https://github.com/strimzi/strimzi-kafka-operator/releases/download/$STRIMZI_VERSION"
# The release's manifests name namespace myproject. Server-side: Strimzi's
# CRDs are too large for client-side apply's last-applied annotation, and a
# rerun must converge, not fail.
curl -fsSL "$strimzi/strimzi-cluster-operator-$STRIMZI_VERSION.yaml" |
  sed 's/namespace: .*/namespace: kafka/' |
  kubectl apply --server-side --force-conflicts -n kafka -f -
wait_ns kafka
# One dual-role KRaft node (KafkaNodePool + Kafka), replication factor 1.
kubectl apply -n kafka -f "https://raw.githubusercontent.com/strimzi/strimzi-kafka-operator/$STRIMZI_VERSION/examples/kafka/kraft/kafka-single-node.yaml"
kubectl wait kafka/my-cluster --for=condition=Ready --timeout=600s -n kafka

echo "kind-up: cluster $CLUSTER is ready; next: make deploy"
