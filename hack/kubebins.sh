#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd (the `tool`
# lines of hack/kubebins/go.mod, the one place their versions are written;
# checksums in its go.sum) into a per-user cache directory, once per version,
# go.mod/go.sum content and Go version. Prints the directory. Safe to run
# concurrently: a file lock guards the build. The directory is
# envtest-compatible (KUBEBUILDER_ASSETS). The control plane has a module of
# its own so it builds with exactly the dependency versions Kubernetes pins
# (in hack/tools, Helm's and staticcheck's requirements would raise grpc,
# x/net, x/crypto, OpenTelemetry and others under kube-apiserver).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mod="$here/kubebins"
K8S_VERSION=$(mod_version "$mod" k8s.io/kubernetes)
ETCD_VERSION=$(mod_version "$mod" go.etcd.io/etcd/server/v3)
GO_VERSION=$(go env GOVERSION)
dir="$cache/kubebins/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$(mod_sum "$mod")-$GO_VERSION"
stamp="$dir/.complete"
if [ -f "$stamp" ]; then echo "$dir"; exit 0; fi
mkdir -p "$cache/kubebins"
exec 9>"$cache/kubebins/.lock"
flock 9
if [ -f "$stamp" ]; then echo "$dir"; exit 0; fi
tmp="$dir.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
echo "Building Kubernetes $K8S_VERSION control plane into $dir (a cold build takes ~12 min on 2 cores, docs/benchmarks.md)..." >&2
start=$SECONDS
V=k8s.io/component-base/version
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
(cd "$mod" && go build -trimpath \
  -ldflags="-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean" \
  -o "$tmp/" tool) >&2
mv "$tmp/server" "$tmp/etcd"
touch "$tmp/.complete"
rm -rf "$dir"; mv "$tmp" "$dir"
echo "Built control plane in $((SECONDS - start))s" >&2
echo "$dir"
