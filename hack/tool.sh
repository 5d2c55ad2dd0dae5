#!/usr/bin/env bash
# Builds (once, cached in ~/.cache/kubehpc) and prints the path of a tool the
# project uses. Every one comes from a wrapper module under hack/ with a go.sum;
# its go.mod is the one place its version is written:
#   hack/tool.sh helm | staticcheck   hack/tools (the build's Go tools)
#   hack/tool.sh kubebins             hack/kubebins: the directory holding etcd,
#                                     kube-apiserver, kube-controller-manager, kubectl
#   hack/tool.sh kyverno [cli|admission-controller]
#                                     hack/kyverno: Kyverno's CLI or admission controller
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  kubebins)  exec "$here/kubebins.sh" ;;
  kyverno)   exec "$here/kyverno.sh" "${@:2}" ;;
  ""|-*)     echo "usage: $0 helm|staticcheck|kubebins|kyverno [cli|admission-controller]" >&2; exit 2 ;;
  *)         exec "$here/gotool.sh" "$1" ;;
esac
