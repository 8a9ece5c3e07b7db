{{/*
The route's Traefik Middlewares: the per-client rate limit and the body limit.
Takes the including chart's root context: {{ include "tf.middlewares" . }}.
*/}}
{{- define "tf.middlewares" -}}
{{- if .Values.middlewares.rateLimit.enabled }}
---
# Coarse per-client budget at the edge; the service's own Redis-backed limits stay
# the precise ones (per purpose, per account).
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: {{ include "tf.fullname" . }}-ratelimit
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
spec:
  rateLimit:
    average: {{ .Values.middlewares.rateLimit.average }}
    burst: {{ .Values.middlewares.rateLimit.burst }}
    period: {{ .Values.middlewares.rateLimit.period | quote }}
    sourceCriterion:
      ipStrategy:
        depth: {{ .Values.middlewares.rateLimit.ipStrategyDepth }}
{{- end }}
{{- if .Values.middlewares.buffering.enabled }}
---
# Refuses (413) bodies over the limit before they reach a pod, and buffers the
# request so a slow client holds no pod connection.
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: {{ include "tf.fullname" . }}-buffering
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
spec:
  buffering:
    maxRequestBodyBytes: {{ int64 .Values.middlewares.buffering.maxRequestBodyBytes }}
    memRequestBodyBytes: {{ int64 .Values.middlewares.buffering.memRequestBodyBytes }}
{{- end }}
{{- end }}
