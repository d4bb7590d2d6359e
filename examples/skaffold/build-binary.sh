#!/bin/sh
# Rebuilds only the linux binary into the path Skaffold's sync rule watches
# (run it in the artifact context, e.g. from watchexec on *.go changes).
# Written to a temp file and renamed, so Skaffold never syncs half a binary.
set -eu
name=$(basename "$(go list -f '{{.ImportPath}}' .)")
mkdir -p .gohot/skaffold
GOOS=linux GOARCH="${GOARCH:-$(go env GOARCH)}" CGO_ENABLED=0 \
  go build -trimpath -o ".gohot/skaffold/.$name.tmp" .
mv ".gohot/skaffold/.$name.tmp" ".gohot/skaffold/$name"
