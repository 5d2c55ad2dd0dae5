#!/usr/bin/env bash
# Builds one tool of the hack/tools module (a `tool` line in its go.mod, every
# module checksummed in its go.sum) into a per-user cache directory, once per
# tool version, go.mod/go.sum content and Go version, under a file lock.
# Prints the binary's path.
#   hack/gotool.sh helm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
name=${1:?usage: $0 TOOL (a tool line of hack/tools/go.mod)}
mod="$here/tools"
pkg=$(cd "$mod" && go mod edit -json | awk -F'"' '/"Tool"/ {t=1} t && /"Path"/ {print $4}' | grep -E "/$name\$" || true)
[ -n "$pkg" ] || { echo "hack/tools/go.mod has no tool line for $name" >&2; exit 2; }
# The module that provides the package: the longest module path prefixing it.
read -r module version < <(cd "$mod" && go list -m -f '{{.Path}} {{.Version}}' all |
  awk -v p="$pkg/" 'index(p, $1 "/") == 1 && length($1) > n {n = length($1); m = $1 " " $2} END {print m}')
[ -n "${version:-}" ] || { echo "hack/tools/go.mod selects no module for $pkg" >&2; exit 1; }
dir="$cache/tools/$name-$version-$(mod_sum "$mod")-$(go env GOVERSION)"
if [ -x "$dir/$name" ]; then echo "$dir/$name"; exit 0; fi
mkdir -p "$cache/tools"
exec 9>"$cache/tools/.lock-$name"
flock 9
if [ -x "$dir/$name" ]; then echo "$dir/$name"; exit 0; fi
ldflags="-s -w"
# Helm's release build stamps its version (else `helm version` says v4.3).
case $name in helm) ldflags+=" -X $module/internal/version.version=$version" ;; esac
tmp="$dir.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "Building $pkg $version (hack/tools) into $dir..." >&2
start=$SECONDS
(cd "$mod" && go build -trimpath -ldflags="$ldflags" -o "$tmp/$name" "$pkg") >&2
rm -rf "$dir"; mv "$tmp" "$dir"
echo "Built $name in $((SECONDS - start))s" >&2
echo "$dir/$name"
