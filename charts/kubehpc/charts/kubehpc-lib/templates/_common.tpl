{{- /*
Shared helpers of the kubehpc tool charts (ldap-configmap, job-pod-reaper,
namespace-reaper, namespace-bootstrap), defined once in this library chart,
which each of them lists as a dependency. Each chart adds its own
"<chart>.args", "<chart>.env", "<chart>.ports", "<chart>.volumes" and
"<chart>.volumeMounts" templates, which kubehpc.workload includes.
*/ -}}

{{/* The chart's name: the tool's name unless nameOverride is set. */}}
{{- define "kubehpc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of the tool's objects. It defaults to the tool's name, not
<release>-<tool>: Open OnDemand's hook and namespace-bootstrap bind the
ClusterRole and ServiceAccount by these names.
*/}}
{{- define "kubehpc.fullname" -}}
{{- default (include "kubehpc.name" .) .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubehpc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubehpc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubehpc.labels" -}}
{{ include "kubehpc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Chart.Name }}
app.kubernetes.io/part-of: kubehpc
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kubehpc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubehpc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The image reference. <registry>/<repository>@<digest> when image.digest is set
(the tag is then ignored), else <registry>/<repository>:<tag>. The registry is
image.registry, else global.imageRegistry, else ghcr.io/kubehpc: one value
moves every tool to a site's mirror. A repository whose first component is a
registry host (has a "." or ":", or is localhost, as in Docker's reference
grammar) is a full repository and takes no registry: OSC's values keep
working. The tag is image.tag, else the chart's appVersion, which `make chart`
sets to the VERSION `make images` tagged.
*/}}
{{- define "kubehpc.image" -}}
{{- $registry := .Values.image.registry | default ((.Values.global).imageRegistry) | default "ghcr.io/kubehpc" | trimSuffix "/" -}}
{{- $repo := .Values.image.repository -}}
{{- $first := first (splitList "/" $repo) -}}
{{- if not (and (contains "/" $repo) (or (contains "." $first) (contains ":" $first) (eq $first "localhost"))) -}}
{{- $repo = printf "%s/%s" $registry $repo -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}
{{ $repo }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The pod's imagePullSecrets: the chart's, else global's; each a Secret name or {name: …}. */}}
{{- define "kubehpc.imagePullSecrets" -}}
{{- range (.Values.imagePullSecrets | default ((.Values.global).imagePullSecrets)) }}
- name: {{ if kindIs "string" . }}{{ . | quote }}{{ else }}{{ .name | quote }}{{ end }}
{{- end }}
{{- end -}}

{{/* True when the tool runs as a CronJob (one pass per run, --once). */}}
{{- define "kubehpc.isCronJob" -}}
{{- if eq .Values.mode "cronjob" }}true{{ end -}}
{{- end -}}

{{/* The admin port (/metrics, /healthz, /readyz). */}}
{{- define "kubehpc.adminPort" -}}
{{- .Values.metrics.port | default 8080 -}}
{{- end -}}

{{/* The run flags every tool shares (pkg/daemon, pkg/logging). */}}
{{- define "kubehpc.runArgs" -}}
- {{ print "--log-format=" (.Values.logFormat) | quote }}
- {{ print "--log-level=" (.Values.logLevel) | quote }}
- {{ print "--admin-address=:" (include "kubehpc.adminPort" .) | quote }}
{{- if include "kubehpc.isCronJob" . }}
- --once
{{- else }}
{{- if .Values.schedule }}
- {{ print "--schedule=" (.Values.schedule) | quote }}
{{- else if .Values.interval }}
- {{ print "--interval=" (.Values.interval) | quote }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
- {{ print "--leader-elect-namespace=" (.Release.Namespace) | quote }}
- {{ print "--leader-elect-lease-name=" (include "kubehpc.fullname" .) | quote }}
{{- /* The pod's name ($(POD_NAME), the pod's env): the lease guard lets a token hold the Lease only as its own pod. */}}
- --leader-elect-identity=$(POD_NAME)
{{- end }}
{{- end }}
{{- if .Values.dryRun }}
- --dry-run
{{- end }}
{{- end -}}

{{- define "kubehpc.checkValues" -}}
{{- if and (not (include "kubehpc.isCronJob" .)) (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "%s: replicaCount %d needs leaderElection.enabled=true (otherwise several replicas would act at once)" .Chart.Name (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}

{{/* The pod template of the Deployment or the CronJob's Job. */}}
{{- define "kubehpc.podTemplate" -}}
metadata:
  labels:
    {{- include "kubehpc.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/part-of: kubehpc
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* kubehpc-lib's values are only a copy of global. */}}
    checksum/values: {{ toJson (omit .Values "kubehpc-lib") | sha256sum | trunc 16 }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "kubehpc.serviceAccountName" . }}
  automountServiceAccountToken: true
  enableServiceLinks: false
  {{- if include "kubehpc.isCronJob" . }}
  restartPolicy: {{ .Values.cronJob.restartPolicy }}
  {{- end }}
  {{- with (include "kubehpc.imagePullSecrets" . | trim) }}
  imagePullSecrets:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .Chart.Name }}
      image: {{ include "kubehpc.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "kubehpc.runArgs" . | trim | nindent 8 }}
        {{- with (include (printf "%s.args" .Chart.Name) . | trim) }}{{ . | nindent 8 }}{{ end }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- with (include (printf "%s.env" .Chart.Name) . | trim) }}{{ . | nindent 8 }}{{ end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: admin
          containerPort: {{ include "kubehpc.adminPort" . }}
          protocol: TCP
        {{- with (include (printf "%s.ports" .Chart.Name) . | trim) }}{{ . | nindent 8 }}{{ end }}
      {{- if not (include "kubehpc.isCronJob" .) }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: admin
        periodSeconds: 20
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
        periodSeconds: 10
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with (include (printf "%s.volumeMounts" .Chart.Name) . | trim) }}{{ . | nindent 8 }}{{ end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with (include (printf "%s.volumes" .Chart.Name) . | trim) }}{{ . | nindent 4 }}{{ end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The Deployment or the CronJob, chosen by .Values.mode. */}}
{{- define "kubehpc.workload" -}}
{{- include "kubehpc.checkValues" . -}}
{{- if include "kubehpc.isCronJob" . }}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "kubehpc.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  schedule: {{ .Values.cronJob.schedule | quote }}
  {{- with .Values.cronJob.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ .Values.cronJob.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ .Values.cronJob.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .Values.cronJob.failedJobsHistoryLimit }}
  suspend: {{ .Values.cronJob.suspend }}
  jobTemplate:
    metadata:
      labels:
        {{- include "kubehpc.labels" . | nindent 8 }}
    spec:
      backoffLimit: {{ .Values.cronJob.backoffLimit }}
      {{- with .Values.cronJob.activeDeadlineSeconds }}
      activeDeadlineSeconds: {{ . }}
      {{- end }}
      ttlSecondsAfterFinished: {{ .Values.cronJob.ttlSecondsAfterFinished }}
      template:
        {{- include "kubehpc.podTemplate" . | nindent 8 }}
{{- else }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "kubehpc.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  revisionHistoryLimit: 3
  strategy:
    type: {{ if .Values.leaderElection.enabled }}RollingUpdate{{ else }}Recreate{{ end }}
  selector:
    matchLabels:
      {{- include "kubehpc.selectorLabels" . | nindent 6 }}
  template:
    {{- include "kubehpc.podTemplate" . | nindent 4 }}
{{- end }}
{{- end -}}

{{/* ServiceAccount, metrics Service, ServiceMonitor, PodDisruptionBudget and the leader-election Role. */}}
{{- define "kubehpc.common" -}}
{{- if .Values.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "kubehpc.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- if and (not (include "kubehpc.isCronJob" .)) .Values.metrics.service.enabled }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "kubehpc.fullname" . }}-metrics
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
  {{- with .Values.metrics.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  selector:
    {{- include "kubehpc.selectorLabels" . | nindent 4 }}
  ports:
    - name: admin
      port: {{ include "kubehpc.adminPort" . }}
      targetPort: admin
      protocol: TCP
{{- if .Values.metrics.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "kubehpc.fullname" . }}
  namespace: {{ .Values.metrics.serviceMonitor.namespace | default .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      {{- include "kubehpc.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: admin
      path: /metrics
      interval: {{ .Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.metrics.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}
{{- if and (not (include "kubehpc.isCronJob" .)) .Values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "kubehpc.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  {{- if .Values.podDisruptionBudget.minAvailable }}
  minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "kubehpc.selectorLabels" . | nindent 6 }}
{{- end }}
{{- if and .Values.rbac.create (not (include "kubehpc.isCronJob" .)) .Values.leaderElection.enabled }}
---
# Leader election: one Lease named after the tool in the release namespace.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "kubehpc.fullname" . }}-leader-election
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["create"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: [{{ include "kubehpc.fullname" . | quote }}]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "kubehpc.fullname" . }}-leader-election
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "kubehpc.fullname" . }}-leader-election
subjects:
  - kind: ServiceAccount
    name: {{ include "kubehpc.serviceAccountName" . }}
    namespace: {{ .Release.Namespace }}
{{- end }}
{{- end -}}

{{/*
The guard of a tool's leader-election Lease, for every tool's guard.yaml
(rendered whether or not leaderElection is on: RBAC may be widened by
mistake, and the Lease Role lets it create any Lease in the release
namespace). As the tool's ServiceAccount a Lease may be written only when it
is the tool's own (its name, in the release namespace), with
leaseDurationSeconds set and at most 60, and never deleted. A stolen token
then cannot take the Lease for ever (a huge leaseDurationSeconds keeps every
real replica from leading: nothing synced, reaped or reconciled), nor squat
another tool's Lease before that tool first runs. The holder must be the
pod the token is bound to (the authenticator's
authentication.kubernetes.io/pod-name; "" when a replica releases it), and
the chart names each replica by its pod (--leader-elect-identity): a token
stolen from a pod can only make that pod, a live replica, the leader, and a
token bound to no pod holds no Lease. The daemons'
--leader-elect-lease-duration (default 15s) must stay at or below 60s.
*/}}
{{- define "kubehpc.leaseGuard" -}}
{{- $name := include "kubehpc.fullname" . -}}
{{- $sa := include "kubehpc.serviceAccountName" . -}}
{{- $tool := .Chart.Name -}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ $name }}-guard-lease
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["coordination.k8s.io"]
        apiVersions: ["*"]
        resources: ["leases"]
        operations: ["CREATE", "UPDATE", "DELETE"]
  matchConditions:
    - name: {{ $tool }}-service-account
      expression: request.userInfo.username == {{ printf "system:serviceaccount:%s:%s" .Release.Namespace $sa | quote }}
  variables:
    - name: name
      expression: "object != null ? object.metadata.?name.orValue('') : request.?name.orValue('')"
    - name: pod
      expression: "request.userInfo.?extra[?'authentication.kubernetes.io/pod-name'].orValue([]).join(',')"
    - name: holder
      expression: "object != null ? object.?spec.?holderIdentity.orValue('') : ''"
  validations:
    - expression: request.operation != "DELETE"
      messageExpression: >-
        {{ printf "%s guard: deletes no Lease, not " $tool | quote }} + request.namespace + "/" + variables.name
      reason: Forbidden
    - expression: >-
        request.operation == "DELETE" || (request.namespace == {{ .Release.Namespace | quote }} && variables.name == {{ $name | quote }})
      messageExpression: >-
        {{ printf "%s guard: may write only its own Lease %s/%s, not " $tool .Release.Namespace $name | quote }} + request.namespace + "/" + variables.name
      reason: Forbidden
    - expression: >-
        request.operation == "DELETE" || (object.?spec.?leaseDurationSeconds.hasValue() && object.spec.leaseDurationSeconds <= 60)
      messageExpression: >-
        {{ printf "%s guard: a lease's leaseDurationSeconds must be set and at most 60, not " $tool | quote }}
        + (object.?spec.?leaseDurationSeconds.hasValue() ? string(object.spec.leaseDurationSeconds) : "unset")
      reason: Forbidden
    - expression: >-
        request.operation == "DELETE" || variables.holder == "" || (variables.pod != "" && variables.holder == variables.pod)
      messageExpression: >-
        {{ printf "%s guard: may hold its Lease only as the pod its token is bound to (" $tool | quote }}
        + (variables.pod == "" ? "none" : variables.pod) + "), not " + variables.holder
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ $name }}-guard-lease
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  policyName: {{ $name }}-guard-lease
  validationActions: [Deny]
{{- end -}}

{{/*
The guard of a tool's Events, for the guard.yaml of the tools whose guard
does not check them itself (job-pod-reaper's guard-writes does): as the
tool's ServiceAccount an Event may be written only as a core Event whose
source.component (and reportingComponent, when set) is the tool's name, as
pkg/events records them. A stolen token cannot pass an Event off as the
kubelet's or another controller's (where the tool may record Events at
all: RBAC and the tool's own guard say where).
*/}}
{{- define "kubehpc.eventGuard" -}}
{{- $name := include "kubehpc.fullname" . -}}
{{- $sa := include "kubehpc.serviceAccountName" . -}}
{{- $tool := .Chart.Name -}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ $name }}-guard-events
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["", "events.k8s.io"]
        apiVersions: ["*"]
        resources: ["events"]
        operations: ["CREATE", "UPDATE"]
  matchConditions:
    - name: {{ $tool }}-service-account
      expression: request.userInfo.username == {{ printf "system:serviceaccount:%s:%s" .Release.Namespace $sa | quote }}
  validations:
    - expression: >-
        request.resource.group == "" && object.?source.?component.orValue("") == {{ $tool | quote }}
        && object.?reportingComponent.orValue("") in ["", {{ $tool | quote }}]
      message: {{ printf "%s guard: may write only core Events whose source.component and reportingComponent are %s" $tool $tool | quote }}
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ $name }}-guard-events
  labels:
    {{- include "kubehpc.labels" . | nindent 4 }}
spec:
  policyName: {{ $name }}-guard-events
  validationActions: [Deny]
{{- end -}}
