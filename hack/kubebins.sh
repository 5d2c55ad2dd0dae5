#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the Go
# module proxy (hack/kubebins) into a per-user cache directory, once per
# version. Prints the directory. Safe to run concurrently: a file lock guards
# the build. The directory is envtest-compatible (KUBEBUILDER_ASSETS).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
GO_VERSION=$(go env GOVERSION)
cache=${KUBEHPC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubehpc}
dir="$cache/kubebins/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$GO_VERSION"
stamp="$dir/.complete"
if [ -f "$stamp" ]; then echo "$dir"; exit 0; fi
mkdir -p "$cache/kubebins"
exec 9>"$cache/kubebins/.lock"
flock 9
if [ -f "$stamp" ]; then echo "$dir"; exit 0; fi
tmp="$dir.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
echo "Building Kubernetes $K8S_VERSION control plane into $dir (cold build takes ~12 min on 2 cores)..." >&2
start=$SECONDS
V=k8s.io/component-base/version
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
(cd "$here/kubebins" && go build -trimpath \
  -ldflags="-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean" \
  -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3) >&2
mv "$tmp/server" "$tmp/etcd"
touch "$tmp/.complete"
rm -rf "$dir"; mv "$tmp" "$dir"
echo "Built control plane in $((SECONDS - start))s" >&2
echo "$dir"
