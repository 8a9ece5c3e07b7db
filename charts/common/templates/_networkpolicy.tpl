{{/*
The NetworkPolicy: the HTTP port from Prometheus, and from Traefik when the chart
has networkPolicy.traefik (the charts behind Traefik).
Takes the including chart's root context: {{ include "tf.networkPolicy" . }}.
*/}}
{{- define "tf.networkPolicy" -}}
{{- if .Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "tf.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "tf.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    {{- if hasKey .Values.networkPolicy "traefik" }}
    # The API, from Traefik only (ForwardAuth calls included).
    - from:
        - namespaceSelector:
            {{- toYaml .Values.networkPolicy.traefik.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml .Values.networkPolicy.traefik.podSelector | nindent 12 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    # /metrics, from Prometheus only (it is served on the HTTP port).
    - from:
        - namespaceSelector:
            {{- toYaml .Values.networkPolicy.prometheus.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml .Values.networkPolicy.prometheus.podSelector | nindent 12 }}
      ports:
        - port: http
          protocol: TCP
    {{- with .Values.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}
