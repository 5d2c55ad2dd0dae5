{{/* namespace-bootstrap's own flags (kubehpc.workload includes these). */}}
{{- define "namespace-bootstrap.serviceEnabled" -}}
{{- if and .Values.service.enabled (ne .Values.mode "cronjob") }}true{{ end -}}
{{- end -}}

{{- define "namespace-bootstrap.tlsSecretName" -}}
{{- .Values.service.tlsSecretName | default (printf "%s-tls" (include "kubehpc.fullname" .)) -}}
{{- end -}}

{{- define "namespace-bootstrap.args" -}}
{{- $ldap := include "kubehpc.ldap" (list . dict) | fromYaml }}
- {{ print "--namespace-prefix=" (include "kubehpc.namespacePrefix" (list . "namespacePrefix")) | quote }}
{{- with .Values.usernamePrefix }}
- {{ print "--username-prefix=" (.) | quote }}
{{- end }}
{{- with .Values.namespaceLabels }}
- {{ print "--namespace-labels=" (include "namespace-bootstrap.pairs" .) | quote }}
{{- end }}
{{- with .Values.podSecurityEnforce }}
- {{ print "--pod-security-enforce=" (.) | quote }}
{{- end }}
- {{ print "--user-cluster-role=" (.Values.clusterRoles.user) | quote }}
- {{ print "--initializer-cluster-role=" (.Values.clusterRoles.initializer) | quote }}
- {{ print "--job-pod-reaper=" (.Values.jobPodReaper.enabled) | quote }}
{{- if .Values.jobPodReaper.enabled }}
- {{ print "--job-pod-reaper-cluster-role=" (.Values.jobPodReaper.clusterRole) | quote }}
- {{ print "--job-pod-reaper-service-account=" (.Values.jobPodReaper.serviceAccount) | quote }}
- {{ print "--job-pod-reaper-namespace=" (.Values.jobPodReaper.namespace | default .Release.Namespace) | quote }}
{{- end }}
- {{ print "--network-policy-allow-cidrs=" (join "," .Values.networkPolicy.allowCIDRs) | quote }}
{{- if .Values.networkPolicy.egressDeny }}
- --egress-deny
{{- with .Values.networkPolicy.egressAllowCIDRs }}
- {{ print "--egress-allow-cidrs=" (join "," .) | quote }}
{{- end }}
{{- with .Values.networkPolicy.egressAllowPorts }}
- {{ print "--egress-allow-ports=" (join "," .) | quote }}
{{- end }}
{{- end }}
{{- with .Values.resourceQuota }}
- {{ print "--resource-quota=" (include "namespace-bootstrap.pairs" .) | quote }}
{{- end }}
{{- with .Values.limitRange.default }}
- {{ print "--limit-range-default=" (include "namespace-bootstrap.pairs" .) | quote }}
{{- end }}
{{- with .Values.limitRange.defaultRequest }}
- {{ print "--limit-range-default-request=" (include "namespace-bootstrap.pairs" .) | quote }}
{{- end }}
{{- if .Values.imagePullSecret.name }}
- {{ print "--image-pull-secret=" (.Values.imagePullSecret.name) | quote }}
- {{ print "--image-pull-secret-file=/etc/namespace-bootstrap/pull-secret/" (.Values.imagePullSecret.key) | quote }}
{{- end }}
{{- with .Values.templateValues }}
- {{ print "--template-value=" (include "namespace-bootstrap.pairs" .) | quote }}
{{- end }}
{{- if .Values.templateFiles }}
- --template-dir=/etc/namespace-bootstrap/template
{{- end }}
- {{ print "--terminating-timeout=" (.Values.terminatingTimeout) | quote }}
{{- with $ldap.url }}
- {{ print "--ldap-url=" . | quote }}
- {{ print "--ldap-preset=" $ldap.preset | quote }}
- {{ print "--ldap-tls=" $ldap.startTLS | quote }}
- {{ print "--ldap-tls-verify=" $ldap.tlsVerify | quote }}
{{- with $ldap.tlsServerName }}
- {{ print "--ldap-tls-server-name=" . | quote }}
{{- end }}
{{- if $ldap.caBundle.secretName }}
- {{ print "--ldap-tls-ca-file=/etc/namespace-bootstrap/ldap-ca/" $ldap.caBundle.key | quote }}
{{- end }}
{{- with $ldap.bindDN }}
- {{ print "--ldap-bind-dn=" . | quote }}
{{- end }}
{{- if $ldap.bindPassword.secretName }}
- {{ print "--ldap-bind-password-file=/etc/namespace-bootstrap/ldap-bind/" $ldap.bindPassword.key | quote }}
{{- end }}
- {{ print "--ldap-user-base-dn=" $ldap.userBaseDN | quote }}
- {{ print "--ldap-group-base-dn=" $ldap.groupBaseDN | quote }}
{{- with $ldap.userFilter }}
- {{ print "--ldap-user-filter=" . | quote }}
{{- end }}
{{- with $ldap.groupFilter }}
- {{ print "--ldap-group-filter=" . | quote }}
{{- end }}
{{- with $ldap.memberScheme }}
- {{ print "--ldap-member-scheme=" . | quote }}
{{- end }}
- {{ print "--ldap-timeout=" $.Values.ldap.timeout | quote }}
{{- end }}
- {{ print "--reconcile=" (.Values.reconcile.enabled) | quote }}
- {{ print "--reconcile-workers=" (.Values.reconcile.workers) | quote }}
{{- if include "namespace-bootstrap.serviceEnabled" . }}
- {{ print "--listen-address=:" (.Values.service.containerPort) | quote }}
- --tls-cert-file=/etc/namespace-bootstrap/tls/tls.crt
- --tls-key-file=/etc/namespace-bootstrap/tls/tls.key
- {{ print "--rate-limit=" (.Values.service.rateLimit) | quote }}
- {{ print "--rate-burst=" (.Values.service.rateBurst) | quote }}
{{- with .Values.service.tokenAudiences }}
- {{ print "--token-audiences=" (join "," .) | quote }}
{{- end }}
- {{ print "--request-timeout=" (.Values.service.requestTimeout) | quote }}
- {{ print "--client-rate-limit=" (.Values.service.clientRateLimit) | quote }}
- {{ print "--client-rate-burst=" (.Values.service.clientRateBurst) | quote }}
- {{ print "--token-review-qps=" (.Values.service.tokenReviewQPS) | quote }}
- {{ print "--token-review-burst=" (.Values.service.tokenReviewBurst) | quote }}
{{- end }}
{{- with .Values.allowedGroups }}
- {{ print "--allowed-groups=" (join "," .) | quote }}
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
{{- $ldap := include "kubehpc.ldap" (list . dict) | fromYaml }}
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
{{- if and $ldap.url $ldap.caBundle.secretName }}
- name: ldap-ca
  mountPath: /etc/namespace-bootstrap/ldap-ca
  readOnly: true
{{- end }}
{{- if and $ldap.url $ldap.bindPassword.secretName }}
- name: ldap-bind
  mountPath: /etc/namespace-bootstrap/ldap-bind
  readOnly: true
{{- end }}
{{- end -}}

{{- define "namespace-bootstrap.volumes" -}}
{{- $ldap := include "kubehpc.ldap" (list . dict) | fromYaml }}
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
{{- if and $ldap.url $ldap.caBundle.secretName }}
- name: ldap-ca
  secret:
    secretName: {{ $ldap.caBundle.secretName }}
{{- end }}
{{- if and $ldap.url $ldap.bindPassword.secretName }}
- name: ldap-bind
  secret:
    secretName: {{ $ldap.bindPassword.secretName }}
{{- end }}
{{- end -}}
