{{/*
One ConfigMap per dashboard in the including chart's files/dashboards/*.json
(dashboards.enabled), labelled for the Grafana sidecar.
Takes the including chart's root context: {{ include "tf.dashboards" . }}.
*/}}
{{- define "tf.dashboards" -}}
{{- if .Values.dashboards.enabled }}
{{- $files := .Files.Glob "files/dashboards/*.json" }}
{{- if not $files }}
{{- fail "no dashboard in files/dashboards (links to deploy/grafana/dashboards)" }}
{{- end }}
{{- range $path, $content := $files }}
{{- $name := base $path | trimSuffix ".json" }}
{{- $parsed := fromJson (toString $content) }}
{{- if hasKey $parsed "Error" }}
{{- fail (printf "%s is not valid JSON: %s" $path $parsed.Error) }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-dashboard-%s" (include "tf.fullname" $) $name | trunc 63 | trimSuffix "-" }}
  namespace: {{ $.Values.dashboards.namespace | default $.Release.Namespace }}
  labels:
    {{- include "tf.labels" $ | nindent 4 }}
    grafana_dashboard: "1"
  {{- with $.Values.dashboards.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  {{ printf "talentforge-%s.json" $name }}: |-
    {{- toString $content | nindent 4 }}
{{- end }}
{{- end }}
{{- end }}
