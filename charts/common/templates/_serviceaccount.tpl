{{/*
The ServiceAccount (serviceAccount.create), its token never mounted.
Takes the including chart's root context: {{ include "tf.serviceAccount" . }}.
*/}}
{{- define "tf.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "tf.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end }}
