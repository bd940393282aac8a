{{/* Labels every object of the chart carries. */}}
{{- define "weft.labels" -}}
app.kubernetes.io/name: weft
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weft
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The control plane's pods (Deployment selector, PodDisruptionBudget, Service, anti-affinity). */}}
{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: weft
app.kubernetes.io/instance: {{ .Release.Name }}
app: weft
{{- end }}


{{/* xDS port: TLS with security (sidecars authenticate with their ServiceAccount token), else plaintext. */}}
{{- define "weft.xdsPort" -}}15010{{- end }}
{{- define "weft.webhookPort" -}}15017{{- end }}
{{- define "weft.adminPort" -}}15014{{- end }}

{{- define "weft.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Is any admission webhook served? */}}
{{- define "weft.webhooks" -}}
{{- if or .Values.webhooks.validating.enabled .Values.webhooks.injection.enabled }}true{{ end -}}
{{- end }}
