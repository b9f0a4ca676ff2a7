{{/*
The keygate container, its volumes and its pod annotations: one definition for
the gateway Deployment and for the sidecar that another chart includes.
*/}}

{{/*
How keygate waits for endpoints to forget it before draining: "lifecycle"
(a preStop sleep action, Kubernetes >= 1.30), "env" (KEYGATE_SHUTDOWN_DELAY:
keygate keeps serving after SIGTERM; any version, no shell needed) or "off".
preStopSleep.mode auto picks the sleep action where the cluster has it.
*/}}
{{- define "keygate.preStopSleepMode" -}}
{{- $p := .Values.preStopSleep }}
{{- $hasSleep := semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version }}
{{- if not $p.enabled }}off
{{- else if eq $p.mode "env" }}env
{{- else if $hasSleep }}lifecycle
{{- else if eq $p.mode "lifecycle" }}
{{- fail (printf "preStopSleep.mode lifecycle uses the sleep action of Kubernetes >= 1.30; this cluster is %s: set preStopSleep.mode=auto or env (KEYGATE_SHUTDOWN_DELAY)" .Capabilities.KubeVersion.Version) }}
{{- else }}env
{{- end }}
{{- end }}

{{/* Mount points of the files keygate reads. */}}
{{- define "keygate.policyDir" -}}/etc/keygate/policy{{- end }}
{{- define "keygate.tokensDir" -}}/etc/keygate/tokens{{- end }}
{{- define "keygate.upstreamCADir" -}}/etc/keygate/upstream-ca{{- end }}
{{- define "keygate.redisCADir" -}}/etc/keygate/redis-ca{{- end }}
{{- define "keygate.jwtPublicKeysDir" -}}/etc/keygate/jwt-public-keys{{- end }}

{{/*
The credentials keygate reads from files, never from its environment: one
item each for those configured, as a YAML list of {name, env, secretName,
key}. Each is mounted alone at /etc/keygate/<name> from its Secret, the
existing one or the chart's (keygate.authSecretName, under key <name>).
*/}}
{{- define "keygate.credentials" -}}
{{- $a := .Values.auth }}
{{- $chartSecret := include "keygate.authSecretName" . }}
{{- $out := list }}
{{- range (list
  (dict "name" "jwt-secret" "env" "KEYGATE_JWT_SECRET_FILE" "existing" $a.jwt.existingSecret "existingKey" $a.jwt.existingSecretKey "value" $a.jwt.secret)
  (dict "name" "introspect-client-secret" "env" "KEYGATE_INTROSPECT_CLIENT_SECRET_FILE" "existing" $a.introspection.existingSecret "existingKey" $a.introspection.existingSecretKey "value" $a.introspection.clientSecret)
  (dict "name" "upstream-auth" "env" "KEYGATE_UPSTREAM_AUTH_FILE" "existing" $a.upstreamAuth.existingSecret "existingKey" $a.upstreamAuth.existingSecretKey "value" $a.upstreamAuth.value)) }}
{{- if .existing }}
{{- $out = append $out (dict "name" .name "env" .env "secretName" .existing "key" .existingKey) }}
{{- else if .value }}
{{- $out = append $out (dict "name" .name "env" .env "secretName" $chartSecret "key" .name) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The JWT public keys' volume source (configMap or secret); empty without public keys. */}}
{{- define "keygate.jwtPublicKeysVolume" -}}
{{- $pk := .Values.auth.jwt.publicKeys }}
{{- if $pk.existingSecret }}
secret:
  secretName: {{ $pk.existingSecret }}
{{- else if or $pk.existingConfigMap $pk.content }}
configMap:
  name: {{ default (include "keygate.jwtPublicKeysConfigMapName" .) $pk.existingConfigMap }}
{{- end }}
{{- if or $pk.existingSecret $pk.existingConfigMap $pk.content }}
  items:
    - key: {{ $pk.key }}
      path: {{ $pk.key }}
{{- end }}
{{- end }}

{{/*
Port names: "http" and "admin" in a pod of keygate's own; prefixed in sidecar
mode, where the backend may use those names already.
*/}}
{{- define "keygate.httpPortName" -}}
{{- if eq .Values.mode "sidecar" }}keygate-http{{ else }}http{{ end }}
{{- end }}
{{- define "keygate.adminPortName" -}}
{{- if eq .Values.mode "sidecar" }}keygate-admin{{ else }}admin{{ end }}
{{- end }}

{{/*
One variable from a Secret: key (index .ctx.Values.redis .existingKey) of
redis.existingSecret when both are set, else key .chartKey of the chart's
own Secret when .value is set. Takes (dict "ctx" "name" "existingKey"
"value" "chartKey").
*/}}
{{- define "keygate.redisSecretEnv" -}}
{{- $r := .ctx.Values.redis }}
{{- $chartSecret := include "keygate.redisSecretName" .ctx }}
{{- if and $r.existingSecret (index $r .existingKey) }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ index $r .existingKey }}
{{- else if and $chartSecret .value }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ $chartSecret }}
      key: {{ .chartKey }}
{{- end }}
{{- end }}

