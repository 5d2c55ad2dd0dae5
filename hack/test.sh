#!/usr/bin/env bash
# Runs go test in every module with GOWORK=off (each module must stand alone,
# as it does in an image build). Arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK=off
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$(hack/tool.sh kubebins)}
export KUBEHPC_HELM=${KUBEHPC_HELM:-$(hack/tool.sh helm)}
export KUBEHPC_ROOT=$PWD
status=0
modules=$(hack/modules.sh)
for m in $modules hack/images; do
  echo "=== go test $m"
  (cd "$m" && go test "$@" ./...) || status=1
done
exit $status
