#!/usr/bin/env bash
# Offline validation of deploy/: the Dockerfile, the Helm chart, the example
# sidecar chart and the plain Kubernetes manifests. Needs Go and the Go module
# proxy (or a warm module cache); no Docker, no cluster, no other network.
#
#   bash deploy/validate.sh
#
# Steps:
#   1. build the tools of deploy/tools (helm, helm-unittest, kustomize,
#      kubectl-validate) into a cache keyed by their go.mod/go.sum, or reuse it;
#   2. go vet and go test of deploy/tools: the checking programs (envcheck,
#      valuesdoc, podsecurity, containermatch, imagecheck, metricscheck), and
#      BuildKit's build checks plus property checks of deploy/Dockerfile;
#   3. helm lint --strict of the chart with its defaults and each ci/*.yaml;
#   4. helm template of each ci/*.yaml, of the example sidecar chart, and
#      kustomize build of deploy/kubernetes/kustomize;
#   5. helm-unittest of both charts;
#   6. kubectl-validate of everything rendered and of deploy/kubernetes/*.yaml
#      against Kubernetes' own OpenAPI schemas (built into kubectl-validate);
#   6b. podsecurity: every pod rendered above and in deploy/kubernetes/*.yaml
#      passes Pod Security "restricted" (latest), by the evaluator of the
#      PodSecurity admission controller (k8s.io/pod-security-admission);
#   6c. containermatch: the keygate container that kubernetes/sidecar.yaml and
#      the kustomize patch copy is the one the chart's named template renders
#      (the example chart includes it);
#   7. envcheck: every KEYGATE_* variable set anywhere is in README.md's
#      table, every keygate container sets KEYGATE_UPSTREAM_URL and a token
#      source (the tokens file, the token store, a JWT key or introspection),
#      no credential is a literal value (only its *_FILE twin is set), every
#      *_FILE path lies on a mounted ConfigMap or Secret key, `keygate check`
#      accepts the policy and tokens found, and every variable of the table
#      is set somewhere (-cover), so the chart follows new variables;
#   8. promtool check rules and promtool test rules of the alert rules (one
#      unit test per alert), when promtool is installed;
#   9. valuesdoc: values.yaml, values.schema.json and deploy/README.md's values
#      table agree.
#
# Environment:
#   KEYGATE_TOOLS_CACHE  tool cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/keygate-tools)
#   KEEP=1               keep the work directory with the rendered manifests
set -euo pipefail

deploy=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$deploy")
chart=$deploy/helm/keygate

# Kubernetes versions: the newest kubectl-validate v0.0.4 has schemas for
# (it would fetch newer ones from GitHub), and the chart's minimum.
kube_version=1.30.0
min_kube_version=1.25.0

work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-validate.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/rendered" "$work/helm" "$work/bin"
# No cluster, no user configuration: helm and kubectl-validate stay offline.
export KUBECONFIG="$work/no-kubeconfig"
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
unset HELM_PLUGINS HELM_KUBECONTEXT
export CGO_ENABLED=0

t_start=$SECONDS
t_step=$SECONDS
step() {
  echo "== $* (at $((SECONDS - t_start))s)"
  t_step=$SECONDS
}
done_step() { echo "   ok in $((SECONDS - t_step))s"; }

# --- 1. tools ----------------------------------------------------------------
# The cache key covers everything that decides the binaries: the Go version,
# both tool modules' go.mod and go.sum, and this build recipe.
kube_minor=$(echo "$kube_version" | cut -d. -f2)
# helm's default Kubernetes version (Capabilities, lint deprecations) is set at
# link time; `go build` alone would leave it at 1.20, below the chart's floor.
k8s_ldflags=""
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  k8s_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
done
ldflags="-s -w$k8s_ldflags"
key=$( { go version; cat "$deploy/tools/go.mod" "$deploy/tools/go.sum" \
  "$deploy/tools/kubectl-validate/go.mod" "$deploy/tools/kubectl-validate/go.sum"; echo "$ldflags"; } \
  | sha256sum | cut -c1-16)
