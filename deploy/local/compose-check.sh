#!/usr/bin/env bash
# Validate deploy/compose.yaml with the real Docker Compose v2 CLI.
# Our machines have a docker client but no compose plugin, so the plugin is
# built once from the Go module proxy and cached under data/cache/tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=v2.40.3
tool=data/cache/tools/docker-compose-$version
if [ ! -x "$tool" ]; then
  command -v go >/dev/null || { echo "compose-check: Go is needed to build the compose CLI" >&2; exit 1; }
  mkdir -p data/cache/tools
  # `go install` refuses modules with exclude directives, so build from a copy.
  src=$(go mod download -json "github.com/docker/compose/v2@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && go build -o "$OLDPWD/$tool" ./cmd)
fi
cfg=$(mktemp -d)
mkdir -p "$cfg/cli-plugins" && ln -s "$PWD/$tool" "$cfg/cli-plugins/docker-compose"
DOCKER_CONFIG=$cfg docker compose -f deploy/compose.yaml config --quiet
echo "compose-check: deploy/compose.yaml is valid (docker compose $version)"
