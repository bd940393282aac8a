#!/usr/bin/env bash
# Weft on a kind cluster, end to end: create the cluster, build and load the image, install the
# chart, deploy the sample, and check traffic, mTLS and policy through the injected sidecars.
# .github/workflows/kind.yaml runs it; you can too (needs docker, kind, kubectl, helm).
#
#   e2e/kind/run.sh                 # every step, in order (the cluster is left running)
#   e2e/kind/run.sh STEP...         # only these steps, e.g.  e2e/kind/run.sh install deploy-sample
#   e2e/kind/run.sh delete-cluster
#
# Steps: create-cluster build-image load-image install deploy-sample check-control-plane
#        check-traffic check-mtls check-policy (the default list), and delete-cluster, diagnostics.
# install, deploy-sample and check-control-plane use only kubectl and helm against $KUBECONFIG's
# cluster: e2e/helm-install.e2e.test.ts runs them against the real kube-apiserver of the tests.
#
# Environment (defaults in brackets):
#   KIND [kind]  KUBECTL [kubectl]  HELM [helm]  DOCKER [docker]
#   CLUSTER_NAME [weft]  IMAGE [weft:0.1.0]
#   HELM_EXTRA_ARGS   more `helm upgrade --install` arguments, split on spaces []
#   INJECTION_LABEL   the label that gives weft-sample's pods sidecars [istio-injection=enabled]
#   WAIT_TIMEOUT      how long each wait may take [300s]
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
KIND="${KIND:-kind}"
KUBECTL="${KUBECTL:-kubectl}"
HELM="${HELM:-helm}"
DOCKER="${DOCKER:-docker}"
CLUSTER_NAME="${CLUSTER_NAME:-weft}"
IMAGE="${IMAGE:-weft:0.1.0}"
INJECTION_LABEL="${INJECTION_LABEL:-istio-injection=enabled}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-300s}"
read -r -a helm_extra <<<"${HELM_EXTRA_ARGS:-}"

