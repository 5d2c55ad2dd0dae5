#!/usr/bin/env bash
# Installs a Go tool (go install PKG@VERSION) into a per-user cache directory,
# once per version and Go version, under a file lock. Prints the binary's path.
#   hack/gotool.sh helm helm.sh/helm/v4/cmd/helm v4.3.1
set -euo pipefail
name=$1 pkg=$2 version=$3
cache=${KUBEHPC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubehpc}
dir="$cache/tools/$name-$version-$(go env GOVERSION)"
if [ -x "$dir/$name" ]; then echo "$dir/$name"; exit 0; fi
mkdir -p "$cache/tools"
exec 9>"$cache/tools/.lock-$name"
flock 9
if [ -x "$dir/$name" ]; then echo "$dir/$name"; exit 0; fi
echo "Installing $pkg@$version into $dir..." >&2
start=$SECONDS
GOBIN="$dir.tmp.$$" go install -trimpath -ldflags='-s -w' "$pkg@$version" >&2
rm -rf "$dir"; mv "$dir.tmp.$$" "$dir"
echo "Installed $name in $((SECONDS - start))s" >&2
echo "$dir/$name"
