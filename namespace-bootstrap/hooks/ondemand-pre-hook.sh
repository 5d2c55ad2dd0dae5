#!/usr/bin/env bash
# Open OnDemand pre-hook: make sure the user's Kubernetes namespace exists, as
# the site's template says, before their first job. Replaces OnDemand's
# k8s-bootstrap-ondemand.sh.
#
# ood_portal.yml:
#   pun_pre_hook_root_cmd: "/opt/kubehpc/ondemand-pre-hook.sh"
#   pun_pre_hook_exports: "OIDC_ACCESS_TOKEN"
#
# nginx_stage runs it as root with "--user <name>" when the user's PUN
# starts; the exported Apache variables arrive with an OOD_ prefix.
#
# Settings come from the environment, after sourcing $NAMESPACE_BOOTSTRAP_HOOK_ENV
# (default /etc/ood/config/hook.env, the file OnDemand's own hook reads):
#
#   NAMESPACE_BOOTSTRAP_URL      Service mode (recommended): the in-cluster
#                                service, e.g. https://bootstrap.example.org/bootstrap.
#                                The user's own token is sent; the web node
#                                holds no cluster credential.
#   NAMESPACE_BOOTSTRAP_CA_FILE  CA bundle that signed the service's certificate.
#   NAMESPACE_BOOTSTRAP_TOKEN_VAR Variable holding the user's token
#                                (default OOD_OIDC_ACCESS_TOKEN).
#   NAMESPACE_BOOTSTRAP_BIN      Hook mode instead: run the namespace-bootstrap
#                                binary with the web node's own kubeconfig
#                                ($KUBECONFIG); every exported NAMESPACE_BOOTSTRAP_*
#                                variable and the hook.env names NAMESPACE_PREFIX,
#                                K8S_USERNAME_PREFIX, NETWORK_POLICY_ALLOW_CIDR,
#                                IMAGE_PULL_SECRET, USE_JOB_POD_REAPER configure it.
#   NAMESPACE_BOOTSTRAP_GROUP    Only bootstrap members of this Unix group
#                                (OSC gates on "oscall"); empty: everyone.
#   NAMESPACE_BOOTSTRAP_TIMEOUT  Seconds before giving up (default 30).
#   NAMESPACE_BOOTSTRAP_SYSLOG   "false" to log to stderr only.
#
# nginx_stage ignores a hook's exit status, so failures are logged to syslog
# (tag namespace-bootstrap) and stderr, and the exit status is non-zero.
set -uo pipefail

log() {
  echo "namespace-bootstrap hook: $*" >&2
  if [ "${NAMESPACE_BOOTSTRAP_SYSLOG:-true}" != "false" ]; then
    logger -t namespace-bootstrap -- "$*" 2>/dev/null || true
  fi
}

user=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user="${2:-}"; shift 2 || shift ;;
    --user=*) user="${1#--user=}"; shift ;;
    *) log "ignoring unknown argument $1"; shift ;;
  esac
done
if [ -z "$user" ]; then
  log "usage: $0 --user <name>"
  exit 2
fi

hook_env="${NAMESPACE_BOOTSTRAP_HOOK_ENV:-/etc/ood/config/hook.env}"
if [ -r "$hook_env" ]; then
  set -a
  # shellcheck disable=SC1090
  . "$hook_env"
  set +a
fi

if [ -n "${NAMESPACE_BOOTSTRAP_GROUP:-}" ]; then
  if ! id -nG -- "$user" 2>/dev/null | tr ' ' '\n' | grep -qxF -- "$NAMESPACE_BOOTSTRAP_GROUP"; then
    log "user $user is not in group $NAMESPACE_BOOTSTRAP_GROUP; nothing to do"
    exit 0
  fi
fi

timeout="${NAMESPACE_BOOTSTRAP_TIMEOUT:-30}"

if [ -n "${NAMESPACE_BOOTSTRAP_URL:-}" ]; then
  token_var="${NAMESPACE_BOOTSTRAP_TOKEN_VAR:-OOD_OIDC_ACCESS_TOKEN}"
  token="${!token_var:-}"
  if [ -z "$token" ]; then
    log "failed for user $user: \$$token_var is empty (add OIDC_ACCESS_TOKEN to pun_pre_hook_exports)"
    exit 1
  fi
  body=$(mktemp) || exit 1
  trap 'rm -f "$body"' EXIT
  ca_opt=()
  if [ -n "${NAMESPACE_BOOTSTRAP_CA_FILE:-}" ]; then
    ca_opt=(--cacert "$NAMESPACE_BOOTSTRAP_CA_FILE")
  fi
  encoded_user=$(printf '%s' "$user" | od -An -tx1 -v | tr -d ' \n' | sed 's/\(..\)/%\1/g')
  # The token goes through curl's config on stdin, never on a command line.
  code=$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
    curl --silent --show-error --config - "${ca_opt[@]}" --max-time "$timeout" \
      --request POST --output "$body" --write-out '%{http_code}' \
      "${NAMESPACE_BOOTSTRAP_URL}?user=${encoded_user}")
  status=$?
  if [ $status -ne 0 ]; then
    log "failed for user $user: cannot reach $NAMESPACE_BOOTSTRAP_URL (curl exit $status)"
    exit 1
  fi
  if [ "$code" != "200" ]; then
    log "failed for user $user: HTTP $code: $(head -c 500 "$body")"
    exit 1
  fi
  log "bootstrapped user $user: $(head -c 500 "$body")"
  exit 0
fi

if [ -n "${NAMESPACE_BOOTSTRAP_BIN:-}" ]; then
  if ! out=$(timeout "$timeout" "$NAMESPACE_BOOTSTRAP_BIN" --user "$user" --log-format json 2>&1); then
    log "failed for user $user: $(printf '%s' "$out" | tail -n 5)"
    exit 1
  fi
  log "bootstrapped user $user"
  exit 0
fi

log "neither NAMESPACE_BOOTSTRAP_URL nor NAMESPACE_BOOTSTRAP_BIN is set (in $hook_env)"
exit 1