{{/*
KEYGATE_REDIS_* variables (README.md, Configuration). The URL and the
passwords come from a Secret, as each may carry a credential.
*/}}
{{- define "keygate.redisEnv" -}}
{{- $r := .Values.redis }}
{{- if $r.embedded.enabled }}
- name: KEYGATE_REDIS_URL
  value: {{ printf "redis://%s:6379/0" (include "keygate.redisEmbeddedName" .) | quote }}
{{- else if not (or $r.sentinel.addresses $r.cluster.addresses) }}
{{- include "keygate.redisSecretEnv" (dict "ctx" . "name" "KEYGATE_REDIS_URL" "existingKey" "existingSecretURLKey" "value" $r.url "chartKey" "redis-url") }}
{{- end }}
{{- with $r.username }}
- name: KEYGATE_REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- include "keygate.redisSecretEnv" (dict "ctx" . "name" "KEYGATE_REDIS_PASSWORD" "existingKey" "existingSecretPasswordKey" "value" $r.password "chartKey" "redis-password") }}
{{- if $r.sentinel.addresses }}
- name: KEYGATE_REDIS_SENTINEL_MASTER
  value: {{ $r.sentinel.masterName | quote }}
- name: KEYGATE_REDIS_SENTINEL_ADDRS
  value: {{ join "," $r.sentinel.addresses | quote }}
{{- end }}
{{- include "keygate.redisSecretEnv" (dict "ctx" . "name" "KEYGATE_REDIS_SENTINEL_PASSWORD" "existingKey" "existingSecretSentinelPasswordKey" "value" $r.sentinel.password "chartKey" "redis-sentinel-password") }}
{{- if $r.cluster.addresses }}
- name: KEYGATE_REDIS_CLUSTER_ADDRS
  value: {{ join "," $r.cluster.addresses | quote }}
{{- end }}
{{- with $r.db }}
- name: KEYGATE_REDIS_DB
  value: {{ int . | toString | quote }}
{{- end }}
{{- if $r.tls.enabled }}
- name: KEYGATE_REDIS_TLS
  value: "true"
{{- end }}
{{- if $r.tls.caSecret }}
- name: KEYGATE_REDIS_CA_FILE
  value: {{ printf "%s/%s" (include "keygate.redisCADir" .) $r.tls.caKey | quote }}
{{- end }}
{{- with $r.timeout }}
- name: KEYGATE_REDIS_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $r.failureMode }}
- name: KEYGATE_REDIS_FAILURE_MODE
  value: {{ . | quote }}
{{- end }}
{{- if $r.localShareFromReplicas }}
- name: KEYGATE_REDIS_LOCAL_SHARE
  value: {{ ternary .Values.autoscaling.maxReplicas .Values.replicaCount (.Values.autoscaling.enabled | default false) | int64 | toString | quote }}
{{- else }}
{{- with $r.localShare }}
- name: KEYGATE_REDIS_LOCAL_SHARE
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- end }}
{{- with $r.prefix }}
- name: KEYGATE_REDIS_PREFIX
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Token-source and upstream-credential variables (README.md, Configuration and
Token sources). Secrets only as *_FILE paths of keygate.credentials.
*/}}
{{- define "keygate.authEnv" -}}
{{- $a := .Values.auth }}
{{- $j := $a.jwt }}
{{- $i := $a.introspection }}
{{- if $a.store.enabled }}
- name: KEYGATE_TOKENS_STORE
  value: "true"
{{- end }}
{{- with $a.store.cacheTTL }}
- name: KEYGATE_TOKENS_CACHE_TTL
  value: {{ . | quote }}
{{- end }}
{{- with $j.issuers }}
- name: KEYGATE_TOKEN_ISSUERS
  value: {{ join "," . | quote }}
{{- end }}
{{- with $j.audiences }}
- name: KEYGATE_TOKEN_AUDIENCES
  value: {{ join "," . | quote }}
{{- end }}
{{- if include "keygate.jwtPublicKeysVolume" . }}
- name: KEYGATE_JWT_PUBLIC_KEYS_FILE
  value: {{ printf "%s/%s" (include "keygate.jwtPublicKeysDir" .) $j.publicKeys.key | quote }}
{{- end }}
{{- with $j.jwksURL }}
- name: KEYGATE_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- with $j.jwksRefreshInterval }}
- name: KEYGATE_JWKS_REFRESH_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with $j.algorithms }}
- name: KEYGATE_JWT_ALGORITHMS
  value: {{ join "," . | quote }}
{{- end }}
{{- with $j.types }}
- name: KEYGATE_JWT_TYPES
  value: {{ join "," . | quote }}
{{- end }}
{{- with $j.leeway }}
- name: KEYGATE_JWT_LEEWAY
  value: {{ . | quote }}
{{- end }}
{{- if $j.requireLowS }}
- name: KEYGATE_JWT_REQUIRE_LOW_S
  value: "true"
{{- end }}
{{- range $key, $name := dict "products" "KEYGATE_CLAIM_PRODUCTS" "productPrefix" "KEYGATE_CLAIM_PRODUCT_PREFIX" "operations" "KEYGATE_CLAIM_OPERATIONS" "operationPrefix" "KEYGATE_CLAIM_OPERATION_PREFIX" "name" "KEYGATE_CLAIM_NAME" }}
{{- with index $a.claims $key }}
- name: {{ $name }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- with $i.url }}
- name: KEYGATE_INTROSPECT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $i.clientID }}
- name: KEYGATE_INTROSPECT_CLIENT_ID
  value: {{ . | quote }}
{{- end }}
{{- with $i.timeout }}
- name: KEYGATE_INTROSPECT_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $i.cacheTTL }}
- name: KEYGATE_INTROSPECT_CACHE_TTL
  value: {{ . | quote }}
{{- end }}
{{- range include "keygate.credentials" . | fromYamlArray }}
- name: {{ .env }}
  value: {{ printf "/etc/keygate/%s/%s" .name .key | quote }}
{{- end }}
{{- end }}

