#!/usr/bin/env bash
# gofmt, go vet and staticcheck on every module (GOWORK=off), and a check that
# the modules share one version of client-go.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK=off
staticcheck=$(hack/tool.sh staticcheck)
status=0
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would rewrite:"; echo "$unformatted"; status=1; fi
for m in pkg ldap-configmap job-pod-reaper namespace-reaper namespace-bootstrap charts/tests e2e hack/images; do
  [ -f "$m/go.mod" ] || continue
  echo "=== vet + staticcheck $m"
  (cd "$m" && go vet ./... && "$staticcheck" ./...) || status=1
done
versions=$(for m in pkg/go.mod */go.mod charts/tests/go.mod; do [ -f "$m" ] && grep -h 'k8s.io/client-go ' "$m" | awk '{print $2}'; done | sort -u)
if [ "$(echo "$versions" | grep -c .)" -gt 1 ]; then echo "client-go versions differ between modules: $versions"; status=1; fi
exit $status
