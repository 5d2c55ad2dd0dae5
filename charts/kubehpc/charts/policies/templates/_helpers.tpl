{{/* Shared helpers of the policies chart. */}}

{{- define "policies.labels" -}}
app.kubernetes.io/name: policies
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: policies
app.kubernetes.io/part-of: kubehpc
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "policies.configMapNamespace" -}}
{{- .Values.configMaps.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* Namespaces never checked. */}}
{{- define "policies.excluded" -}}
{{- toJson (concat (list "kube-system" "kube-public" "kube-node-lease") .Values.excludedNamespaces | uniq) -}}
{{- end -}}

{{/* Image prefixes, each ending in "/" so that registry.example.org does not admit registry.example.org.evil.com. */}}
{{- define "policies.registries" -}}
{{- $out := list -}}
{{- range .Values.registries }}{{ $out = append $out (printf "%s/" (trimSuffix "/" .)) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Allowed hostPath prefixes, without trailing "/" ("/" itself stays "/"). */}}
{{- define "policies.hostPaths" -}}
{{- $out := list -}}
{{- range .Values.hostPaths.allowed }}{{ $p := trimSuffix "/" . }}{{ $out = append $out (ternary "/" $p (eq $p "")) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Usernames allowed to change identity annotations (rule 9). */}}
{{- define "policies.identityWriters" -}}
{{- $out := list -}}
{{- range .Values.projectServiceAccounts }}{{ $out = append $out (printf "system:serviceaccount:%s:%s" $.Release.Namespace .) }}{{ end -}}
{{- range .Values.identityWriters.serviceAccounts }}{{ $out = append $out (printf "system:serviceaccount:%s" (replace "/" ":" .)) }}{{ end -}}
{{- range .Values.identityWriters.users }}{{ $out = append $out . }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* CEL: PRED holds for every container, init container and ephemeral container (c). */}}
{{- define "policies.cel.all" -}}
(variables.containers.all(c, {{ . }}) && variables.ephemeralContainers.all(c, {{ . }}))
{{- end -}}

{{/* CEL: the names of the containers for which PRED does not hold, joined. */}}
{{- define "policies.cel.offenders" -}}
(variables.containers.filter(c, !({{ . }})).map(c, c.name) + variables.ephemeralContainers.filter(c, !({{ . }})).map(c, c.name)).join(', ')
{{- end -}}

{{/* A value made safe inside a single-quoted CEL string. */}}
{{- define "policies.celEscape" -}}
{{- . | replace "\\" "\\\\" | replace "'" "\\'" -}}
{{- end -}}

{{/* "true" when rule 2's supplementalGroupsPolicy: Strict is required. */}}
{{- define "policies.strictGroups" -}}
{{- $v := .Values.rules.supplementalGroupsPolicyStrict -}}
{{- if eq (toString $v) "auto" -}}
{{- if semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version }}true{{ end -}}
{{- else if $v }}true{{ end -}}
{{- end -}}
