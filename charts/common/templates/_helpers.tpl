{{/* Name of the chart, overridable. */}}
{{- define "tf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, with the chart's unless it already holds it. */}}
{{- define "tf.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tf.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tf.labels" -}}
helm.sh/chart: {{ include "tf.chart" . }}
{{ include "tf.selectorLabels" . }}
app.kubernetes.io/version: {{ include "tf.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: talentforge-auth
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tf.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tf.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "tf.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "tf.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Where the secret files are mounted. */}}
{{- define "tf.secretsDir" -}}/etc/talentforge/secrets{{- end }}
{{- define "tf.jwtKeysDir" -}}/etc/talentforge/jwt-keys{{- end }}

{{/*
Seconds the pod gets after SIGTERM: the preStop sleep, then the app's drain
(SHUTDOWN_TIMEOUT), then a margin. An explicit value must exceed both.
*/}}
{{- define "tf.terminationGracePeriodSeconds" -}}
{{- $min := add .Values.lifecycle.preStopSleepSeconds .Values.lifecycle.shutdownTimeoutSeconds }}
{{- if .Values.lifecycle.terminationGracePeriodSeconds }}
{{- if le (int .Values.lifecycle.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + shutdownTimeoutSeconds (%v)" .Values.lifecycle.terminationGracePeriodSeconds $min) }}
{{- end }}
{{- .Values.lifecycle.terminationGracePeriodSeconds }}
{{- else }}
{{- add $min 10 }}
{{- end }}
{{- end }}

{{/*
The container's environment: what the chart owns (listen address, drain, key
directory), the plain settings of .Values.env, a NAME_FILE for every secret of
.Values.secretFiles, then .Values.extraEnv. These three take (dict "root" $ "jwtKeys"
bool): the migration Job gets no signing keys.
*/}}
{{- define "tf.env" -}}
{{- $root := .root }}{{- $jwt := and .jwtKeys (hasKey $root.Values "jwtKeys") }}
- name: HTTP_ADDR
  value: {{ printf ":%v" $root.Values.containerPort | quote }}
- name: SHUTDOWN_TIMEOUT
  value: {{ printf "%vs" $root.Values.lifecycle.shutdownTimeoutSeconds | quote }}
{{- if $jwt }}
{{- if $root.Values.jwtKeys.existingSecret }}
- name: JWT_KEYS_DIR
  value: {{ include "tf.jwtKeysDir" $root | quote }}
{{- else }}
- name: JWT_KEYS_DIR
  value: /tmp/jwt-keys
{{- end }}
{{- end }}
{{- range $name, $value := $root.Values.env }}
{{- if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
{{- if has $name $root.Values.secretFiles }}
{{- fail (printf "env.%s is also listed in secretFiles: give it one way only" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- if $root.Values.existingSecret }}
{{- range $root.Values.secretFiles }}
- name: {{ . }}_FILE
  value: {{ printf "%s/%s" (include "tf.secretsDir" $root) . | quote }}
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tf.volumeMounts" -}}
{{- $root := .root }}{{- $jwt := and .jwtKeys (hasKey $root.Values "jwtKeys") }}
- name: tmp
  mountPath: /tmp
{{- if $root.Values.existingSecret }}
- name: secrets
  mountPath: {{ include "tf.secretsDir" $root }}
  readOnly: true
{{- end }}
{{- if $jwt }}
{{- if $root.Values.jwtKeys.existingSecret }}
- name: jwt-keys
  mountPath: {{ include "tf.jwtKeysDir" $root }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "tf.volumes" -}}
{{- $root := .root }}{{- $jwt := and .jwtKeys (hasKey $root.Values "jwtKeys") }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- if $root.Values.existingSecret }}
- name: secrets
  secret:
    secretName: {{ $root.Values.existingSecret }}
    defaultMode: 0440
    items:
    {{- range $root.Values.secretFiles }}
      - key: {{ . }}
        path: {{ . }}
    {{- end }}
{{- end }}
{{- if $jwt }}
{{- if $root.Values.jwtKeys.existingSecret }}
- name: jwt-keys
  secret:
    secretName: {{ $root.Values.jwtKeys.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}
