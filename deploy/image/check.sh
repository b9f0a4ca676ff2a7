#!/usr/bin/env bash
# Builds the image (deploy/image/build.sh) and runs it as Kubernetes would,
# with deploy/tools/imagecheck: read-only root, no capabilities,
# no-new-privileges, the image's own user; /readyz, a request through to a
# real backend, a bad configuration, SIGTERM with the shutdown delay and the
# drain; the files, the config and the size budget of the image; then
# tools/metricscheck: every metric the dashboard and the alert rules query is
# in that keygate's /metrics.
#
#   bash deploy/image/check.sh        # = make image-check
#
# Needs Go, the Go module proxy (or a warm cache) and podman (or docker); no
# registry. Environment: IMAGE (default keygate:imagecheck), ENGINE, and
# METRICS_OUT, where to save the running keygate's /metrics (default: not kept).
# Every wait is bounded; imagecheck removes the containers it starts.
set -euo pipefail

deploy=$(cd "$(dirname "$0")/.." && pwd)
repo=$(dirname "$deploy")
export IMAGE=${IMAGE:-keygate:imagecheck}
export VERSION=${VERSION:-imagecheck-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo dev)}
export CONTEXT=${CONTEXT:-$repo/bin/image}
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
fi
export ENGINE=$engine
arch=$(go env GOARCH)
export ARCHES=$arch

work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-imagecheck.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
timeout 900 bash "$deploy/image/build.sh" build
echo "   image built in $((SECONDS - t0))s"
metrics=${METRICS_OUT:-$work/metrics.txt}
(cd "$deploy/tools" && timeout 900 go build -o "$work/" ./imagecheck ./metricscheck)
timeout 600 "$work/imagecheck" -engine "$engine" -image "$IMAGE" -binary "$CONTEXT/linux-$arch/keygate" \
  -version "$VERSION" -metrics-out "$metrics"
# Every metric the dashboard and the alert rules query is one this keygate exports.
"$work/metricscheck" -metrics "$metrics" -rules "$deploy/helm/keygate/files/alerts.yaml" \
  -dashboard "$deploy/helm/keygate/files/dashboard.json"
"$engine" rmi "$IMAGE" >/dev/null 2>&1 || true
echo "image check: all passed in $((SECONDS - t0))s"
