{{/* ldap-configmap's own flags (kubehpc.workload includes these). */}}
{{- define "ldap-configmap.configMapNamespace" -}}
{{- .Values.configMapNamespace | default .Release.Namespace -}}
{{- end -}}

{{/*
The LDAP settings shared with namespace-bootstrap (kubehpc.ldap: ldap.*, else
global.ldap.*), with placeholders for the server and base DNs so that the
chart renders before a site sets them.
*/}}
{{- define "ldap-configmap.ldap" -}}
{{- $ldap := include "kubehpc.ldap" (list . (dict "url" "ldap://ldap.example.org:389" "userBaseDN" "ou=people,dc=example,dc=org" "groupBaseDN" "ou=groups,dc=example,dc=org")) | fromYaml -}}
{{- range $k := list "url" "userBaseDN" "groupBaseDN" }}
{{- if not (index $ldap $k) }}
{{- fail (printf "ldap-configmap: ldap.%s is empty: set it, or global.ldap.%s" $k $k) }}
{{- end }}
{{- end -}}
{{- toYaml $ldap -}}
{{- end -}}

{{- define "ldap-configmap.args" -}}
{{- $ldap := include "ldap-configmap.ldap" . | fromYaml }}
- {{ print "--ldap-url=" $ldap.url | quote }}
- {{ print "--ldap-tls=" $ldap.startTLS | quote }}
- {{ print "--ldap-tls-verify=" $ldap.tlsVerify | quote }}
{{- with $ldap.tlsServerName }}
- {{ print "--ldap-tls-server-name=" . | quote }}
{{- end }}
{{- if $ldap.caBundle.secretName }}
- {{ print "--ldap-tls-ca-file=/etc/ldap-configmap/ca/" $ldap.caBundle.key | quote }}
{{- end }}
{{- with $ldap.bindDN }}
- {{ print "--ldap-bind-dn=" . | quote }}
{{- end }}
{{- if $ldap.bindPassword.secretName }}
- {{ print "--ldap-bind-password-file=/etc/ldap-configmap/bind/" $ldap.bindPassword.key | quote }}
{{- end }}
- {{ print "--ldap-preset=" $ldap.preset | quote }}
- {{ print "--ldap-user-base-dn=" $ldap.userBaseDN | quote }}
- {{ print "--ldap-group-base-dn=" $ldap.groupBaseDN | quote }}
{{- with $ldap.userFilter }}
- {{ print "--ldap-user-filter=" . | quote }}
{{- end }}
{{- with $ldap.groupFilter }}
- {{ print "--ldap-group-filter=" . | quote }}
{{- end }}
{{- with $ldap.memberScheme }}
- {{ print "--ldap-member-scheme=" . | quote }}
{{- end }}
- {{ print "--ldap-nested-groups=" .Values.ldap.nestedGroups | quote }}
{{- with .Values.ldap.userAttrMap }}
- {{ print "--ldap-user-attr-map=" . | quote }}
{{- end }}
{{- with .Values.ldap.groupAttrMap }}
- {{ print "--ldap-group-attr-map=" . | quote }}
{{- end }}
- {{ print "--ldap-paged-search=" .Values.ldap.pagedSearch | quote }}
- {{ print "--ldap-paged-search-size=" .Values.ldap.pageSize | quote }}
- {{ print "--ldap-connect-timeout=" .Values.ldap.connectTimeout | quote }}
- {{ print "--ldap-timeout=" .Values.ldap.timeout | quote }}
- {{ print "--mappers=" (join "," .Values.mappers) | quote }}
{{- range $m, $f := .Values.mapperUserFilters }}
- {{ print "--mappers-user-filter=" $m "=" $f | quote }}
{{- end }}
{{- range $m, $f := .Values.mapperGroupFilters }}
- {{ print "--mappers-group-filter=" $m "=" $f | quote }}
{{- end }}
- {{ print "--namespace=" (include "ldap-configmap.configMapNamespace" .) | quote }}
- {{ print "--user-prefix=" (include "kubehpc.namespacePrefix" (list . "userPrefix")) | quote }}
- {{ print "--namespace-annotations=" .Values.namespaceAnnotations.enabled | quote }}
- {{ print "--max-drop-fraction=" .Values.safety.maxDropFraction | quote }}
- {{ print "--allow-empty=" .Values.safety.allowEmpty | quote }}
- {{ print "--allow-large-drop=" .Values.safety.allowLargeDrop | quote }}
- {{ print "--max-configmap-bytes=" (int .Values.safety.maxConfigMapBytes) | quote }}
- {{ print "--workers=" .Values.workers | quote }}
- {{ print "--kube-api-qps=" .Values.kubeApi.qps | quote }}
- {{ print "--kube-api-burst=" .Values.kubeApi.burst | quote }}
- {{ print "--full-resync-interval=" .Values.fullResyncInterval | quote }}
{{- end -}}

{{- define "ldap-configmap.env" -}}
{{- /* The Go runtime collects harder near goMemLimit, below the container's limit, instead of being killed at it. */}}
{{- with .Values.goMemLimit }}
- name: GOMEMLIMIT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "ldap-configmap.ports" -}}
{{- end -}}

{{- define "ldap-configmap.volumeMounts" -}}
{{- $ldap := include "ldap-configmap.ldap" . | fromYaml }}
{{- if $ldap.caBundle.secretName }}
- name: ldap-ca
  mountPath: /etc/ldap-configmap/ca
  readOnly: true
{{- end }}
{{- if $ldap.bindPassword.secretName }}
- name: ldap-bind
  mountPath: /etc/ldap-configmap/bind
  readOnly: true
{{- end }}
{{- end -}}

{{- define "ldap-configmap.volumes" -}}
{{- $ldap := include "ldap-configmap.ldap" . | fromYaml }}
{{- if $ldap.caBundle.secretName }}
- name: ldap-ca
  secret:
    secretName: {{ $ldap.caBundle.secretName }}
    items:
      - key: {{ $ldap.caBundle.key }}
        path: {{ $ldap.caBundle.key }}
{{- end }}
{{- if $ldap.bindPassword.secretName }}
- name: ldap-bind
  secret:
    secretName: {{ $ldap.bindPassword.secretName }}
    items:
      - key: {{ $ldap.bindPassword.key }}
        path: {{ $ldap.bindPassword.key }}
{{- end }}
{{- end -}}

{{/* A list of strings as CEL string literals, comma-separated. */}}
{{- define "ldap-configmap.celList" -}}
{{- $out := list -}}
{{- range . }}{{ $out = append $out (printf "'%s'" .) }}{{ end -}}
{{- join ", " $out -}}
{{- end -}}
