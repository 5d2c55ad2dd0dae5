{{/*
ValidatingAdmissionPolicy building blocks. Every pod policy has these
variables; the identity facts come from the namespace's annotations or from
one of ldap-configmap's ConfigMaps (params).
*/}}

{{- define "policies.vap.podVariables" -}}
- name: containers
  expression: "object.spec.containers + object.spec.?initContainers.orValue([])"
- name: ephemeralContainers
  expression: "object.spec.?ephemeralContainers.orValue([])"
# CREATE, or an UPDATE that changes the spec (ephemeral containers, resize,
# image): spec rules apply. A metadata-only UPDATE was checked at creation.
- name: specChanged
  expression: "oldObject == null || object.spec != oldObject.spec"
- name: accountChanged
  expression: >-
    oldObject == null ||
    ('account' in object.metadata.?labels.orValue({})) != ('account' in oldObject.metadata.?labels.orValue({})) ||
    object.metadata.?labels.orValue({})[?'account'].orValue('') != oldObject.metadata.?labels.orValue({})[?'account'].orValue('')
- name: podRunAsUser
  expression: "object.spec.?securityContext.?runAsUser.orValue(-1)"
- name: podRunAsGroup
  expression: "object.spec.?securityContext.?runAsGroup.orValue(-1)"
- name: podRunAsNonRoot
  expression: "object.spec.?securityContext.?runAsNonRoot.orValue(false)"
{{- end -}}

{{/* The identity variables. dict: ctx, source ("annotations" or "params"), fact (for params: uid, gid, gids, groups, home). */}}
{{- define "policies.vap.identityVariables" -}}
{{- if eq .source "annotations" }}
- name: ann
  expression: "namespaceObject.metadata.?annotations.orValue({})"
- name: user
  expression: "variables.ann[?'kubehpc.io/user'].orValue(request.namespace)"
- name: uidStr
  expression: "variables.ann[?'kubehpc.io/uid'].orValue('')"
- name: gidStr
  expression: "variables.ann[?'kubehpc.io/gid'].orValue('')"
- name: gidsStr
  expression: "variables.ann[?'kubehpc.io/gids'].orValue('')"
- name: groupsStr
  expression: "variables.ann[?'kubehpc.io/groups'].orValue('')"
- name: homeStr
  expression: "variables.ann[?'kubehpc.io/home'].orValue('')"
{{- else }}
- name: user
  expression: "request.namespace"
- name: {{ .fact }}Str
  expression: "params.?data.orValue({})[?request.namespace].orValue('')"
{{- end }}
{{- if or (eq .source "annotations") (eq .fact "uid") }}
- name: uid
  expression: "variables.uidStr.matches('^[0-9]+$') ? int(variables.uidStr) : -1"
{{- end }}
{{- if or (eq .source "annotations") (eq .fact "gid") }}
- name: gid
  expression: "variables.gidStr.matches('^[0-9]+$') ? int(variables.gidStr) : -1"
{{- end }}
{{- end -}}

{{/* Where the identity is missing from, for messages. */}}
{{- define "policies.vap.missing" -}}
{{- if eq .source "annotations" -}}
'namespace ' + request.namespace + ' has no LDAP identity ({{ .annotation }} annotation missing or invalid): the user is not in LDAP, or ldap-configmap has not synced them yet'
{{- else -}}
'user ' + request.namespace + ' is missing from ConfigMap {{ .configMap }}: the user is not in LDAP, or ldap-configmap has not synced them yet'
{{- end -}}
{{- end -}}

{{/* CEL: membership of a GID (g, an int) or a group name (s) in the user's list. Annotations: ",a,b,"; ConfigMaps: ["a","b"] (JSON strings). */}}
{{- define "policies.vap.inGids" -}}
{{- if eq .source "annotations" -}}
variables.gidsStr.contains(',' + string(g) + ',')
{{- else -}}
variables.gidsStr.contains('"' + string(g) + '"')
{{- end -}}
{{- end -}}

{{- define "policies.vap.inGroups" -}}
{{- if eq .source "annotations" -}}
variables.groupsStr.contains(',' + variables.account + ',')
{{- else -}}
variables.groupsStr.contains('"' + variables.account + '"')
{{- end -}}
{{- end -}}

