{{/* namespace-reaper's own flags (kubehpc.workload includes these). */}}
{{- define "namespace-reaper.args" -}}
{{- range .Values.namespaceLabels }}
- --namespace-labels={{ . }}
{{- end }}
{{- with .Values.namespaceRegexp }}
- --namespace-regexp={{ . }}
{{- end }}
- --protected-namespaces={{ join "," (prepend .Values.protectedNamespaces .Release.Namespace) }}
- --reap-after={{ .Values.reapAfter }}
- --namespace-last-used-annotation={{ .Values.lastUsedAnnotation }}
- --last-used-threshold={{ .Values.lastUsedThreshold }}
- --reap-with-pvcs={{ .Values.reapWithPVCs }}
- --max-deletions-per-pass={{ .Values.maxDeletionsPerPass }}
{{- with .Values.prometheus.address }}
- --prometheus-address={{ . }}
- --prometheus-timeout={{ $.Values.prometheus.timeout }}
- --prometheus-retry-timeout={{ $.Values.prometheus.retryTimeout }}
{{- if $.Values.prometheus.bearerToken.secretName }}
- --prometheus-bearer-token-file=/etc/namespace-reaper/prometheus-token/{{ $.Values.prometheus.bearerToken.key }}
{{- end }}
{{- if $.Values.prometheus.caBundle.secretName }}
- --prometheus-ca-file=/etc/namespace-reaper/prometheus-ca/{{ $.Values.prometheus.caBundle.key }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "namespace-reaper.env" -}}
{{- end -}}

{{- define "namespace-reaper.ports" -}}
{{- end -}}

{{- define "namespace-reaper.volumeMounts" -}}
{{- if .Values.prometheus.bearerToken.secretName }}
- name: prometheus-token
  mountPath: /etc/namespace-reaper/prometheus-token
  readOnly: true
{{- end }}
{{- if .Values.prometheus.caBundle.secretName }}
- name: prometheus-ca
  mountPath: /etc/namespace-reaper/prometheus-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "namespace-reaper.volumes" -}}
{{- if .Values.prometheus.bearerToken.secretName }}
- name: prometheus-token
  secret:
    secretName: {{ .Values.prometheus.bearerToken.secretName }}
{{- end }}
{{- if .Values.prometheus.caBundle.secretName }}
- name: prometheus-ca
  secret:
    secretName: {{ .Values.prometheus.caBundle.secretName }}
{{- end }}
{{- end -}}
