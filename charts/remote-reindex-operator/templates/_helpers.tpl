{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "remote-reindex-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "remote-reindex-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "remote-reindex-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "remote-reindex-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remote-reindex-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "remote-reindex-operator.labels" -}}
helm.sh/chart: {{ include "remote-reindex-operator.chart" . }}
{{ include "remote-reindex-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: remote-reindex
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "remote-reindex-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "remote-reindex-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "remote-reindex-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's permissions, one rule per API it calls, and nothing else:
- remotereindexes: list/watch (the controller's watches), get, patch/update (the finalizer);
- remotereindexes/status: get, patch (phase, conditions, progress), update;
- remotereindexes/finalizers: update (for clusters with OwnerReferencesPermissionEnforcement);
- secrets, configmaps: get only (credentials and CAs named by a resource; never list, never write);
- events: create/patch (kube-runtime's recorder: events.k8s.io/v1, and core for older readers).
*/}}
{{- define "remote-reindex-operator.rules" -}}
- apiGroups: ["reindex.dev"]
  resources: ["remotereindexes"]
  verbs: ["get", "list", "watch", "patch", "update", "create", "delete"]
- apiGroups: ["reindex.dev"]
  resources: ["remotereindexes/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["reindex.dev"]
  resources: ["remotereindexes/finalizers"]
  verbs: ["update"]
{{- if .Values.rbac.secretNames }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson .Values.rbac.secretNames }}
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{{- else }}
- apiGroups: ["reindex.dev"]
  resources: ["migrations"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["reindex.dev"]
  resources: ["migrations/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["reindex.dev"]
  resources: ["migrations/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
{{- end }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.scaleOut.enabled }}
# Scale-out: one Lease per slice of a running copy, in the copy's namespace.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "create", "update", "delete"]
{{- end }}
{{- end }}
