{{- /*
The settings every tool must agree on, under global.* with a per-chart
override: a chart's own value, when set (anything but null, "" included),
wins; else the global value, when set; else the default. Their defaults
render what each chart rendered before they were shared.
*/ -}}

{{/*
The prefix of user namespace names. ldap-configmap (userPrefix),
job-pod-reaper (userNamespacePrefix), namespace-bootstrap (namespacePrefix),
the policies (namespacePrefix), namespace-reaper (its namespaceRegexp is
derived from it) and the guards of them all must agree: a guard or policy
on another prefix than the tools' leaves the tools' namespaces unguarded or
hands them to the wrong user. The chart's own value named by the second
argument, else global.namespacePrefix, else "user-".
  include "kubehpc.namespacePrefix" (list . "userPrefix")
*/}}
{{- define "kubehpc.namespacePrefix" -}}
{{- $ctx := index . 0 -}}
{{- $own := index $ctx.Values (index . 1) -}}
{{- $global := (($ctx.Values.global).namespacePrefix) -}}
{{- if not (kindIs "invalid" $own) -}}
{{- $own -}}
{{- else if not (kindIs "invalid" $global) -}}
{{- $global -}}
{{- else -}}
user-
{{- end -}}
{{- end -}}

{{/*
The LDAP directory ldap-configmap and namespace-bootstrap read, as YAML (pipe
it to fromYaml). For each shared setting: the chart's ldap.<key> when set,
else global.ldap.<key> when set, else the chart's default (the second
argument, a dict), else the library's (below). The shared settings: url,
startTLS, tlsVerify, tlsServerName, caBundle.{secretName,key}, bindDN,
bindPassword.{secretName,key}, preset, userBaseDN, groupBaseDN, userFilter,
groupFilter, memberScheme. A chart's other ldap.* values (timeouts, paging)
are its own.
  include "kubehpc.ldap" (list . (dict "url" "ldap://ldap.example.org:389")) | fromYaml
*/}}
{{- define "kubehpc.ldap" -}}
{{- $ctx := index . 0 -}}
{{- $out := dict "url" "" "startTLS" false "tlsVerify" true "tlsServerName" "" "bindDN" "" "preset" "rfc2307" "userBaseDN" "" "groupBaseDN" "" "userFilter" "" "groupFilter" "" "memberScheme" "" "caBundle" (dict "secretName" "" "key" "ca.crt") "bindPassword" (dict "secretName" "" "key" "password") -}}
{{- range $layer := list (index . 1) ((($ctx.Values.global).ldap) | default dict) ($ctx.Values.ldap | default dict) -}}
{{- range $k, $def := $out -}}
{{- $v := index $layer $k -}}
{{- if kindIs "map" $def -}}
{{- range $sk, $sdef := $def -}}
{{- $sv := index ($v | default dict) $sk -}}
{{- if not (kindIs "invalid" $sv) }}{{ $_ := set $def $sk $sv }}{{ end -}}
{{- end -}}
{{- else if not (kindIs "invalid" $v) -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
