{{/* Labels every resource of the release carries. */}}
{{- define "tradepulse.labels" -}}
app.kubernetes.io/part-of: tradepulse
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* A component's name label; called with the root context and the component:
     include "tradepulse.selector" (list . "daemon") */}}
{{- define "tradepulse.selector" -}}
app.kubernetes.io/name: {{ printf "%s-%s" (index . 0).Release.Name (index . 1) }}
{{- end }}

{{/* The Dagster instance (files/dagster.yaml), checked against the release it is rendered into: run pods are
     created where the launcher says and read the ConfigMaps it names, so they must be this release's. */}}
{{- define "tradepulse.instance" -}}
{{- $instance := .Files.Get "files/dagster.yaml" | fromYaml -}}
{{- $launcher := $instance.run_launcher.config -}}
{{- if ne $launcher.job_namespace .Release.Namespace -}}
{{- fail (printf "files/dagster.yaml launches runs in namespace %s but the release is in %s (helm -n %s)"
      $launcher.job_namespace .Release.Namespace $launcher.job_namespace) -}}
{{- end -}}
{{- if ne $launcher.instance_config_map (printf "%s-instance" .Release.Name) -}}
{{- fail (printf "files/dagster.yaml names the instance ConfigMap %s: install the release as %s"
      $launcher.instance_config_map (trimSuffix "-instance" $launcher.instance_config_map)) -}}
{{- end -}}
{{- if not (has (printf "%s-profile" .Release.Name) $launcher.env_config_maps) -}}
{{- fail (printf "files/dagster.yaml's env_config_maps must name %s-profile" .Release.Name) -}}
{{- end -}}
{{- if not (has .Values.envSecret $launcher.env_secrets) -}}
{{- fail (printf "files/dagster.yaml's env_secrets must name envSecret (%s)" .Values.envSecret) -}}
{{- end -}}
{{- if ne $launcher.service_account_name .Values.serviceAccountName -}}
{{- fail (printf "files/dagster.yaml runs pods as %s, serviceAccountName is %s"
      $launcher.service_account_name .Values.serviceAccountName) -}}
{{- end -}}
{{- .Files.Get "files/dagster.yaml" -}}
{{- end }}

{{/* The broker workers and runs connect to: the release's Redis, or the existing one in celery.broker.url. */}}
{{- define "tradepulse.brokerUrl" -}}
{{- if .Values.celery.broker.enabled -}}
{{- printf "redis://%s-redis:6379/0" .Release.Name -}}
{{- else -}}
{{- required "celery.broker.url is required when celery.broker.enabled is false (the broker runs queue steps on)"
      .Values.celery.broker.url -}}
{{- end -}}
{{- end }}

{{/* The container fields every pod of the user-code image shares: image, the profile and the secret. */}}
{{- define "tradepulse.container" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
envFrom:
  - configMapRef:
      name: {{ .Release.Name }}-profile
  - secretRef:
      name: {{ .Values.envSecret }}
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
{{- end }}
