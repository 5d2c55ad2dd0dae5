# Sourced by the scripts that build tools into the per-user cache
# (gotool.sh, kubebins.sh, kyverno.sh). Each tool comes from a wrapper module
# under hack/ whose go.mod is the only place its version is written (a `tool`
# line per binary) and whose go.sum checksums every module it builds from.
export GOWORK=off # the wrapper modules are not in go.work
cache=${KUBEHPC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubehpc}

# mod_version DIR MODULE prints the version of MODULE that DIR/go.mod selects.
mod_version() {
  local v
  v=$(cd "$1" && go list -m -f '{{.Version}}' "$2") || return 1
  [ -n "$v" ] || { echo "$1/go.mod selects no version of $2" >&2; return 1; }
  echo "$v"
}

# mod_sum DIR prints 12 hex digits of DIR's go.mod (parsed, so an edited
# comment does not count) and go.sum, part of every cache key so a changed
# dependency (not only the tool's version) rebuilds.
mod_sum() { { (cd "$1" && go mod edit -json) && cat "$1/go.sum"; } | sha256sum | cut -c1-12; }