{{/* The chart's KEYGATE_* variables (extraEnv is added by keygate.container). */}}
{{- define "keygate.env" -}}
{{- $e := .Values.env }}
- name: KEYGATE_LISTEN_ADDR
  value: {{ printf ":%d" (int .Values.ports.http) | quote }}
- name: KEYGATE_ADMIN_ADDR
  value: {{ printf ":%d" (int .Values.ports.admin) | quote }}
- name: KEYGATE_UPSTREAM_URL
  value: {{ required "env.upstreamURL is required: the license backend's base URL" $e.upstreamURL | quote }}
{{- with $e.upstreamTimeout }}
- name: KEYGATE_UPSTREAM_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $e.upstreamIdleTimeout }}
- name: KEYGATE_UPSTREAM_IDLE_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- if or .Values.upstreamCA.existingSecret .Values.upstreamCA.existingConfigMap }}
- name: KEYGATE_UPSTREAM_CA_FILE
  value: {{ printf "%s/%s" (include "keygate.upstreamCADir" .) .Values.upstreamCA.key | quote }}
{{- end }}
{{- if include "keygate.policyConfigMapName" . }}
- name: KEYGATE_POLICY_FILE
  value: {{ printf "%s/%s" (include "keygate.policyDir" .) .Values.policy.key | quote }}
{{- end }}
{{- $_ := include "keygate.tokenSources" . }}
{{- if include "keygate.tokensSecretName" . }}
- name: KEYGATE_TOKENS_FILE
  value: {{ printf "%s/%s" (include "keygate.tokensDir" .) .Values.tokens.key | quote }}
{{- end }}
{{- with $e.tokensReloadInterval }}
- name: KEYGATE_TOKENS_RELOAD_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- include "keygate.authEnv" . }}
{{- include "keygate.redisEnv" . }}
{{- with $e.idempotencyTTL }}
- name: KEYGATE_IDEMPOTENCY_TTL
  value: {{ . | quote }}
{{- end }}
{{- with $e.idempotencyFailureMode }}
- name: KEYGATE_IDEMPOTENCY_FAILURE_MODE
  value: {{ . | quote }}
{{- end }}
{{- with $e.idempotencyMaxPerToken }}
- name: KEYGATE_IDEMPOTENCY_MAX_PER_TOKEN
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with $e.rateLimitHeaders }}
- name: KEYGATE_RATELIMIT_HEADERS
  value: {{ . | quote }}
{{- end }}
{{- with $e.maxBodyBytes }}
- name: KEYGATE_MAX_BODY_BYTES
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with $e.trustedProxies }}
- name: KEYGATE_TRUSTED_PROXIES
  value: {{ join "," . | quote }}
{{- end }}
{{- with $e.ipv6Prefix }}
- name: KEYGATE_IPV6_PREFIX
  value: {{ int64 . | toString | quote }}
{{- end }}
- name: KEYGATE_DRAIN_TIMEOUT
  value: {{ printf "%ds" (int $e.drainTimeoutSeconds) | quote }}
{{- if eq (include "keygate.preStopSleepMode" .) "env" }}
- name: KEYGATE_SHUTDOWN_DELAY
  value: {{ printf "%ds" (int .Values.preStopSleep.seconds) | quote }}
{{- end }}
{{- if .Values.goMemLimit }}
{{- /* The Go runtime's soft memory limit, in bytes, from the container's own limit (the node's
allocatable memory when the container has none): the GC works harder near it instead of the
kernel killing the pod. */}}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end }}
{{- with $e.readHeaderTimeout }}
- name: KEYGATE_READ_HEADER_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $e.readTimeout }}
- name: KEYGATE_READ_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $e.idleTimeout }}
- name: KEYGATE_IDLE_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with $e.maxAnswerBytes }}
- name: KEYGATE_MAX_ANSWER_BYTES
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with $e.maxConns }}
- name: KEYGATE_MAX_CONNS
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with $e.logLevel }}
- name: KEYGATE_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with $e.logFormat }}
- name: KEYGATE_LOG_FORMAT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Volume mounts. Whole directories, never subPath: a subPath mount does not see
Secret updates, and keygate reloads the tokens file when the Secret changes.
*/}}
{{- define "keygate.volumeMounts" -}}
{{- if include "keygate.tokensSecretName" . }}
- name: keygate-tokens
  mountPath: {{ include "keygate.tokensDir" . }}
  readOnly: true
{{- end }}
{{- if include "keygate.policyConfigMapName" . }}
- name: keygate-policy
  mountPath: {{ include "keygate.policyDir" . }}
  readOnly: true
{{- end }}
{{- if or .Values.upstreamCA.existingSecret .Values.upstreamCA.existingConfigMap }}
- name: keygate-upstream-ca
  mountPath: {{ include "keygate.upstreamCADir" . }}
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.caSecret }}
- name: keygate-redis-ca
  mountPath: {{ include "keygate.redisCADir" . }}
  readOnly: true
{{- end }}
{{- if include "keygate.jwtPublicKeysVolume" . }}
- name: keygate-jwt-public-keys
  mountPath: {{ include "keygate.jwtPublicKeysDir" . }}
  readOnly: true
{{- end }}
{{- range include "keygate.credentials" . | fromYamlArray }}
- name: keygate-{{ .name }}
  mountPath: /etc/keygate/{{ .name }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod volumes of the keygate container (names start with "keygate-", to share a pod safely). */}}
{{- define "keygate.volumes" -}}
{{- with include "keygate.tokensSecretName" . }}
- name: keygate-tokens
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.tokens.key }}
        path: {{ $.Values.tokens.key }}
{{- end }}
{{- with include "keygate.policyConfigMapName" . }}
- name: keygate-policy
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.policy.key }}
        path: {{ $.Values.policy.key }}
{{- end }}
{{- with .Values.upstreamCA.existingSecret }}
- name: keygate-upstream-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.upstreamCA.key }}
        path: {{ $.Values.upstreamCA.key }}
{{- end }}
{{- with .Values.upstreamCA.existingConfigMap }}
- name: keygate-upstream-ca
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.upstreamCA.key }}
        path: {{ $.Values.upstreamCA.key }}
{{- end }}
{{- with .Values.redis.tls.caSecret }}
- name: keygate-redis-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.redis.tls.caKey }}
        path: {{ $.Values.redis.tls.caKey }}
{{- end }}
{{- with include "keygate.jwtPublicKeysVolume" . | trim }}
- name: keygate-jwt-public-keys
  {{- . | nindent 2 }}
{{- end }}
{{- range include "keygate.credentials" . | fromYamlArray }}
- name: keygate-{{ .name }}
  secret:
    secretName: {{ .secretName }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}