log() { printf '[kind-e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# Retries "$@" until it succeeds, every 2 s, for at most $1 seconds (sidecars take their
# configuration asynchronously: never sleep-and-hope).
retry_for() {
  local seconds="$1"; shift
  local deadline=$(( $(date +%s) + seconds ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 2
  done
}

step_create_cluster() {
  log "kind create cluster --name $CLUSTER_NAME (kind-config.yaml)"
  "$KIND" create cluster --name "$CLUSTER_NAME" --config "$repo/kind-config.yaml" --wait "$WAIT_TIMEOUT"
}

step_build_image() {
  log "docker build -t $IMAGE ."
  "$DOCKER" build -t "$IMAGE" "$repo"
}

step_load_image() {
  log "kind load docker-image $IMAGE"
  "$KIND" load docker-image "$IMAGE" --name "$CLUSTER_NAME"
}

step_install() {
  local repository="${IMAGE%:*}" tag="${IMAGE##*:}"
  log "helm upgrade --install weft charts/weft -n weft-system (image $repository:$tag)"
  "$HELM" upgrade --install weft "$repo/charts/weft" --namespace weft-system --create-namespace \
    --set image.repository="$repository" --set image.tag="$tag" --set image.pullPolicy=IfNotPresent \
    "${helm_extra[@]}"
}

step_deploy_sample() {
  log "namespaces weft-sample ($INJECTION_LABEL) and weft-outside, then e2e/kind/sample.yaml and policy.yaml"
  # The label goes on before any pod is created, so the injector sees every sample pod.
  "$KUBECTL" create namespace weft-sample --dry-run=client -o yaml | "$KUBECTL" apply -f -
  "$KUBECTL" label namespace weft-sample "$INJECTION_LABEL" --overwrite
  "$KUBECTL" create namespace weft-outside --dry-run=client -o yaml | "$KUBECTL" apply -f -
  "$KUBECTL" apply -f "$repo/e2e/kind/sample.yaml"
  "$KUBECTL" apply -f "$repo/e2e/kind/policy.yaml"
}

# Without exec: the control plane is up and did its cluster-wide work, the sample is running.
step_check_control_plane() {
  log "control plane: rollout, webhook caBundles, istio-ca-root-cert; sample deployments available"
  "$KUBECTL" -n weft-system rollout status deployment/weft --timeout "$WAIT_TIMEOUT"
  local seconds="${WAIT_TIMEOUT%s}"
  ca_bundle_set() { [ -n "$("$KUBECTL" get "$1" -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" ]; }
  retry_for "$seconds" ca_bundle_set validatingwebhookconfiguration/weft-validator || fail "Weft never set the caBundle of validatingwebhookconfiguration weft-validator"
  retry_for "$seconds" ca_bundle_set mutatingwebhookconfiguration/weft-sidecar-injector || fail "Weft never set the caBundle of mutatingwebhookconfiguration weft-sidecar-injector"
  retry_for "$seconds" "$KUBECTL" -n weft-sample get configmap istio-ca-root-cert -o name >/dev/null || fail "no ConfigMap istio-ca-root-cert in weft-sample"
  "$KUBECTL" -n weft-sample wait deployment --all --for=condition=Available --timeout "$WAIT_TIMEOUT"
  "$KUBECTL" -n weft-outside wait deployment --all --for=condition=Available --timeout "$WAIT_TIMEOUT"
}

# curl from a Deployment's pod; prints the HTTP status (000 when the connection failed).
status_from() {
  local namespace="$1" deployment="$2" url="$3"
  "$KUBECTL" -n "$namespace" exec "deploy/$deployment" -c sleep -- curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true
}

step_check_traffic() {
  log "traffic: sleep -> web answers 200 through the sidecars, with the VirtualService's header"
  "$KUBECTL" -n weft-sample get pod -l app=web -o jsonpath='{range .items[*]}{.metadata.name}: {.spec.initContainers[*].name}{"\n"}{end}' >&2
  injected() { [ "$("$KUBECTL" -n weft-sample get pod -l app=web -o jsonpath='{.items[0].spec.initContainers[*].name}')" != "" ]; }
  injected || fail "web's pods have no injected init containers (is the injector on? label $INJECTION_LABEL)"
  web_ok() { [ "$(status_from weft-sample sleep http://web.weft-sample/)" = 200 ]; }
  retry_for 120 web_ok || fail "sleep -> web did not answer 200"
  local headers
  headers="$("$KUBECTL" -n weft-sample exec deploy/sleep -c sleep -- curl -s -D - -o /dev/null --max-time 5 http://web.weft-sample/)"
  grep -qi '^x-weft-route: web' <<<"$headers" || fail "sleep -> web lacks the VirtualService's x-weft-route header: $headers"
  local i
  for i in $(seq 1 20); do
    [ "$(status_from weft-sample sleep http://web.weft-sample/)" = 200 ] || fail "request $i of 20 from sleep to web failed"
  done
}

step_check_mtls() {
  log "mTLS: a pod without a sidecar cannot reach web (STRICT)"
  local status
  status="$(status_from weft-outside outside http://web.weft-sample/)"
  [ "$status" = 000 ] || fail "outside -> web answered $status; STRICT mTLS should refuse a plaintext client"
}

step_check_policy() {
  log "policy: intruder (another ServiceAccount) gets 403 from web"
  denied() { [ "$(status_from weft-sample intruder http://web.weft-sample/)" = 403 ]; }
  retry_for 60 denied || fail "intruder -> web was not refused with 403"
}

step_diagnostics() {
  "$KUBECTL" get pods -A -o wide || true
  "$KUBECTL" -n weft-system logs deployment/weft --tail=200 || true
  "$KUBECTL" get events -A --sort-by=.lastTimestamp | tail -50 || true
}

step_delete_cluster() {
  "$KIND" delete cluster --name "$CLUSTER_NAME"
}

default_steps=(create-cluster build-image load-image install deploy-sample check-control-plane check-traffic check-mtls check-policy)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${default_steps[@]}")
for step in "${steps[@]}"; do
  fn="step_${step//-/_}"
  declare -F "$fn" >/dev/null || fail "unknown step '$step' (steps: ${default_steps[*]} delete-cluster diagnostics)"
  started=$(date +%s)
  "$fn"
  log "$step: done in $(( $(date +%s) - started )) s"
done
