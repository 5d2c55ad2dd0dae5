{{/* job-pod-reaper's own flags (kubehpc.workload includes these). */}}
{{- define "job-pod-reaper.args" -}}
{{- with .Values.reapNamespaces }}
- {{ print "--reap-namespaces=" (join "," .) | quote }}
{{- end }}
{{- if and (eq .Values.rbac.scope "namespaces") (not .Values.reapNamespaces) }}
- "--per-namespace"
{{- end }}
- {{ print "--user-namespace-prefix=" (include "kubehpc.namespacePrefix" (list . "userNamespacePrefix")) | quote }}
- {{ print "--namespace-labels=" (.Values.namespaceLabels) | quote }}
- {{ print "--object-labels=" (.Values.objectLabels) | quote }}
- {{ print "--job-label=" (.Values.jobLabel) | quote }}
- {{ print "--default-lifetime=" (.Values.defaultLifetime) | quote }}
- {{ print "--max-lifetime=" (.Values.maxLifetime) | quote }}
- {{ print "--age-from=" (.Values.ageFrom) | quote }}
- {{ print "--warn-before=" (.Values.warnBefore) | quote }}
- {{ print "--grace-period-seconds=" (.Values.gracePeriodSeconds) | quote }}
- {{ print "--max-grace-period=" (.Values.maxGracePeriod) | quote }}
- {{ print "--max-deletions-per-pass=" (.Values.maxDeletionsPerPass) | quote }}
- {{ print "--max-deletions-per-minute=" (.Values.maxDeletionsPerMinute) | quote }}
- {{ print "--anomaly-percent=" (.Values.anomalyPercent) | quote }}
- {{ print "--anomaly-min-pods=" (.Values.anomalyMinPods) | quote }}
- {{ print "--anomaly-overdue=" (.Values.anomalyOverdue) | quote }}
- {{ print "--orphan-min-age=" (.Values.orphanMinAge) | quote }}
- {{ print "--kube-api-qps=" (.Values.kubeApiQps) | quote }}
- {{ print "--kube-api-burst=" (.Values.kubeApiBurst) | quote }}
{{- end -}}

{{- define "job-pod-reaper.env" -}}
{{- with .Values.goMemLimit }}
- name: GOMEMLIMIT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "job-pod-reaper.ports" -}}
{{- end -}}

{{- define "job-pod-reaper.volumeMounts" -}}
{{- end -}}

{{- define "job-pod-reaper.volumes" -}}
{{- end -}}
