#!/usr/bin/env bash
# Builds (once, cached) and prints the path of a tool the project uses.
#   hack/tool.sh helm | staticcheck | kubebins
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  helm)        exec "$here/gotool.sh" helm helm.sh/helm/v4/cmd/helm v4.3.1 ;;
  staticcheck) exec "$here/gotool.sh" staticcheck honnef.co/go/tools/cmd/staticcheck v0.8.2 ;;
  kubebins)    exec "$here/kubebins.sh" ;;
  *) echo "usage: $0 helm|staticcheck|kubebins" >&2; exit 2 ;;
esac
