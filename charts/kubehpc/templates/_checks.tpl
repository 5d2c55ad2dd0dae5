{{- /*
umbrella.checkPrefixes refuses to render when the enabled charts would act
on different user namespace prefixes. Each chart resolves its own prefix
(kubehpc-lib: its own value, else global.namespacePrefix, else "user-"),
and each tool's guard follows its tool, but only the umbrella sees them all:
namespace-bootstrap creating hpc-alice while the policies match ky-* leaves
every pod in hpc-alice unchecked (privileged, any UID, no walltime), and
job-pod-reaper on another prefix never reaps them. An empty prefix (the
policies', job-pod-reaper's: selection by label, OSC style) is not compared;
nor is namespace-reaper's when its namespaceRegexp is set.
*/ -}}
{{- define "umbrella.checkPrefixes" -}}
{{- $global := (.Values.global).namespacePrefix -}}
{{- $consumers := list
  (list "namespace-bootstrap" "namespacePrefix")
  (list "ldap-configmap" "userPrefix")
  (list "job-pod-reaper" "userNamespacePrefix")
  (list "policies" "namespacePrefix") -}}
{{- $seen := dict -}}
{{- range $consumers -}}
{{- $chart := index . 0 -}}
{{- $key := index . 1 -}}
{{- $v := index $.Values $chart | default dict -}}
{{- if and $v.enabled (or (ne $chart "policies") (ne ($v.engine | default "vap") "none")) -}}
{{- $own := index $v $key -}}
{{- $p := "user-" -}}
{{- if not (kindIs "invalid" $own) }}{{ $p = $own }}{{ else if not (kindIs "invalid" $global) }}{{ $p = $global }}{{ end -}}
{{- if $p }}{{ $_ := set $seen (printf "%s.%s" $chart $key) $p }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $nr := index .Values "namespace-reaper" | default dict -}}
{{- if and $nr.enabled (kindIs "invalid" $nr.namespaceRegexp) -}}
{{- $_ := set $seen "namespace-reaper (namespaceRegexp <prefix>.+)" ($global | default "user-") -}}
{{- end -}}
{{- if gt (len (values $seen | uniq)) 1 -}}
{{- $parts := list -}}
{{- range $k, $p := $seen }}{{ $parts = append $parts (printf "%s=%q" $k $p) }}{{ end -}}
{{- fail (printf "the user namespace prefix differs between the charts (%s): a guard or policy on another prefix than the tools' leaves user namespaces unguarded (pods unchecked, walltimes never reaped); set global.namespacePrefix once and remove the charts' own values (an empty policies.namespacePrefix or job-pod-reaper.userNamespacePrefix selects by label and is not compared)" (join ", " $parts)) -}}
{{- end -}}
{{- end -}}
