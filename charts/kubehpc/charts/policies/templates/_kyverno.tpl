{{/* The match and exclude blocks of a pod rule. dict: ctx, kinds, operations (default CREATE, UPDATE). */}}
{{- define "policies.kyverno.match" -}}
{{- $v := .ctx.Values -}}
{{- $prefix := include "kubehpc.namespacePrefix" (list .ctx "namespacePrefix") -}}
match:
  any:
    - resources:
        kinds: {{ toJson .kinds }}
        operations: {{ toJson (.operations | default (list "CREATE" "UPDATE")) }}
        {{- if $prefix }}
        {{- /* The name alone decides: a label can be removed. */}}
        namespaces: [{{ printf "%s*" $prefix | quote }}]
        {{- else }}
        namespaceSelector:
          {{- toYaml $v.namespaceSelector | nindent 10 }}
        {{- end }}
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

{{/* JMESPath: @ (a path) equals or is below one of the directories (list of entries with {user} and {home}), on whole segments. */}}
{{- define "policies.kyverno.under" -}}
{{- $out := list -}}
{{- range . -}}
{{- $e := . | include "policies.celEscape" -}}
{{- if eq $e "/" -}}
{{- $out = append $out "starts_with(@, '/')" -}}
{{- else -}}
{{- $guard := list "`true`" -}}
{{- if contains "{user}" $e }}{{ $guard = append $guard "'{{ user_path }}' != ''" }}{{ end -}}
{{- if contains "{home}" $e }}{{ $guard = append $guard "'{{ home_path }}' != ''" }}{{ end -}}
{{- $s := $e | replace "{user}" "{{ user_path }}" | replace "{home}" "{{ home_path }}" -}}
{{- $out = append $out (printf "(%s && (@ == '%s' || starts_with(@, '%s/')))" (join " && " $guard) $s $s) -}}
{{- end -}}
{{- end -}}
{{- default "`false`" (join " || " $out) -}}
{{- end -}}

{{/* The context giving user_path and home_path: the user's name and home directory when they are plain paths, else ''. */}}
{{- define "policies.kyverno.pathContext" -}}
{{- include "policies.kyverno.identityContext" . }}
{{- if eq .Values.identitySource "annotations" }}
- name: user_name
  variable:
    jmesPath: "nsann.\"kubehpc.io/user\" || ''"
{{- else }}
- name: user_name
  variable:
    jmesPath: "trim_prefix(request.namespace, '{{ include "kubehpc.namespacePrefix" (list . "namespacePrefix") }}')"
{{- if not .Values.hostPaths.allowUserHome }}
{{- if include "policies.needsHome" . }}
- name: homemap
  configMap:
    name: {{ .Values.configMaps.home }}
    namespace: {{ include "policies.configMapNamespace" . }}
- name: home
  variable:
    jmesPath: "homemap.data.\"{{"{{"}} request.namespace {{"}}"}}\" || ''"
{{- else }}
- name: home
  variable:
    value: ""
{{- end }}
{{- end }}
{{- end }}
- name: user_path
  variable:
    jmesPath: "regex_match('^[A-Za-z0-9_][A-Za-z0-9._-]*$', user_name) && user_name || ''"
{{- $roots := list }}{{ range (include "policies.homeRoots" . | fromJsonArray) }}{{ $roots = append $roots (printf "starts_with(home, '%s/')" (. | include "policies.celEscape")) }}{{ end }}
- name: home_path
  variable:
    jmesPath: "regex_match('^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+$', home) && ({{ default "`false`" (join " || " $roots) }}) && home || ''"
{{- end -}}
