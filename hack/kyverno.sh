#!/usr/bin/env bash
# Builds Kyverno from the Go module proxy through the wrapper module
# hack/kyverno (its go.mod is the one place Kyverno's version is written, with
# a `tool` line per binary and one replace; checksums in its go.sum) into a
# per-user cache directory, once per Kyverno version, go.mod/go.sum content
# and Go version, under a file lock, and prints the path of the binary asked
# for:
#   hack/kyverno.sh [cli]                the CLI, for the policies' `kyverno test` suites
#   hack/kyverno.sh admission-controller the admission controller, which the
#                                        chart tests run as a local process
#                                        with its webhooks on the test API server
# Both are built whenever either is missing, in one `go build`, so the
# packages they share (nearly all of them) compile once. A cold build of both
# takes about 7 minutes on 2 idle cores (docs/benchmarks.md); the binaries are
# 320 and 190 MB. Kyverno's CustomResourceDefinitions (the module's
# config/crds) are copied into crds/ beside them for pkg/testenv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mod="$here/kyverno"
case "${1:-cli}" in
  cli)                  want=kyverno ;;
  admission-controller) want=kyverno-admission-controller ;;
  *) echo "usage: $0 [cli|admission-controller]" >&2; exit 2 ;;
esac
KYVERNO_VERSION=$(mod_version "$mod" github.com/kyverno/kyverno)
dir="$cache/tools/kyverno-$KYVERNO_VERSION-$(mod_sum "$mod")-$(go env GOVERSION)"
built() { [ -x "$dir/kyverno" ] && [ -x "$dir/kyverno-admission-controller" ] && [ -d "$dir/crds" ]; }
if built; then echo "$dir/$want"; exit 0; fi
mkdir -p "$cache/tools"
exec 9>"$cache/tools/.lock-kyverno"
flock 9
if built; then echo "$dir/$want"; exit 0; fi
# `go build -o dir/` names each binary after its package directory: the CLI's
# is kubectl-kyverno, the admission controller's is kyverno.
pkgs=()
[ -x "$dir/kyverno" ] || pkgs+=(github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno)
[ -x "$dir/kyverno-admission-controller" ] || pkgs+=(github.com/kyverno/kyverno/cmd/kyverno)
tmp="$dir.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "Building Kyverno $KYVERNO_VERSION (${pkgs[*]#github.com/kyverno/kyverno/}) into $dir (a cold build of both takes ~7 min on 2 idle cores)..." >&2
  (cd "$mod" && go build -trimpath \
    -ldflags="-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$KYVERNO_VERSION" \
    -o "$tmp/" "${pkgs[@]}") >&2
fi
mkdir -p "$dir"
if [ ! -d "$dir/crds" ]; then
  src=$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)
  cp -R "$src/config/crds" "$tmp/crds" && chmod -R u+w "$tmp/crds" && mv "$tmp/crds" "$dir/crds"
fi
if [ -e "$tmp/kubectl-kyverno" ]; then mv "$tmp/kubectl-kyverno" "$dir/kyverno"; fi
if [ -e "$tmp/kyverno" ]; then mv "$tmp/kyverno" "$dir/kyverno-admission-controller"; fi
echo "Built Kyverno in $((SECONDS - start))s" >&2
echo "$dir/$want"
