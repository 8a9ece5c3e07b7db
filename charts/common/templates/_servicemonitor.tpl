{{/*
The prometheus-operator ServiceMonitor (metrics.serviceMonitor.enabled).
Takes the including chart's root context: {{ include "tf.serviceMonitor" . }}.
*/}}
{{- define "tf.serviceMonitor" -}}
{{- if .Values.metrics.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "tf.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  # job="<chart name>" whatever the release is called: the alert rules select on it.
  jobLabel: app.kubernetes.io/name
  selector:
    matchLabels:
      {{- include "tf.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      interval: {{ .Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.metrics.serviceMonitor.scrapeTimeout }}
      honorLabels: false
{{- end }}
{{- end }}
