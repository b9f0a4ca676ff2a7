#!/usr/bin/env bash
# Builds keygate's container image from deploy/Dockerfile, offline: the binary
# is compiled here by go build, the image adds only the files it needs, and the
# base is empty (FROM scratch), so no registry is reached.
#
#   bash deploy/image/build.sh            # = make image: keygate:dev for this machine's architecture
#   bash deploy/image/build.sh context    # = make image-context: only the build context, for docker buildx
#
# Environment:
#   IMAGE     tag to build (default keygate:dev)
#   VERSION   version stamped into the binary and the image label (default git describe, else dev)
#   ARCHES    GOARCH values, space-separated (default go env GOARCH); more than one builds a podman
#             manifest list named IMAGE (docker: use `context` and docker buildx)
#   CONTEXT   build context directory (default bin/image), rebuilt from scratch on each run
#   ENGINE    podman or docker (default: podman if installed, else docker)
#   CA_BUNDLE the CA certificates to ship (default /etc/ssl/certs/ca-certificates.crt)
#
# The context holds one directory per platform, linux-<arch>/, that becomes the
# image's root: /keygate, /etc/passwd, /etc/group, /etc/ssl/certs/ca-certificates.crt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-build}
case $mode in
build | context) ;;
*)
  echo "usage: $0 [build|context]" >&2
  exit 2
  ;;
esac
image=${IMAGE:-keygate:dev}
version=${VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}
arches=${ARCHES:-$(go env GOARCH)}
context=${CONTEXT:-$repo/bin/image}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

# The version lands in -ldflags and a label: keep it to characters that need no quoting.
if ! [[ $version =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
  echo "VERSION=$version: use letters, digits and . _ + - only" >&2
  exit 2
fi
if [ ! -s "$ca" ]; then
  echo "CA bundle $ca is missing: install ca-certificates or set CA_BUNDLE" >&2
  exit 1
fi

rm -rf "$context"
mkdir -p "$context"
for arch in $arches; do
  root=$context/linux-$arch
  mkdir -p "$root/etc/ssl/certs"
  # Static (no cgo), no local paths (-trimpath), no symbol tables (-s -w), the
  # version stamped, and the time zone database embedded (timetzdata), so the
  # image needs no /usr/share/zoneinfo.
  (cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -tags timetzdata \
    -ldflags "-s -w -X main.version=$version" -o "$root/keygate" ./cmd/keygate)
  # Names for the numeric ids, for tools that print them; keygate needs neither.
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"
  cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 0555 "$root/keygate"
  chmod 0444 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt"
  find "$root" -type d -exec chmod 0755 {} +
  echo "image context: $root (keygate $version, linux/$arch)"
done
[ "$mode" = context ] && exit 0

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then
    engine=podman
  elif command -v docker >/dev/null 2>&1; then
    engine=docker
  else
    echo "neither podman nor docker is installed (apt-get install podman), or use: $0 context" >&2
    exit 1
  fi
fi
set -- $arches
if [ $# -eq 1 ]; then
  "$engine" build -f "$repo/deploy/Dockerfile" --platform "linux/$1" --build-arg VERSION="$version" -t "$image" "$context"
elif [ "$engine" = podman ]; then
  platforms=$(printf 'linux/%s,' "$@")
  podman manifest rm "$image" >/dev/null 2>&1 || true
  podman build -f "$repo/deploy/Dockerfile" --platform "${platforms%,}" --build-arg VERSION="$version" --manifest "$image" "$context"
else
  echo "several ARCHES with docker: run $0 context, then docker buildx build --platform ... $context (see deploy/Dockerfile)" >&2
  exit 2
fi
