{{/* ldap-configmap's own flags (kubehpc.workload includes these). */}}
{{- define "ldap-configmap.configMapNamespace" -}}
{{- .Values.configMapNamespace | default .Release.Namespace -}}
{{- end -}}

{{- define "ldap-configmap.args" -}}
- --ldap-url={{ .Values.ldap.url }}
{{- if .Values.ldap.startTLS }}
- --ldap-start-tls
{{- end }}
{{- if .Values.ldap.insecureSkipVerify }}
- --ldap-insecure-skip-verify
{{- end }}
{{- if .Values.ldap.caBundle.secretName }}
- --ldap-ca-file=/etc/ldap-configmap/ca/{{ .Values.ldap.caBundle.key }}
{{- end }}
{{- with .Values.ldap.bindDN }}
- --ldap-bind-dn={{ . }}
{{- end }}
{{- if .Values.ldap.bindPassword.secretName }}
- --ldap-bind-password-file=/etc/ldap-configmap/bind/{{ .Values.ldap.bindPassword.key }}
{{- end }}
{{- with .Values.ldap.preset }}
- --ldap-preset={{ . }}
{{- end }}
- --ldap-user-base-dn={{ .Values.ldap.userBaseDN }}
- --ldap-group-base-dn={{ .Values.ldap.groupBaseDN }}
{{- with .Values.ldap.userFilter }}
- --ldap-user-filter={{ . }}
{{- end }}
{{- with .Values.ldap.groupFilter }}
- --ldap-group-filter={{ . }}
{{- end }}
{{- with .Values.ldap.memberScheme }}
- --ldap-member-scheme={{ . }}
{{- end }}
{{- if .Values.ldap.pageSize }}
- --ldap-page-size={{ .Values.ldap.pageSize }}
{{- else }}
- --ldap-paged-search=false
{{- end }}
- --ldap-timeout={{ .Values.ldap.timeout }}
- --mappers={{ join "," .Values.mappers }}
{{- range $m, $f := .Values.mapperUserFilters }}
- --mapper-user-filter={{ $m }}={{ $f }}
{{- end }}
{{- range $m, $f := .Values.mapperGroupFilters }}
- --mapper-group-filter={{ $m }}={{ $f }}
{{- end }}
- --namespace={{ include "ldap-configmap.configMapNamespace" . }}
- --user-prefix={{ .Values.userPrefix }}
- --namespace-annotations={{ .Values.namespaceAnnotations.enabled }}
{{- if .Values.namespaceAnnotations.enabled }}
- --namespace-selector={{ .Values.namespaceAnnotations.namespaceSelector }}
{{- end }}
- --max-drop-fraction={{ .Values.safety.maxDropFraction }}
{{- if .Values.safety.allowDrop }}
- --allow-drop
{{- end }}
{{- end -}}

{{- define "ldap-configmap.env" -}}
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