{{/*
Pod annotations keygate needs: the checksums of the policy and of the JWT
public keys the chart renders, since keygate reads them at start only and a
changed ConfigMap must roll the pods. The tokens Secret has none on purpose:
keygate reloads it in place. Secrets (auth.*) have none either: a checksum
in the pod spec would let anyone who reads pods test guesses of them.
*/}}
{{- define "keygate.podAnnotations" -}}
{{- with .Values.policy.content }}
checksum/keygate-policy: {{ sha256sum . }}
{{- end }}
{{- with .Values.auth.jwt.publicKeys.content }}
checksum/keygate-jwt-public-keys: {{ sha256sum . }}
{{- end }}
{{- with include "keygate.redisSecretName" . }}
{{- /* keygate reads the Redis URL and passwords at start, from the environment: a change must roll the
pods. Not a plain hash of them, which anyone who can read pods could test guesses against at
hash speed: scrypt first (derivePassword), so each guess costs a slow key derivation. */}}
{{- $r := $.Values.redis }}
checksum/keygate-redis: {{ derivePassword 1 "maximum" (printf "%s\n%s\n%s" $r.url $r.password $r.sentinel.password) "keygate-redis" . | sha256sum }}
{{- end }}
{{- end }}

{{/* The keygate container, as a map (callers put it in a list). */}}
{{- define "keygate.container" -}}
name: keygate
image: {{ include "keygate.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["serve"]
ports:
  - name: {{ include "keygate.httpPortName" . }}
    containerPort: {{ .Values.ports.http }}
    protocol: TCP
  - name: {{ include "keygate.adminPortName" . }}
    containerPort: {{ .Values.ports.admin }}
    protocol: TCP
{{- $env := include "keygate.env" . | fromYamlArray }}
{{- range .Values.extraEnv }}
{{- $name := .name }}
{{- range $env }}
{{- if eq .name $name }}
{{- fail (printf "extraEnv sets %s, which the chart sets already; use the chart's value for it" $name) }}
{{- end }}
{{- end }}
{{- end }}
env:
  {{- toYaml (concat $env .Values.extraEnv) | nindent 2 }}
{{- with .Values.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "keygate.volumeMounts" . | trim }}
volumeMounts:
  {{- . | nindent 2 }}
{{- end }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ include "keygate.adminPortName" . }}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ include "keygate.adminPortName" . }}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- with .Values.probes.startup }}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ include "keygate.adminPortName" $ }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if eq (include "keygate.preStopSleepMode" .) "lifecycle" }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.preStopSleep.seconds }}
{{- end }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}
