{{/* Labels every resource of the release carries. */}}
{{- define "tradepulse-celery.labels" -}}
app.kubernetes.io/part-of: tradepulse
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The broker workers and runs connect to: the release's Redis, or the existing one named in broker.url. */}}
{{- define "tradepulse-celery.brokerUrl" -}}
{{- if .Values.broker.enabled -}}
{{- printf "redis://%s-redis:6379/0" .Release.Name -}}
{{- else -}}
{{- required "broker.url is required when broker.enabled is false (the broker the runs queue steps on)" .Values.broker.url -}}
{{- end -}}
{{- end }}
