#!/usr/bin/env bash
# gofmt, go vet and staticcheck on every module (GOWORK=off), and checks that
# the modules share one version of client-go and that no build script writes
# a tool's version.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK=off
# --no-staticcheck: gofmt, go vet and the client-go check only (a quick local
# check; `make lint` and CI run all of it). staticcheck comes from hack/tools.
staticcheck=""
[ "${1:-}" = "--no-staticcheck" ] || staticcheck=$(hack/tool.sh staticcheck)
status=0
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would rewrite:"; echo "$unformatted"; status=1; fi
modules=$(hack/modules.sh)
# hack/images (the image builder) is linted too; it is not a test module.
for m in $modules hack/images; do
  echo "=== vet${staticcheck:+ + staticcheck} $m"
  (cd "$m" && go vet ./... && { [ -z "$staticcheck" ] || "$staticcheck" ./...; }) || status=1
done
# Every tool's version is written once, in its wrapper module's go.mod
# (hack/tools, hack/kubebins, hack/kyverno): none in the build scripts.
pinned=$(grep -nE '\bv[0-9]+\.[0-9]+\.[0-9]+' hack/*.sh Makefile .ci/run || true)
if [ -n "$pinned" ]; then echo "a version is written outside the tool modules' go.mod:"; echo "$pinned"; status=1; fi
# The wrapper modules under hack/ (tools, kubebins, kyverno) build tools, not
# the project's binaries, and keep the client-go their tool's release pins.
versions=$(for m in $modules; do grep -h 'k8s.io/client-go ' "$m/go.mod" | awk '{print $2}'; done | sort -u)
if [ "$(echo "$versions" | grep -c .)" -gt 1 ]; then echo "client-go versions differ between modules: $versions"; status=1; fi
exit $status
