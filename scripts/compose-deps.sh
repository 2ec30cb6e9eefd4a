#!/usr/bin/env bash
# What `make up` and the compose test (it/compose_test.go) need beyond
# sediment:latest, installed only when missing or not current:
#
#   compose-deps.sh plugin      the docker compose CLI plugin (github.com/docker/compose/v5,
#                               built from source into $DOCKER_CONFIG/cli-plugins, default
#                               ~/.docker/cli-plugins) when `docker compose` does not answer
#   compose-deps.sh prometheus  ./bin/prometheus (github.com/prometheus/prometheus), the
#                               server of the Prometheus stand-in image
#   compose-deps.sh images      FROM scratch stand-ins named as deploy/compose.yaml's MinIO
#                               and Prometheus images, from ./bin/minio (scripts/minio.sh)
#                               and ./bin/prometheus (built here first), unless an image of
#                               that name is already there (a stand-in of the same pins, or
#                               the real public image)
#
# Nothing is pulled or downloaded but Go modules. First builds on a 2-CPU machine
# (no Go build cache): see README, "Compose with MinIO and Prometheus".
#
# Update a pin: COMPOSE_VERSION to a newer github.com/docker/compose/v5 release
# that builds with the project's Go; PROM_VERSION to a newer
# github.com/prometheus/prometheus v0.3XX.Y (Prometheus release v3.XX.Y), and
# the prom/prometheus tag in deploy/compose.yaml with it.
set -euo pipefail
COMPOSE_MODULE=github.com/docker/compose/v5
COMPOSE_VERSION=v5.6.0
PROM_MODULE=github.com/prometheus/prometheus
PROM_VERSION=v0.316.0

cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin
GO=${GO:-go}
compose_file=$root/deploy/compose.yaml
standins=$root/deploy/standins

# prom_release: Prometheus's release of the Go module version (v0.316.0 -> v3.16.0).
prom_release() {
  local v=${PROM_VERSION#v0.}
  echo "v${v:0:1}.${v:1}"
}

# go_build MODULE VERSION PKG DEST [LDFLAGS]: a static build of one command of
# MODULE@VERSION. Not `go install MODULE/PKG@VERSION`, which refuses modules
# whose go.mod has replace or exclude directives (docker/compose has): the
# module is downloaded, copied out of the read-only module cache and built in
# its own directory, as its main module.
go_build() {
  local module=$1 version=$2 pkg=$3 dest=$4 ldflags=${5:-} dir tmp start
  start=$(date +%s)
  dir=$(cd / && GOWORK=off "$GO" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "go mod download $module@$version gave no directory" >&2; exit 1; }
  tmp=$(mktemp -d)
  cp -R "$dir/." "$tmp/"
  chmod -R u+w "$tmp"
  mkdir -p "$(dirname "$dest")"
  (cd "$tmp" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$dest.tmp" "./$pkg")
  mv "$dest.tmp" "$dest"
  rm -rf "$tmp"
  echo "built $module@$version ./$pkg into $dest in $(($(date +%s) - start))s"
}

plugin() {
  if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    local plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    echo "installing the docker compose plugin $COMPOSE_MODULE@$COMPOSE_VERSION into $plugins (building from source)"
    go_build "$COMPOSE_MODULE" "$COMPOSE_VERSION" cmd "$plugins/docker-compose" \
      "-X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION"
    docker compose version
  fi
}

prometheus() {
  local want="$PROM_MODULE@$PROM_VERSION"
  if [ ! -x "$bin/prometheus" ] || [ "$(cat "$bin/prometheus.version" 2>/dev/null)" != "$want" ]; then
    echo "installing Prometheus $(prom_release) ($want) into $bin (building from source)"
    rm -f "$bin/prometheus.version"
    go_build "$PROM_MODULE" "$PROM_VERSION" cmd/prometheus "$bin/prometheus" \
      "-X github.com/prometheus/common/version.Version=$(prom_release | cut -c2-)"
    echo "$want" >"$bin/prometheus.version"
  fi
}

# compose_image NAME: the image deploy/compose.yaml names for NAME (minio/minio, prom/prometheus).
compose_image() {
  local img
  img=$(sed -n "s|^ *image: *\"\{0,1\}\($1:[^\"]*\)\"\{0,1\} *$|\1|p" "$compose_file" | head -1)
  [ -n "$img" ] || { echo "deploy/compose.yaml names no $1 image" >&2; exit 1; }
  echo "$img"
}

# current IMAGE PIN: whether an image named IMAGE exists that needs no build:
# the public one (no stand-in label) or a stand-in of PIN.
current() {
  local have
  have=$(docker image inspect --format '{{index .Config.Labels "io.sediment.standin"}}' "$1" 2>/dev/null) || return 1
  if [ -z "$have" ] || [ "$have" = "<no value>" ] || [ "$have" = "$2" ]; then
    return 0
  fi
  echo "rebuilding the stand-in $1: it holds $have, the pin is $2"
  return 1
}

# standin IMAGE DOCKERFILE BINARY PIN: builds IMAGE FROM scratch around BINARY.
standin() {
  local image=$1 dockerfile=$2 binary=$3 pin=$4 ctx start
  [ -x "$binary" ] || { echo "$binary is missing: run make minio" >&2; exit 1; }
  start=$(date +%s)
  ctx=$(mktemp -d)
  # A hard link where bin/ and the temp dir share a file system: MinIO is ~150 MB.
  ln "$binary" "$ctx/$(basename "$binary")" 2>/dev/null || cp "$binary" "$ctx/"
  mkdir "$ctx/data"
  docker build -q --label "io.sediment.standin=$pin" -t "$image" -f "$dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "built the stand-in $image ($pin) in $(($(date +%s) - start))s"
}

images() {
  local minio prom minio_pin prom_pin=$PROM_MODULE@$PROM_VERSION
  minio=$(compose_image minio/minio)
  prom=$(compose_image prom/prometheus)
  if [ "${prom#*:}" != "$(prom_release)" ]; then
    echo "deploy/compose.yaml names $prom, but PROM_VERSION $PROM_VERSION is Prometheus $(prom_release)" >&2
    exit 1
  fi
  minio_pin=$(cat "$bin/minio.version" 2>/dev/null || true)
  current "$minio" "$minio_pin" || standin "$minio" "$standins/minio.Dockerfile" "$bin/minio" "$minio_pin"
  if ! current "$prom" "$prom_pin"; then
    prometheus # built only when its stand-in is
    standin "$prom" "$standins/prometheus.Dockerfile" "$bin/prometheus" "$prom_pin"
  fi
}

[ $# -gt 0 ] || { echo "usage: $0 plugin|prometheus|images..." >&2; exit 2; }
for what in "$@"; do
  case "$what" in
  plugin | prometheus | images) "$what" ;;
  *) echo "usage: $0 plugin|prometheus|images..." >&2; exit 2 ;;
  esac
done
