{{/*
The Traefik IngressRoute (ingressRoute.enabled) of a chart behind Traefik.
Takes the including chart's root context: {{ include "tf.ingressRoute" . }}.
*/}}
{{- define "tf.ingressRoute" -}}
{{- if .Values.ingressRoute.enabled }}
{{- $paths := list }}
{{- range .Values.ingressRoute.pathPrefixes }}
{{- $paths = append $paths (printf "PathPrefix(`%s`)" .) }}
{{- end }}
{{- $match := join " || " $paths }}
{{- if .Values.ingressRoute.host }}
{{- $match = printf "Host(`%s`) && (%s)" .Values.ingressRoute.host $match }}
{{- end }}
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: {{ include "tf.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "tf.labels" . | nindent 4 }}
  {{- with .Values.ingressRoute.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  entryPoints:
    {{- toYaml .Values.ingressRoute.entryPoints | nindent 4 }}
  routes:
    - kind: Rule
      match: {{ $match | quote }}
      middlewares:
        {{- if .Values.middlewares.rateLimit.enabled }}
        - name: {{ include "tf.fullname" . }}-ratelimit
        {{- end }}
        {{- if .Values.middlewares.buffering.enabled }}
        - name: {{ include "tf.fullname" . }}-buffering
        {{- end }}
        {{- with .Values.ingressRoute.extraMiddlewares }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      services:
        - kind: Service
          name: {{ include "tf.fullname" . }}
          port: http
          passHostHeader: true
  {{- if or .Values.ingressRoute.tls.secretName .Values.ingressRoute.tls.certResolver }}
  tls:
    {{- with .Values.ingressRoute.tls.secretName }}
    secretName: {{ . }}
    {{- end }}
    {{- with .Values.ingressRoute.tls.certResolver }}
    certResolver: {{ . }}
    {{- end }}
    {{- if .Values.ingressRoute.host }}
    domains:
      - main: {{ .Values.ingressRoute.host }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}
