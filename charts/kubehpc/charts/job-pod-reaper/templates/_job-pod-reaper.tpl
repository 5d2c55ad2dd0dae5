{{/* job-pod-reaper's own flags (kubehpc.workload includes these). */}}
{{- define "job-pod-reaper.args" -}}
{{- with .Values.reapNamespaces }}
- --reap-namespaces={{ join "," . }}
{{- end }}
- --namespace-labels={{ .Values.namespaceLabels }}
- --object-labels={{ .Values.objectLabels }}
- --job-label={{ .Values.jobLabel }}
- --default-lifetime={{ .Values.defaultLifetime }}
- --max-lifetime={{ .Values.maxLifetime }}
- --age-from={{ .Values.ageFrom }}
- --warn-before={{ .Values.warnBefore }}
- --grace-period-seconds={{ .Values.gracePeriodSeconds }}
- --max-deletions-per-pass={{ .Values.maxDeletionsPerPass }}
- --orphan-min-age={{ .Values.orphanMinAge }}
{{- end -}}

{{- define "job-pod-reaper.env" -}}
{{- end -}}

{{- define "job-pod-reaper.ports" -}}
{{- end -}}

{{- define "job-pod-reaper.volumeMounts" -}}
{{- end -}}

{{- define "job-pod-reaper.volumes" -}}
{{- end -}}
