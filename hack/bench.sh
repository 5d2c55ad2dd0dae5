#!/usr/bin/env bash
# Runs every module's Go benchmarks once against the real local servers and
# prints the figures (recorded in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK=off
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$(hack/tool.sh kubebins)}
export KUBEHPC_HELM=${KUBEHPC_HELM:-$(hack/tool.sh helm)}
export KUBEHPC_ROOT=$PWD
status=0
modules=$(hack/modules.sh)
for m in $modules; do
  echo "=== benchmarks: $m"
  (cd "$m" && go test -run '^$' -bench "${BENCH:-.}" -benchtime 1x -benchmem -timeout 60m ./...) || status=1
done
exit $status
