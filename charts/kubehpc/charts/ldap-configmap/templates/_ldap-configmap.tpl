{{/* ldap-configmap's own flags (kubehpc.workload includes these). */}}
{{- define "ldap-configmap.configMapNamespace" -}}
{{- .Values.configMapNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "ldap-configmap.args" -}}
- {{ print "--ldap-url=" .Values.ldap.url | quote }}
- {{ print "--ldap-tls=" .Values.ldap.startTLS | quote }}
- {{ print "--ldap-tls-verify=" .Values.ldap.tlsVerify | quote }}
{{- with .Values.ldap.tlsServerName }}
- {{ print "--ldap-tls-server-name=" . | quote }}
{{- end }}
{{- if .Values.ldap.caBundle.secretName }}
- {{ print "--ldap-tls-ca-file=/etc/ldap-configmap/ca/" .Values.ldap.caBundle.key | quote }}
{{- end }}
{{- with .Values.ldap.bindDN }}
- {{ print "--ldap-bind-dn=" . | quote }}
{{- end }}
{{- if .Values.ldap.bindPassword.secretName }}
- {{ print "--ldap-bind-password-file=/etc/ldap-configmap/bind/" .Values.ldap.bindPassword.key | quote }}
{{- end }}
- {{ print "--ldap-preset=" .Values.ldap.preset | quote }}
- {{ print "--ldap-user-base-dn=" .Values.ldap.userBaseDN | quote }}
- {{ print "--ldap-group-base-dn=" .Values.ldap.groupBaseDN | quote }}
{{- with .Values.ldap.userFilter }}
- {{ print "--ldap-user-filter=" . | quote }}
{{- end }}
{{- with .Values.ldap.groupFilter }}
- {{ print "--ldap-group-filter=" . | quote }}
{{- end }}
{{- with .Values.ldap.memberScheme }}
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
- {{ print "--user-prefix=" .Values.userPrefix | quote }}
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
{{- /* The Go runtime collects harder near the container's memory limit instead of being killed at it. */}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end -}}

{{- define "ldap-configmap.ports" -}}
{{- end -}}

{{- define "ldap-configmap.volumeMounts" -}}
{{- if .Values.ldap.caBundle.secretName }}
- name: ldap-ca
  mountPath: /etc/ldap-configmap/ca
  readOnly: true
{{- end }}
{{- if .Values.ldap.bindPassword.secretName }}
- name: ldap-bind
  mountPath: /etc/ldap-configmap/bind
  readOnly: true
{{- end }}
{{- end -}}

{{- define "ldap-configmap.volumes" -}}
{{- if .Values.ldap.caBundle.secretName }}
- name: ldap-ca
  secret:
    secretName: {{ .Values.ldap.caBundle.secretName }}
    items:
      - key: {{ .Values.ldap.caBundle.key }}
        path: {{ .Values.ldap.caBundle.key }}
{{- end }}
{{- if .Values.ldap.bindPassword.secretName }}
- name: ldap-bind
  secret:
    secretName: {{ .Values.ldap.bindPassword.secretName }}
    items:
      - key: {{ .Values.ldap.bindPassword.key }}
        path: {{ .Values.ldap.bindPassword.key }}
{{- end }}
{{- end -}}

{{/* A list of strings as CEL string literals, comma-separated. */}}
{{- define "ldap-configmap.celList" -}}
{{- $out := list -}}
{{- range . }}{{ $out = append $out (printf "'%s'" .) }}{{ end -}}
{{- join ", " $out -}}
{{- end -}}