{{/* Validations of rule 1 (UID part). dict: ctx, source, configMap, minUID. */}}
{{- define "policies.vap.uidValidations" -}}
- expression: "!variables.specChanged || (variables.uid > 0)"
  messageExpression: >-
    {{ include "policies.vap.missing" (dict "source" .source "annotation" "kubehpc.io/uid" "configMap" .configMap) }}
  reason: Forbidden
- expression: "!variables.specChanged || variables.uid <= 0 || variables.uid >= {{ int .minUID }}"
  messageExpression: >-
    'the LDAP UID of ' + variables.user + ' is ' + string(variables.uid) + ', below minUID {{ int .minUID }}: system accounts do not run pods'
  reason: Forbidden
- expression: >-
    !variables.specChanged || variables.uid <= 0 ||
    ((variables.podRunAsUser == -1 || variables.podRunAsUser == variables.uid) &&
    {{ include "policies.cel.all" "c.?securityContext.?runAsUser.orValue(variables.podRunAsUser) == variables.uid" }})
  messageExpression: >-
    'runAsUser must be ' + string(variables.uid) + ', the LDAP UID of ' + variables.user +
    ', in the pod securityContext or in every container' +
    (variables.podRunAsUser != -1 && variables.podRunAsUser != variables.uid ? ' (the pod sets ' + string(variables.podRunAsUser) + ')' : '') +
    (size({{ include "policies.cel.offenders" "c.?securityContext.?runAsUser.orValue(variables.podRunAsUser) == variables.uid" }}) > 0 ? '; wrong or unset in: ' + {{ include "policies.cel.offenders" "c.?securityContext.?runAsUser.orValue(variables.podRunAsUser) == variables.uid" }} : '')
  reason: Forbidden
- expression: >-
    !variables.specChanged ||
    {{ include "policies.cel.all" "c.?securityContext.?runAsNonRoot.orValue(variables.podRunAsNonRoot) == true" }}
  messageExpression: >-
    'runAsNonRoot must be true in the pod securityContext or in every container; not set in: ' +
    {{ include "policies.cel.offenders" "c.?securityContext.?runAsNonRoot.orValue(variables.podRunAsNonRoot) == true" }}
  reason: Forbidden
{{- end -}}

{{/* Validations of rule 1 (GID part). */}}
{{- define "policies.vap.gidValidations" -}}
- expression: "!variables.specChanged || (variables.gid >= 0)"
  messageExpression: >-
    {{ include "policies.vap.missing" (dict "source" .source "annotation" "kubehpc.io/gid" "configMap" .configMap) }}
  reason: Forbidden
- expression: "!variables.specChanged || variables.gid < 0 || variables.gid >= {{ int .minGID }}"
  messageExpression: >-
    'the primary LDAP GID of ' + variables.user + ' is ' + string(variables.gid) + ', below minGID {{ int .minGID }}: system groups are not used by pods'
  reason: Forbidden
- expression: >-
    !variables.specChanged || variables.gid < 0 ||
    ((variables.podRunAsGroup == -1 || variables.podRunAsGroup == variables.gid) &&
    {{ include "policies.cel.all" "c.?securityContext.?runAsGroup.orValue(variables.podRunAsGroup) == variables.gid" }})
  messageExpression: >-
    'runAsGroup must be ' + string(variables.gid) + ', the primary LDAP GID of ' + variables.user +
    ', in the pod securityContext or in every container' +
    (variables.podRunAsGroup != -1 && variables.podRunAsGroup != variables.gid ? ' (the pod sets ' + string(variables.podRunAsGroup) + ')' : '') +
    (size({{ include "policies.cel.offenders" "c.?securityContext.?runAsGroup.orValue(variables.podRunAsGroup) == variables.gid" }}) > 0 ? '; wrong or unset in: ' + {{ include "policies.cel.offenders" "c.?securityContext.?runAsGroup.orValue(variables.podRunAsGroup) == variables.gid" }} : '')
  reason: Forbidden
- expression: >-
    !variables.specChanged || variables.gid < 0 ||
    object.spec.?securityContext.?fsGroup.orValue(-1) == variables.gid
  messageExpression: >-
    'spec.securityContext.fsGroup must be ' + string(variables.gid) + ', the primary LDAP GID of ' + variables.user
  reason: Forbidden
{{- end -}}