cache=${KEYGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate-tools}
bin=$cache/$key/bin
tools=(helm helm-unittest kustomize kubectl-validate)
have_all=1
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || have_all=0; done
if [ $have_all = 1 ]; then
  step "tools: reusing $bin"
else
  step "tools: building into $bin (first run for this go.sum; later runs reuse it)"
  tmp_bin="$cache/$key/bin.tmp.$$"
  rm -rf "$tmp_bin" && mkdir -p "$tmp_bin"
  (cd "$deploy/tools" && go build -trimpath -ldflags="$ldflags" -o "$tmp_bin/" \
    helm.sh/helm/v3/cmd/helm \
    github.com/helm-unittest/helm-unittest/cmd/helm-unittest \
    sigs.k8s.io/kustomize/kustomize/v5)
  # kubectl-validate pins older Kubernetes libraries than helm: its own module.
  (cd "$deploy/tools/kubectl-validate" && go build -trimpath -ldflags="-s -w" -o "$tmp_bin/" sigs.k8s.io/kubectl-validate)
  rm -rf "$bin" && mv "$tmp_bin" "$bin"
  # Older keys are dead weight once go.sum moved on.
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
fi
(cd "$deploy/tools" && go build -o "$work/bin/" ./envcheck ./valuesdoc ./podsecurity ./containermatch)
(cd "$repo" && go build -o "$work/bin/keygate" ./cmd/keygate)
export PATH="$bin:$work/bin:$PATH"
modver() { awk -v m="$1" '$1 == m && NF >= 2 {print $2; exit}' "$2"; }
echo "   helm $(modver helm.sh/helm/v3 "$deploy/tools/go.mod") (built for Kubernetes $kube_version), helm-unittest $(modver github.com/helm-unittest/helm-unittest "$deploy/tools/go.mod"), kustomize $(modver sigs.k8s.io/kustomize/kustomize/v5 "$deploy/tools/go.mod"), kubectl-validate $(modver sigs.k8s.io/kubectl-validate "$deploy/tools/kubectl-validate/go.mod")"
done_step

# --- 2. the tools' own tests and the Dockerfile --------------------------------
step "go vet and go test of deploy/tools (the checkers below, imagecheck, metricscheck, Dockerfile build checks)"
(cd "$deploy/tools" && go vet ./... && go test ./...)
done_step

# ci/*.yaml may say "# validate: kube-version=X.Y.Z" to render for another version.
kube_version_of() {
  local v
  v=$(sed -n 's/^# validate: kube-version=//p' "$1")
  echo "${v:-$kube_version}"
}

