{{/* The match and exclude blocks of a pod rule. dict: ctx, kinds, operations (default CREATE, UPDATE). */}}
{{- define "policies.kyverno.match" -}}
{{- $v := .ctx.Values -}}
match:
  any:
    - resources:
        kinds: {{ toJson .kinds }}
        operations: {{ toJson (.operations | default (list "CREATE" "UPDATE")) }}
        {{- if $v.namespacePrefix }}
        namespaces: [{{ printf "%s*" $v.namespacePrefix | quote }}]
        {{- end }}
        namespaceSelector:
          {{- toYaml $v.namespaceSelector | nindent 10 }}
exclude:
  any:
    - resources:
        namespaces: {{ include "policies.excluded" .ctx }}
{{- end -}}

{{/* The context giving uid, gid, gids, gids_text, groups and home. */}}
{{- define "policies.kyverno.identityContext" -}}
{{- if eq .Values.identitySource "annotations" -}}
- name: nsann
  apiCall:
    urlPath: "/api/v1/namespaces/{{"{{"}} request.namespace {{"}}"}}"
    jmesPath: "metadata.annotations || `{}`"
- name: uid
  variable:
    jmesPath: "nsann.\"kubehpc.io/uid\" || ''"
- name: gid
  variable:
    jmesPath: "nsann.\"kubehpc.io/gid\" || ''"
- name: gids_text
  variable:
    jmesPath: "nsann.\"kubehpc.io/gids\" || ''"
- name: gids
  variable:
    jmesPath: "split(gids_text, ',')"
- name: groups
  variable:
    jmesPath: "split(nsann.\"kubehpc.io/groups\" || '', ',')"
- name: home
  variable:
    jmesPath: "nsann.\"kubehpc.io/home\" || ''"
{{- else -}}
{{- $ns := include "policies.configMapNamespace" . -}}
- name: uidmap
  configMap:
    name: {{ .Values.configMaps.uid }}
    namespace: {{ $ns }}
- name: gidmap
  configMap:
    name: {{ .Values.configMaps.gid }}
    namespace: {{ $ns }}
- name: gidsmap
  configMap:
    name: {{ .Values.configMaps.gids }}
    namespace: {{ $ns }}
- name: groupsmap
  configMap:
    name: {{ .Values.configMaps.groups }}
    namespace: {{ $ns }}
- name: uid
  variable:
    jmesPath: "uidmap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || ''"
- name: gid
  variable:
    jmesPath: "gidmap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || ''"
- name: gids_text
  variable:
    jmesPath: "gidsmap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || '[]'"
- name: gids
  variable:
    jmesPath: "parse_json(gids_text)"
- name: groups
  variable:
    jmesPath: "parse_json(groupsmap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || '[]')"
{{- if .Values.hostPaths.allowUserHome }}
- name: homemap
  configMap:
    name: {{ .Values.configMaps.home }}
    namespace: {{ $ns }}
- name: home
  variable:
    jmesPath: "homemap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || ''"
{{- end }}
{{- end -}}
{{- end -}}

{{- define "policies.kyverno.missing" -}}
{{- if eq .Values.identitySource "annotations" -}}
namespace {{"{{"}} request.namespace {{"}}"}} has no LDAP identity (kubehpc.io/uid or kubehpc.io/gid annotation missing): the user is not in LDAP, or ldap-configmap has not synced them yet
{{- else -}}
user {{"{{"}} request.namespace {{"}}"}} is missing from ConfigMap {{ include "policies.configMapNamespace" . }}/{{ .Values.configMaps.uid }} or {{ .Values.configMaps.gid }}: the user is not in LDAP, or ldap-configmap has not synced them yet
{{- end -}}
{{- end -}}