{{/* Validations of rule 2 (supplemental groups). */}}
{{- define "policies.vap.gidsValidations" -}}
- expression: >-
    !variables.specChanged || object.spec.?securityContext.?supplementalGroups.orValue([]).all(g, g >= {{ int .minGID }})
  messageExpression: >-
    'supplementalGroups may not hold GIDs below minGID {{ int .minGID }} (system groups): ' +
    object.spec.?securityContext.?supplementalGroups.orValue([]).filter(g, g < {{ int .minGID }}).map(g, string(g)).join(', ')
  reason: Forbidden
- expression: >-
    !variables.specChanged || size(object.spec.?securityContext.?supplementalGroups.orValue([])) == 0 ||
    variables.gidsStr != ''
  messageExpression: >-
    {{ include "policies.vap.missing" (dict "source" .source "annotation" "kubehpc.io/gids" "configMap" .configMap) }}
  reason: Forbidden
- expression: >-
    !variables.specChanged ||
    object.spec.?securityContext.?supplementalGroups.orValue([]).all(g, {{ include "policies.vap.inGids" . }})
  messageExpression: >-
    'supplementalGroups may only hold the LDAP groups of ' + variables.user + '; not theirs: ' +
    object.spec.?securityContext.?supplementalGroups.orValue([]).filter(g, !({{ include "policies.vap.inGids" . }})).map(g, string(g)).join(', ')
  reason: Forbidden
{{- end -}}

{{/* Validations of rule 3 (account). */}}
{{- define "policies.vap.accountValidations" -}}
- expression: "!variables.accountChanged || variables.account != ''"
  message: "the label 'account' (the project account the pod charges) is required"
  reason: Forbidden
- expression: "!variables.accountChanged || variables.account == '' || variables.groupsStr != ''"
  messageExpression: >-
    {{ include "policies.vap.missing" (dict "source" .source "annotation" "kubehpc.io/groups" "configMap" .configMap) }}
  reason: Forbidden
- expression: >-
    !variables.accountChanged || variables.account == '' || variables.groupsStr == '' ||
    {{ include "policies.vap.inGroups" . }}
  messageExpression: >-
    'account ' + variables.account + ' is not one of the LDAP groups of ' + variables.user
  reason: Forbidden
{{- end -}}

{{- define "policies.vap.accountVariable" -}}
- name: account
  expression: "object.metadata.?labels.orValue({})[?'account'].orValue('')"
{{- end -}}

{{/* A ValidatingAdmissionPolicy and its binding. dict: ctx, name, paramConfigMap (optional), resourceRules (YAML), matchUserNamespaces (bool), variables (YAML), validations (YAML). */}}
{{- define "policies.vap.policy" -}}
{{- $ctx := .ctx }}
{{- $name := printf "%s-%s" $ctx.Values.namePrefix .name }}
{{- $prefix := include "kubehpc.namespacePrefix" (list $ctx "namespacePrefix") }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ $name }}
  labels:
    {{- include "policies.labels" $ctx | nindent 4 }}
spec:
  failurePolicy: Fail
  {{- if .paramConfigMap }}
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  {{- end }}
  matchConstraints:
    resourceRules:
      {{- .resourceRules | nindent 6 }}
  {{- if and .matchUserNamespaces $prefix }}
  matchConditions:
    - name: user-namespaces
      expression: "request.namespace.startsWith('{{ $prefix }}')"
  {{- end }}
  variables:
    {{- .variables | nindent 4 }}
  validations:
    {{- .validations | nindent 4 }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ $name }}
  labels:
    {{- include "policies.labels" $ctx | nindent 4 }}
spec:
  policyName: {{ $name }}
  validationActions: {{ toJson $ctx.Values.validationActions }}
  {{- if .paramConfigMap }}
  paramRef:
    name: {{ .paramConfigMap }}
    namespace: {{ include "policies.configMapNamespace" $ctx }}
    parameterNotFoundAction: Deny
  {{- end }}
  {{- if .matchUserNamespaces }}
  {{- /* With a prefix, the name alone decides (matchConditions): a label can be removed. */}}
  {{- $sel := ternary (dict) $ctx.Values.namespaceSelector (ne $prefix "") }}
  matchResources:
    namespaceSelector:
      {{- with $sel.matchLabels }}
      matchLabels:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: {{ include "policies.excluded" $ctx }}
        {{- with $sel.matchExpressions }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- end }}
{{- end -}}
