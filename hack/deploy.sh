#!/usr/bin/env bash
# Deploys Overture into NAMESPACE (default overture) of the current kubectl
# context, in dependency order:
#   1. the namespace;
#   2. every Secret and ConfigMap of deploy/config.yaml (`overture deploy
#      config`): values from this environment or the KEY=value file
#      OVERTURE_ENV names, else what the cluster already holds, else
#      generated (random) or the in-cluster default;
#   3. the in-cluster dependencies named in DEPS (deploy/deps/NAME.yaml;
#      default all: postgres redis s3 smtp opensearch clickhouse), waiting
#      until they are ready — drop the ones you replace by managed services;
#   4. `overture deploy render` through `ko resolve` (images for
#      KO_PLATFORMS): brokers/, every function and service, the S3 event
#      source, CDC, the CDN POPs, triggers/;
#   5. waits for every Knative Service and workload.
# Before step 1 it builds the base image of deploy/image (ffmpeg and ffprobe
# for the ingest function, a non-root user) and points ko at it through
# KO_DEFAULTBASEIMAGE, unless KO_DEFAULTBASEIMAGE is already set.
# Needs kubectl, ko, go and docker (with buildx for a registry), and a
# cluster from `make kind-up` (or any Knative cluster with the Kafka broker;
# set KO_DOCKER_REPO to a registry it pulls from). See docs/deploy.md. No
# secret value is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE="${NAMESPACE:-overture}"
DEPS="${DEPS:-postgres redis s3 smtp opensearch clickhouse}"
waits=()
late_waits=()
for tool in kubectl ko go; do
  command -v "$tool" >/dev/null || { echo "deploy: $tool is required (see docs/deploy.md)" >&2; exit 1; }
done

if [ -z "${KO_DOCKER_REPO:-}" ]; then
  # On kind, ko loads images straight into the cluster's nodes.
  export KO_DOCKER_REPO=kind.local KIND_CLUSTER_NAME=overture
fi
if [ -z "${KO_PLATFORMS:-}" ]; then
  if [ "$KO_DOCKER_REPO" = kind.local ]; then
    # kind.local loads one image into the node: build the node's platform.
    KO_PLATFORMS="linux/$(kubectl get nodes -o jsonpath='{.items[0].status.nodeInfo.architecture}')"
  else
    KO_PLATFORMS=linux/amd64,linux/arm64
  fi
fi
RF_FLAG=()
if [ "$KO_DOCKER_REPO" = kind.local ]; then
  # kind-up's Kafka has one node: topics cannot have three replicas.
  RF_FLAG=(-replication-factor 1)
fi

# The base image (deploy/image/Dockerfile), tagged by a checksum of the
# Dockerfile; --pull picks up Debian's security updates.
if [ -z "${KO_DEFAULTBASEIMAGE:-}" ]; then
  command -v docker >/dev/null || { echo "deploy: docker is required to build deploy/image (or set KO_DEFAULTBASEIMAGE)" >&2; exit 1; }
  base_tag="$(cksum <deploy/image/Dockerfile | cut -d ' ' -f 1)"
  if [ "$KO_DOCKER_REPO" = kind.local ]; then
    # ko reads a ko.local/ base from the Docker daemon and loads the image
    # it builds on it into the node: no registry, no `kind load`.
    KO_DEFAULTBASEIMAGE="ko.local/overture-base:$base_tag"
    echo "== base image $KO_DEFAULTBASEIMAGE ($KO_PLATFORMS)"
    docker build --pull --platform "$KO_PLATFORMS" \
      -t "$KO_DEFAULTBASEIMAGE" -t ko.local/overture-base:latest deploy/image
  else
    # One multi-platform index in the registry ko pushes to; ko builds the
    # binary for each platform of it.
    KO_DEFAULTBASEIMAGE="$KO_DOCKER_REPO/overture-base:$base_tag"
    echo "== base image $KO_DEFAULTBASEIMAGE ($KO_PLATFORMS)"
    docker buildx build --pull --platform "$KO_PLATFORMS" \
      -t "$KO_DEFAULTBASEIMAGE" --push deploy/image
  fi
  export KO_DEFAULTBASEIMAGE
fi

overture() { go run ./cmd/overture "$@"; }

echo "== namespace $NAMESPACE"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -

echo "== Secrets and ConfigMaps (deploy/config.yaml)"
# What the cluster holds is read back so generated secrets keep their value
# (the in-cluster PostgreSQL was initialised with its password). The values
# travel through pipes only.
kubectl get secrets,configmaps -n "$NAMESPACE" -l overture.music/role=config -o json |
  overture deploy config -namespace "$NAMESPACE" -existing - |
  kubectl apply -n "$NAMESPACE" -f -

echo "== dependencies: $DEPS"
for dep in $DEPS; do
  case "$dep" in
    smtp) file=deploy/deps/mailpit.yaml workload=deployment/mailpit ;;
    postgres | redis | s3 | opensearch | clickhouse) file="deploy/deps/$dep.yaml" workload="statefulset/$dep" ;;
    *) echo "deploy: no dependency $dep (DEPS takes postgres redis s3 smtp opensearch clickhouse)" >&2; exit 1 ;;
  esac
  kubectl apply -n "$NAMESPACE" -f "$file"
  if [ "$dep" = s3 ]; then
    # versitygw exits while its webhook (ingest-source, deployed below) does
    # not answer: it is waited for at the end.
    late_waits+=("$workload")
  else
    waits+=("$workload")
  fi
done
for w in "${waits[@]}"; do
  kubectl rollout status -n "$NAMESPACE" "$w" --timeout=600s
done

echo "== Overture (images for $KO_PLATFORMS)"
overture deploy render -namespace "$NAMESPACE" "${RF_FLAG[@]}" |
  ko resolve --platform="$KO_PLATFORMS" -f - |
  kubectl apply -f -

echo "== waiting"
kubectl wait ksvc --all --for=condition=Ready --timeout=600s -n "$NAMESPACE"
kubectl rollout status deployment/cdc -n "$NAMESPACE" --timeout=300s
for w in $(kubectl get statefulset -n "$NAMESPACE" -l overture.music/role=edge -o name) "${late_waits[@]}"; do
  kubectl rollout status -n "$NAMESPACE" "$w" --timeout=600s
done
kubectl get ksvc,deployment,statefulset -n "$NAMESPACE"
