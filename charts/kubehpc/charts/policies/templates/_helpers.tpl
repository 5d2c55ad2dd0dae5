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

{{/* Namespaces never checked. A namespace named with the prefix is a user's (namespace-bootstrap hands user-operator to an LDAP user named operator): it cannot be excluded. */}}
{{- define "policies.excluded" -}}
{{- $prefix := include "kubehpc.namespacePrefix" (list . "namespacePrefix") }}
{{- range .Values.excludedNamespaces }}
{{- if and $prefix (hasPrefix $prefix .) }}
{{- fail (printf "policies.excludedNamespaces: %q starts with namespacePrefix %q: a namespace so named is a user's namespace (namespace-bootstrap creates it for the user %q) and always gets the rules; name the namespace outside the prefix" . $prefix (trimPrefix $prefix .)) }}
{{- end }}
{{- end -}}
{{- toJson (concat (list "kube-system" "kube-public" "kube-node-lease") .Values.excludedNamespaces | uniq) -}}
{{- end -}}

{{/* Image prefixes, each ending in "/" so that registry.example.org does not admit registry.example.org.evil.com. */}}
{{- define "policies.registries" -}}
{{- $out := list -}}
{{- range .Values.registries }}{{ $out = append $out (printf "%s/" (trimSuffix "/" .)) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Allowed hostPath prefixes, without trailing "/" ("/" itself stays "/"); {user} and {home} stand for the user's name and home directory ({home} is added by allowUserHome). */}}
{{- define "policies.hostPaths" -}}
{{- $out := list -}}
{{- range .Values.hostPaths.allowed }}{{ $p := trimSuffix "/" . }}{{ $out = append $out (ternary "/" $p (eq $p "")) }}{{ end -}}
{{- if .Values.hostPaths.allowUserHome }}{{ $out = append $out "{home}" }}{{ end -}}
{{- toJson ($out | uniq) -}}
{{- end -}}

{{/* The nfs allow-list: [{"server":..., "path":...}], paths without trailing "/". */}}
{{- define "policies.nfs" -}}
{{- $out := list -}}
{{- range .Values.volumes.nfs }}{{ $p := trimSuffix "/" .path }}{{ $out = append $out (dict "server" .server "path" (ternary "/" $p (eq $p ""))) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The nfs allow-list for messages. */}}
{{- define "policies.nfsText" -}}
{{- $out := list -}}
{{- range .Values.volumes.nfs }}{{ $out = append $out (printf "%s:%s" .server .path) }}{{ end -}}
{{- ternary "(none)" (join ", " $out) (empty $out) -}}
{{- end -}}

{{/* "true" when some allow-list entry names the user's home directory. */}}
{{- define "policies.needsHome" -}}
{{- $t := .Values.hostPaths.allowUserHome -}}
{{- range .Values.hostPaths.allowed }}{{ if contains "{home}" . }}{{ $t = true }}{{ end }}{{ end -}}
{{- range .Values.volumes.nfs }}{{ if contains "{home}" .path }}{{ $t = true }}{{ end }}{{ end -}}
{{- if $t }}true{{ end -}}
{{- end -}}

{{/* CEL: path (first) equals or is below the directory (second), on whole path segments. */}}
{{- define "policies.cel.under" -}}
({{ index . 0 }} == {{ index . 1 }} || {{ index . 0 }}.startsWith({{ index . 1 }} == '/' ? '/' : {{ index . 1 }} + '/'))
{{- end -}}

{{/* CEL: the user's name for {user} in paths, or '' when it is not a plain name (so no entry with {user} applies). Annotations: kubehpc.io/user; ConfigMaps: the namespace name without the prefix. */}}
{{- define "policies.vap.pathUser" -}}
{{- if eq .Values.identitySource "annotations" -}}
namespaceObject.metadata.?annotations.orValue({})[?'kubehpc.io/user'].orValue('').matches('^[A-Za-z0-9_][A-Za-z0-9._-]*$') ? namespaceObject.metadata.annotations['kubehpc.io/user'] : ''
{{- else -}}
{{- $prefix := include "kubehpc.namespacePrefix" (list . "namespacePrefix") -}}
request.namespace.startsWith('{{ $prefix }}') && request.namespace.substring({{ len $prefix }}).matches('^[A-Za-z0-9_][A-Za-z0-9._-]*$') ? request.namespace.substring({{ len $prefix }}) : ''
{{- end -}}
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

{{/* The walltime grammar, pkg/walltime.Pattern (one definition; a chart test compares them), with each backslash doubled for a CEL or JMESPath string literal inside YAML. */}}
{{- define "policies.walltimePattern" -}}
^(([0-9]{1,5}(\\.[0-9]+)?h)|([0-9]{1,7}(\\.[0-9]+)?m)|([0-9]{1,9}(\\.[0-9]+)?s)|([0-9]{1,12}(\\.[0-9]+)?ms)){1,4}$
{{- end -}}

{{/* The allowed tolerations as [{"key","operator","value","effect"}] with the API's defaults filled in. */}}
{{- define "policies.tolerations" -}}
{{- $out := list -}}
{{- range .Values.scheduling.tolerations }}{{ $out = append $out (dict "key" (.key | default "") "operator" (.operator | default "Equal") "value" (.value | default "") "effect" (.effect | default "")) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The allowed tolerations for messages. */}}
{{- define "policies.tolerationsText" -}}
{{- $out := list -}}
{{- range .Values.scheduling.tolerations }}{{ $out = append $out (printf "%s:%s:%s:%s" (.key | default "") (.operator | default "Equal") (.value | default "") (.effect | default "")) }}{{ end -}}
{{- ternary "none" (join ", " $out) (empty $out) -}}
{{- end -}}

{{/* "true" when supplementalGroupsPolicy is set by mutation: `mutation: auto` and the cluster serves MutatingAdmissionPolicy (VAP engine), or always with Kyverno (a mutate rule). */}}
{{- define "policies.mutationServed" -}}
{{- $v := toString .Values.supplementalGroupsMutation -}}
{{- if eq $v "auto" -}}
{{- if or (eq .Values.engine "kyverno") (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy") }}true{{ end -}}
{{- else if eq $v "true" }}true{{ end -}}
{{- end -}}

{{/* The huge-page sizes resources.podMax caps, for messages. */}}
{{- define "policies.hugePagesText" -}}
{{- $out := list -}}
{{- range $r, $max := .Values.resources.podMax }}{{ if hasPrefix "hugepages-" $r }}{{ $out = append $out (printf "%s at most %s" $r $max) }}{{ end }}{{ end -}}
{{- ternary "none" (join ", " $out) (empty $out) -}}
{{- end -}}

{{/* The home roots, without trailing "/". */}}
{{- define "policies.homeRoots" -}}
{{- $out := list -}}
{{- range .Values.homeRoots }}{{ $out = append $out (trimSuffix "/" .) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}
