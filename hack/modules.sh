#!/usr/bin/env bash
# Prints the project's Go modules, one directory a line, in go.work's order:
# the one list test.sh, lint.sh and bench.sh use (the tool-building modules
# under hack/ are not in it). A listed directory without go.mod is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
mods=$(GOWORK=$PWD/go.work go work edit -json | awk -F'"' '/"DiskPath"/ {sub(/^\.\//, "", $4); print $4}')
[ -n "$mods" ] || { echo "hack/modules.sh: no module in go.work" >&2; exit 1; }
for m in $mods; do
  [ -f "$m/go.mod" ] || { echo "hack/modules.sh: go.work lists $m, which has no go.mod" >&2; exit 1; }
  echo "$m"
done
