{{/*
The PrometheusRule of the including chart's files/alerts.yml (metrics.prometheusRule.enabled).
Takes the including chart's root context: {{ include "tf.prometheusRule" . }}.
*/}}
{{- define "tf.prometheusRule" -}}
{{- if .Values.metrics.prometheusRule.enabled }}
{{- $rules := fromYaml (.Files.Get "files/alerts.yml") }}
{{- if or (hasKey $rules "Error") (not $rules.groups) }}
{{- fail "files/alerts.yml (a link to deploy/prometheus/rules) is missing, not YAML or has no groups" }}
{{- end }}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "tf.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
    {{- with .Values.metrics.prometheusRule.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  groups:
    {{- toYaml $rules.groups | nindent 4 }}
{{- end }}
{{- end }}
