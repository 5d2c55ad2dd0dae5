{{/*
The namespaces it may reap, by name: namespaceRegexp when set (even ""),
else derived from the user namespace prefix (kubehpc.namespacePrefix:
global.namespacePrefix, else user-) as <prefix>.+, so that it reaps exactly
the namespaces the other tools and the policies call users'.
*/}}
{{- define "namespace-reaper.namespaceRegexp" -}}
{{- if not (kindIs "invalid" .Values.namespaceRegexp) -}}
{{- .Values.namespaceRegexp -}}
{{- else -}}
{{- with include "kubehpc.namespacePrefix" (list . "namespacePrefix") }}{{ regexQuoteMeta . }}.+{{ end -}}
{{- end -}}
{{- end -}}

{{/* namespace-reaper's own flags (kubehpc.workload includes these). */}}
{{- define "namespace-reaper.args" -}}
{{- $sel := list }}
{{- range .Values.namespaceLabels }}{{ $sel = append $sel (ternary (printf "\"%s\"" .) . (contains "," .)) }}{{ end }}
{{- with $sel }}
- {{ print "--namespace-labels=" (join "," .) | quote }}
{{- end }}
{{- with include "namespace-reaper.namespaceRegexp" . }}
- {{ print "--namespace-regexp=" . | quote }}
{{- end }}
- {{ print "--own-namespace=" .Release.Namespace | quote }}
{{- with .Values.protectedNamespaces }}
- {{ print "--protected-namespaces=" (join "," .) | quote }}
{{- end }}
- {{ print "--reap-after=" .Values.reapAfter | quote }}
- {{ print "--namespace-last-used-annotation=" .Values.lastUsedAnnotation | quote }}
- {{ print "--last-used-threshold=" .Values.lastUsedThreshold | quote }}
- {{ print "--reap-with-pvcs=" .Values.reapWithPVCs | quote }}
- {{ print "--max-deletions-per-pass=" .Values.maxDeletionsPerPass | quote }}
{{- with .Values.prometheus.address }}
- {{ print "--prometheus-address=" . | quote }}
- {{ print "--prometheus-timeout=" $.Values.prometheus.timeout | quote }}
- {{ print "--prometheus-retry-timeout=" $.Values.prometheus.retryTimeout | quote }}
{{- if $.Values.prometheus.bearerToken.secretName }}
- {{ print "--prometheus-bearer-token-file=/etc/namespace-reaper/prometheus-token/" $.Values.prometheus.bearerToken.key | quote }}
{{- end }}
{{- if $.Values.prometheus.caBundle.secretName }}
- {{ print "--prometheus-ca-file=/etc/namespace-reaper/prometheus-ca/" $.Values.prometheus.caBundle.key | quote }}
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
