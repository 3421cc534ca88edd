#!/usr/bin/env bash
# Validate deploy/compose.yaml with the real Docker Compose v2 CLI, and parse
# the Dockerfile with BuildKit's own parser and instruction checks (what
# `docker build` runs before it builds anything; nothing is built here).
# Our machines have a docker client but no compose plugin and no engine, so
# both tools are built once from the Go module proxy and cached under
# data/cache/tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=()
trap 'for d in "${scratch[@]}"; do chmod -R u+w "$d"; rm -rf "$d"; done' EXIT
version=v2.40.3
tool=data/cache/tools/docker-compose-$version
if [ ! -x "$tool" ]; then
  command -v go >/dev/null || { echo "compose-check: Go is needed to build the compose CLI" >&2; exit 1; }
  mkdir -p data/cache/tools
  # `go install` refuses modules with exclude directives, so build from a copy.
  src=$(go mod download -json "github.com/docker/compose/v2@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d) && scratch+=("$work")
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && go build -o "$OLDPWD/$tool" ./cmd)
fi
cfg=$(mktemp -d) && scratch+=("$cfg")
mkdir -p "$cfg/cli-plugins" && ln -s "$PWD/$tool" "$cfg/cli-plugins/docker-compose"
DOCKER_CONFIG=$cfg docker compose -f deploy/compose.yaml config --quiet
DOCKER_CONFIG=$cfg docker compose -f deploy/compose.yaml --profile scaled config --quiet
echo "compose-check: deploy/compose.yaml is valid, with and without the scaled profile (docker compose $version)"

# The BuildKit release the compose CLI above depends on: already in the module cache.
buildkit=v0.25.1
checker=data/cache/tools/dockerfile-check-buildkit-$buildkit
if [ ! -x "$checker" ]; then
  work=$(mktemp -d) && scratch+=("$work")
  cat >"$work/main.go" <<'GO'
// Parses a Dockerfile with BuildKit's parser and instruction checks; fails on
// any parse error, parser warning or lint warning.
package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	path := os.Args[1]
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
	problems := len(res.Warnings)
	for _, w := range res.Warnings {
		fmt.Fprintf(os.Stderr, "%s: %s\n", path, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		fmt.Fprintf(os.Stderr, "%s:%d: %s: %s\n", path, line, rule, msg)
		problems++
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
	if problems > 0 {
		os.Exit(1)
	}
	n := 0
	for _, s := range stages {
		n += len(s.Commands)
	}
	fmt.Printf("%d stages, %d instructions\n", len(stages), n)
}
GO
  (cd "$work" && go mod init dockerfile-check >/dev/null 2>&1 \
    && go mod edit -require "github.com/moby/buildkit@$buildkit" && go mod tidy \
    && go build -o "$OLDPWD/$checker" .)
fi
summary=$("$checker" Dockerfile)
echo "compose-check: Dockerfile parses cleanly with BuildKit $buildkit ($summary)"
