{{/* namespace-bootstrap's own flags (kubehpc.workload includes these). */}}
{{- define "namespace-bootstrap.serviceEnabled" -}}
{{- if and .Values.service.enabled (ne .Values.mode "cronjob") }}true{{ end -}}
{{- end -}}

{{- define "namespace-bootstrap.tlsSecretName" -}}
{{- .Values.service.tlsSecretName | default (printf "%s-tls" (include "kubehpc.fullname" .)) -}}
{{- end -}}

{{- define "namespace-bootstrap.args" -}}
- --namespace-prefix={{ .Values.namespacePrefix }}
{{- with .Values.usernamePrefix }}
- --username-prefix={{ . }}
{{- end }}
{{- with .Values.namespaceLabels }}
- --namespace-labels={{ include "namespace-bootstrap.pairs" . }}
{{- end }}
{{- with .Values.podSecurityEnforce }}
- --pod-security-enforce={{ . }}
{{- end }}
- --user-cluster-role={{ .Values.clusterRoles.user }}
- --initializer-cluster-role={{ .Values.clusterRoles.initializer }}
- --job-pod-reaper={{ .Values.jobPodReaper.enabled }}
{{- if .Values.jobPodReaper.enabled }}
- --job-pod-reaper-cluster-role={{ .Values.jobPodReaper.clusterRole }}
- --job-pod-reaper-service-account={{ .Values.jobPodReaper.serviceAccount }}
- --job-pod-reaper-namespace={{ .Values.jobPodReaper.namespace | default .Release.Namespace }}
{{- end }}
- --network-policy-allow-cidrs={{ join "," .Values.networkPolicy.allowCIDRs }}
{{- if .Values.networkPolicy.egressDeny }}
- --egress-deny
{{- with .Values.networkPolicy.egressAllowCIDRs }}
- --egress-allow-cidrs={{ join "," . }}
{{- end }}
{{- with .Values.networkPolicy.egressAllowPorts }}
- --egress-allow-ports={{ join "," . }}
{{- end }}
{{- end }}
{{- with .Values.resourceQuota }}
- --resource-quota={{ include "namespace-bootstrap.pairs" . }}
{{- end }}
{{- with .Values.limitRange.default }}
- --limit-range-default={{ include "namespace-bootstrap.pairs" . }}
{{- end }}
{{- with .Values.limitRange.defaultRequest }}
- --limit-range-default-request={{ include "namespace-bootstrap.pairs" . }}
{{- end }}
{{- if .Values.imagePullSecret.name }}
- --image-pull-secret={{ .Values.imagePullSecret.name }}
- --image-pull-secret-file=/etc/namespace-bootstrap/pull-secret/{{ .Values.imagePullSecret.key }}
{{- end }}
{{- with .Values.templateValues }}
- --template-value={{ include "namespace-bootstrap.pairs" . }}
{{- end }}
{{- if .Values.templateFiles }}
- --template-dir=/etc/namespace-bootstrap/template
{{- end }}
- --terminating-timeout={{ .Values.terminatingTimeout }}
{{- with .Values.ldap.url }}
- --ldap-url={{ . }}
{{- if $.Values.ldap.startTLS }}
- --ldap-start-tls
{{- end }}
{{- if $.Values.ldap.caBundle.secretName }}
- --ldap-ca-file=/etc/namespace-bootstrap/ldap-ca/{{ $.Values.ldap.caBundle.key }}
{{- end }}
{{- with $.Values.ldap.bindDN }}
- --ldap-bind-dn={{ . }}
{{- end }}
{{- if $.Values.ldap.bindPassword.secretName }}
- --ldap-bind-password-file=/etc/namespace-bootstrap/ldap-bind/{{ $.Values.ldap.bindPassword.key }}
{{- end }}
- --ldap-user-base-dn={{ $.Values.ldap.userBaseDN }}
- --ldap-user-filter={{ $.Values.ldap.userFilter }}
- --ldap-group-base-dn={{ $.Values.ldap.groupBaseDN }}
- --ldap-group-filter={{ $.Values.ldap.groupFilter }}
- --ldap-timeout={{ $.Values.ldap.timeout }}
{{- end }}
- --reconcile={{ .Values.reconcile.enabled }}
- --reconcile-workers={{ .Values.reconcile.workers }}
{{- if include "namespace-bootstrap.serviceEnabled" . }}
- --listen-address=:{{ .Values.service.containerPort }}
- --tls-cert-file=/etc/namespace-bootstrap/tls/tls.crt
- --tls-key-file=/etc/namespace-bootstrap/tls/tls.key
- --rate-limit={{ .Values.service.rateLimit }}
- --rate-burst={{ .Values.service.rateBurst }}
{{- with .Values.service.tokenAudiences }}
- --token-audiences={{ join "," . }}
{{- end }}
- --request-timeout={{ .Values.service.requestTimeout }}
{{- end }}
{{- end -}}

{{/* key=value,key=value, sorted, for StringToString flags. */}}
{{- define "namespace-bootstrap.pairs" -}}
{{- $out := list -}}
{{- range $k, $v := . }}{{ $out = append $out (printf "%s=%s" $k $v) }}{{ end -}}
{{- join "," $out -}}
{{- end -}}

{{- define "namespace-bootstrap.env" -}}
{{- end -}}

{{- define "namespace-bootstrap.ports" -}}
{{- if include "namespace-bootstrap.serviceEnabled" . }}
- name: https
  containerPort: {{ .Values.service.containerPort }}
  protocol: TCP
{{- end }}
{{- end -}}

{{- define "namespace-bootstrap.volumeMounts" -}}
{{- if include "namespace-bootstrap.serviceEnabled" . }}
- name: tls
  mountPath: /etc/namespace-bootstrap/tls
  readOnly: true
{{- end }}
{{- if .Values.templateFiles }}
- name: template
  mountPath: /etc/namespace-bootstrap/template
  readOnly: true
{{- end }}
{{- if .Values.imagePullSecret.name }}
- name: pull-secret
  mountPath: /etc/namespace-bootstrap/pull-secret
  readOnly: true
{{- end }}
{{- if and .Values.ldap.url .Values.ldap.caBundle.secretName }}
- name: ldap-ca
  mountPath: /etc/namespace-bootstrap/ldap-ca
  readOnly: true
{{- end }}
{{- if and .Values.ldap.url .Values.ldap.bindPassword.secretName }}
- name: ldap-bind
  mountPath: /etc/namespace-bootstrap/ldap-bind
  readOnly: true
{{- end }}
{{- end -}}

{{- define "namespace-bootstrap.volumes" -}}
{{- if include "namespace-bootstrap.serviceEnabled" . }}
- name: tls
  secret:
    secretName: {{ include "namespace-bootstrap.tlsSecretName" . }}
{{- end }}
{{- if .Values.templateFiles }}
- name: template
  configMap:
    name: {{ include "kubehpc.fullname" . }}-template
{{- end }}
{{- if .Values.imagePullSecret.name }}
- name: pull-secret
  secret:
    secretName: {{ required "imagePullSecret.secretName is required with imagePullSecret.name" .Values.imagePullSecret.secretName }}
{{- end }}
{{- if and .Values.ldap.url .Values.ldap.caBundle.secretName }}
- name: ldap-ca
  secret:
    secretName: {{ .Values.ldap.caBundle.secretName }}
{{- end }}
{{- if and .Values.ldap.url .Values.ldap.bindPassword.secretName }}
- name: ldap-bind
  secret:
    secretName: {{ .Values.ldap.bindPassword.secretName }}
{{- end }}
{{- end -}}