# --- 3. lint -------------------------------------------------------------------
step "helm lint --strict (defaults and each ci/*.yaml)"
helm lint --strict --kube-version "$kube_version" "$chart" >"$work/lint.log" 2>&1 || { cat "$work/lint.log"; exit 1; }
for values in "$chart"/ci/*.yaml; do
  helm lint --strict --kube-version "$(kube_version_of "$values")" --values "$values" "$chart" >"$work/lint.log" 2>&1 \
    || { echo "helm lint failed with $values:"; cat "$work/lint.log"; exit 1; }
done
done_step

# --- 4. render -----------------------------------------------------------------
step "helm template of each ci/*.yaml, the example sidecar chart, and kustomize build"
gateway_files=()
for values in "$chart"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  out="$work/rendered/keygate-$name.yaml"
  helm template ci "$chart" --namespace licensing --kube-version "$(kube_version_of "$values")" --values "$values" >"$out"
  echo "$(kube_version_of "$values")" >"$out.kube-version"
done
# The example chart depends on ../../helm/keygate: build it in a copy with the
# same layout, as a user would (helm dependency build), leaving deploy/ clean.
mkdir -p "$work/tree/kubernetes" "$work/tree/helm"
cp -R "$deploy/kubernetes/sidecar-chart" "$work/tree/kubernetes/"
cp -R "$chart" "$work/tree/helm/"
example="$work/tree/kubernetes/sidecar-chart"
helm dependency build "$example" >"$work/dep.log" 2>&1 || { cat "$work/dep.log"; exit 1; }
helm lint --strict --kube-version "$kube_version" "$example" >"$work/lint.log" 2>&1 || { cat "$work/lint.log"; exit 1; }
helm template demo "$example" --namespace licensing --kube-version "$kube_version" >"$work/rendered/sidecar-chart.yaml"
kustomize build "$deploy/kubernetes/kustomize" >"$work/rendered/kustomize.yaml"
ls "$work/rendered" | grep -v kube-version | sed 's/^/   /'
done_step

# --- 5. chart unit tests -------------------------------------------------------
step "helm-unittest (deploy/helm/keygate/tests, deploy/kubernetes/sidecar-chart/tests)"
helm-unittest --color=false "$chart" "$example"
done_step

# --- 6. schemas ----------------------------------------------------------------
step "kubectl-validate against Kubernetes $kube_version schemas (and $min_kube_version where ci/ asks)"
validate() { # version files...
  local v=$1
  shift
  kubectl-validate --version "${v%.0}" --local-crds "$deploy/tools/crds" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g; /^$/d'
  return "${PIPESTATUS[0]}"
}
failed=0
for f in "$work"/rendered/*.yaml; do
  v=$kube_version
  [ -f "$f.kube-version" ] && v=$(cat "$f.kube-version")
  validate "$v" "$f" || failed=1
done
validate "$kube_version" "$deploy"/kubernetes/*.yaml || failed=1
# The oldest supported Kubernetes must take the manifests that work without the sleep action.
validate "$min_kube_version" "$work/rendered/keygate-gateway-kube125-values.yaml" || failed=1
[ $failed = 0 ] || { echo "kubectl-validate: invalid manifests (above)"; exit 1; }
done_step

# --- 6b. Pod Security -------------------------------------------------------------
step "podsecurity: every rendered pod against Pod Security \"restricted\" (k8s.io/pod-security-admission)"
podsecurity "$work"/rendered/*.yaml "$deploy"/kubernetes/*.yaml
done_step

# --- 6c. the hand-copied sidecar -----------------------------------------------------
step "containermatch: the keygate container of kubernetes/sidecar.yaml and the kustomization is the chart's"
containermatch -want "$work/rendered/sidecar-chart.yaml" "$deploy/kubernetes/sidecar.yaml" "$work/rendered/kustomize.yaml"
done_step

# --- 7. KEYGATE_* variables ------------------------------------------------------
step "envcheck: KEYGATE_* variables against README.md (both ways), required variables and a token source, no literal credentials, mounted files, keygate check"
envcheck -readme "$repo/README.md" -keygate "$work/bin/keygate" -cover \
  "$work"/rendered/*.yaml "$deploy"/kubernetes/*.yaml
done_step

# --- 8. alert rules -------------------------------------------------------------
# promtool comes with Debian's prometheus package (CI installs it; REQUIRE_PROMTOOL=1 makes it mandatory).
if command -v promtool >/dev/null 2>&1; then
  step "promtool check rules and promtool test rules (helm/keygate/files/alerts*.yaml)"
  promtool check rules "$chart/files/alerts.yaml"
  (cd "$chart/files" && promtool test rules alerts_test.yaml)
  done_step
elif [ "${REQUIRE_PROMTOOL:-}" = 1 ]; then
  echo "promtool is not installed (apt-get install prometheus) and REQUIRE_PROMTOOL=1"
  exit 1
else
  echo "== SKIPPED: promtool not installed (apt-get install prometheus): alert rules unchecked"
fi

# --- 9. values documentation -----------------------------------------------------
step "valuesdoc: values.yaml, values.schema.json and deploy/README.md agree"
valuesdoc -chart "$chart" -doc "$deploy/README.md"
done_step

echo "validate.sh: all checks passed in $((SECONDS - t_start))s"
