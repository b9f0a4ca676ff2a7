{{/*
Names and labels. The templates in this file and in _container.tpl and
_sidecar.tpl take the keygate chart's own context: the chart's templates pass
".", and a parent chart that includes the sidecar passes ".Subcharts.keygate",
so that names resolve as they did when this chart rendered its ConfigMap and
Secrets.
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "keygate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: fullnameOverride, else "<release>-<name>", else the release name when it holds the name already. */}}
{{- define "keygate.fullname" -}}
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

{{/* "<name>-<version>" for the helm.sh/chart label. */}}
{{- define "keygate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "keygate.labels" -}}
helm.sh/chart: {{ include "keygate.chart" . }}
{{ include "keygate.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keygate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select keygate's pods (gateway mode). */}}
{{- define "keygate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keygate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount of the gateway pods. */}}
{{- define "keygate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keygate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: by digest when one is given, else by tag (default appVersion). */}}
{{- define "keygate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding the policy; empty when the built-in policy is used. */}}
{{- define "keygate.policyConfigMapName" -}}
{{- if .Values.policy.existingConfigMap }}
{{- .Values.policy.existingConfigMap }}
{{- else if .Values.policy.content }}
{{- printf "%s-policy" (include "keygate.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the tokens file; empty when there is none. */}}
{{- define "keygate.tokensSecretName" -}}
{{- if or .Values.tokens.content .Values.tokens.existingSecret }}
{{- default (printf "%s-tokens" (include "keygate.fullname" .)) .Values.tokens.existingSecret }}
{{- end }}
{{- end }}

{{/* "true" when a JWT key is configured (KEYGATE_JWT_SECRET_FILE, _PUBLIC_KEYS_FILE or KEYGATE_JWKS_URL). */}}
{{- define "keygate.jwtConfigured" -}}
{{- $j := .Values.auth.jwt }}
{{- if or $j.secret $j.existingSecret $j.publicKeys.content $j.publicKeys.existingSecret $j.publicKeys.existingConfigMap $j.jwksURL }}true{{ end }}
{{- end }}

{{/* "true" when keygate gets a Redis to connect to (a URL, Sentinel, Cluster or the embedded one). */}}
{{- define "keygate.redisConfigured" -}}
{{- $r := .Values.redis }}
{{- if or $r.url $r.sentinel.addresses $r.cluster.addresses $r.embedded.enabled (and $r.existingSecret $r.existingSecretURLKey) }}true{{ end }}
{{- end }}

{{/*
The token sources configured, in the order keygate asks them, comma-separated;
fails when there is none, since keygate's policy has routes with auth: token.
*/}}
{{- define "keygate.tokenSources" -}}
{{- $sources := list }}
{{- if include "keygate.tokensSecretName" . }}{{ $sources = append $sources "tokens file" }}{{ end }}
{{- if .Values.auth.store.enabled }}{{ $sources = append $sources "Redis token store" }}{{ end }}
{{- if include "keygate.jwtConfigured" . }}{{ $sources = append $sources "JWT" }}{{ end }}
{{- if .Values.auth.introspection.url }}{{ $sources = append $sources "introspection" }}{{ end }}
{{- if not $sources }}
{{- fail "tokens.content or tokens.existingSecret is required, unless another token source is configured (auth.store.enabled, a JWT key under auth.jwt, or auth.introspection.url): keygate's policy has routes with auth: token" }}
{{- end }}
{{- join ", " $sources }}
{{- end }}

{{/*
Name of the Secret the chart renders for the credentials given as values
(auth.jwt.secret, auth.introspection.clientSecret, auth.upstreamAuth.value);
empty when it renders none.
*/}}
{{- define "keygate.authSecretName" -}}
{{- $a := .Values.auth }}
{{- if or (and $a.jwt.secret (not $a.jwt.existingSecret)) (and $a.introspection.clientSecret (not $a.introspection.existingSecret)) (and $a.upstreamAuth.value (not $a.upstreamAuth.existingSecret)) }}
{{- printf "%s-auth" (include "keygate.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap the chart renders for auth.jwt.publicKeys.content; empty when it renders none. */}}
{{- define "keygate.jwtPublicKeysConfigMapName" -}}
{{- if .Values.auth.jwt.publicKeys.content }}
{{- printf "%s-jwt-public-keys" (include "keygate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of the Secret the chart renders for the Redis URL and password; empty when it renders none. */}}
{{- define "keygate.redisSecretName" -}}
{{- $r := .Values.redis }}
{{- if and (not $r.existingSecret) (not $r.embedded.enabled) (or $r.url $r.password $r.sentinel.password) }}
{{- printf "%s-redis" (include "keygate.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the embedded Redis Deployment and Service. */}}
{{- define "keygate.redisEmbeddedName" -}}
{{- printf "%s-redis" (include "keygate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of the embedded Redis resources. */}}
{{- define "keygate.redisLabels" -}}
helm.sh/chart: {{ include "keygate.chart" . }}
{{ include "keygate.redisSelectorLabels" . }}
app.kubernetes.io/component: redis
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keygate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the embedded Redis pod: a different name, so keygate's selectors never match it. */}}
{{- define "keygate.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "keygate.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
terminationGracePeriodSeconds: long enough for the preStop sleep and the drain
(KEYGATE_DRAIN_TIMEOUT) to finish before the kubelet's SIGKILL, plus 5 s for
the process to exit.
*/}}
{{- define "keygate.terminationGracePeriodSeconds" -}}
{{- $need := int .Values.env.drainTimeoutSeconds }}
{{- if .Values.preStopSleep.enabled }}
{{- $need = add $need (int .Values.preStopSleep.seconds) }}
{{- end }}
{{- $set := int .Values.terminationGracePeriodSeconds }}
{{- if eq $set 0 }}
{{- add $need 5 }}
{{- else if le $set $need }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed env.drainTimeoutSeconds + preStopSleep.seconds (%d), or the kubelet kills keygate mid-drain" $set $need) }}
{{- else }}
{{- $set }}
{{- end }}
{{- end }}

{{/*
Checks of combinations the schema cannot express. Rendered by validate.yaml,
so every install and template run makes them.
*/}}
{{- define "keygate.validate" -}}
{{- $v := .Values }}
{{- if eq (int $v.ports.http) (int $v.ports.admin) }}
{{- fail "ports.http and ports.admin must differ" }}
{{- end }}
{{- if and $v.policy.content $v.policy.existingConfigMap }}
{{- fail "set policy.content or policy.existingConfigMap, not both" }}
{{- end }}
{{- if and $v.tokens.content $v.tokens.existingSecret }}
{{- fail "set tokens.content or tokens.existingSecret, not both" }}
{{- end }}
{{- if and $v.upstreamCA.existingSecret $v.upstreamCA.existingConfigMap }}
{{- fail "set upstreamCA.existingSecret or upstreamCA.existingConfigMap, not both" }}
{{- end }}
{{- if and $v.redis.existingSecret (or $v.redis.url $v.redis.password $v.redis.sentinel.password) }}
{{- fail "set redis.url, redis.password and redis.sentinel.password, or redis.existingSecret, not both" }}
{{- end }}
{{- if and $v.redis.existingSecret (not (or $v.redis.existingSecretURLKey $v.redis.existingSecretPasswordKey $v.redis.existingSecretSentinelPasswordKey)) }}
{{- fail "redis.existingSecret needs at least one of redis.existingSecretURLKey, existingSecretPasswordKey, existingSecretSentinelPasswordKey" }}
{{- end }}
{{- if and $v.redis.db $v.redis.cluster.addresses }}
{{- fail "redis.db must be 0 with redis.cluster: Redis Cluster has database 0 only" }}
{{- end }}
{{- if and $v.redis.sentinel.addresses (not $v.redis.sentinel.masterName) }}
{{- fail "redis.sentinel.addresses needs redis.sentinel.masterName" }}
{{- end }}
{{- if and $v.redis.url (or $v.redis.sentinel.addresses $v.redis.cluster.addresses) }}
{{- fail "set redis.url, redis.sentinel or redis.cluster: one Redis mode" }}
{{- end }}
{{- if and $v.redis.sentinel.addresses $v.redis.cluster.addresses }}
{{- fail "set redis.sentinel or redis.cluster, not both" }}
{{- end }}
{{- if and $v.redis.embedded.enabled (or $v.redis.url $v.redis.existingSecret $v.redis.sentinel.addresses $v.redis.cluster.addresses) }}
{{- fail "redis.embedded.enabled runs its own Redis: unset redis.url, redis.existingSecret, redis.sentinel and redis.cluster" }}
{{- end }}
{{- include "keygate.validateAuth" . }}
{{- if eq $v.mode "sidecar" }}
{{- range $key, $on := dict "ingress.enabled" $v.ingress.enabled "autoscaling.enabled" $v.autoscaling.enabled "serviceMonitor.enabled" $v.serviceMonitor.enabled "networkPolicy.enabled" $v.networkPolicy.enabled "adminService.enabled" $v.adminService.enabled "httpRoute.enabled" $v.httpRoute.enabled }}
{{- if $on }}
{{- fail (printf "%s applies to mode: gateway; in sidecar mode the pod, its Service and its policies belong to the chart that includes keygate" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := include "keygate.terminationGracePeriodSeconds" . }}
{{- end }}

{{/* Checks of the token sources and credentials (auth.*), part of keygate.validate. */}}
{{- define "keygate.validateAuth" -}}
{{- $a := .Values.auth }}
{{- $j := $a.jwt }}
{{- $i := $a.introspection }}
{{- $jwt := include "keygate.jwtConfigured" . }}
{{- if and $a.store.enabled (not (include "keygate.redisConfigured" .)) }}
{{- fail "auth.store.enabled needs Redis, where the token store lives: set redis.url (or redis.existingSecret with existingSecretURLKey, redis.sentinel, redis.cluster or redis.embedded)" }}
{{- end }}
{{- if and $j.secret $j.existingSecret }}
{{- fail "set auth.jwt.secret or auth.jwt.existingSecret, not both" }}
{{- end }}
{{- $pk := $j.publicKeys }}
{{- if gt (len (compact (list $pk.content $pk.existingSecret $pk.existingConfigMap))) 1 }}
{{- fail "set one of auth.jwt.publicKeys.content, existingSecret and existingConfigMap" }}
{{- end }}
{{- if $jwt }}
{{- if not $j.issuers }}
{{- fail "auth.jwt.issuers is required with a JWT key (auth.jwt.secret, existingSecret, publicKeys or jwksURL): the accepted iss values" }}
{{- end }}
{{- if not $j.audiences }}
{{- fail "auth.jwt.audiences is required with a JWT key (auth.jwt.secret, existingSecret, publicKeys or jwksURL): keygate's names, one of which aud must hold" }}
{{- end }}
{{- else if or $j.algorithms $j.types $j.leeway $j.requireLowS }}
{{- fail "auth.jwt.algorithms, types, leeway and requireLowS need a JWT key: set auth.jwt.secret, existingSecret, publicKeys or jwksURL" }}
{{- end }}
{{- if and $j.jwksRefreshInterval (not $j.jwksURL) }}
{{- fail "auth.jwt.jwksRefreshInterval needs auth.jwt.jwksURL" }}
{{- end }}
{{- if and (not $jwt) (not $i.url) (or $a.claims.products $a.claims.productPrefix $a.claims.operations $a.claims.operationPrefix $a.claims.name) }}
{{- fail "auth.claims apply to JWTs and introspection answers: set a JWT key under auth.jwt or auth.introspection.url" }}
{{- end }}
{{- if and $i.clientSecret $i.existingSecret }}
{{- fail "set auth.introspection.clientSecret or auth.introspection.existingSecret, not both" }}
{{- end }}
{{- if and (not $i.url) (or $i.clientID $i.clientSecret $i.existingSecret $i.timeout $i.cacheTTL) }}
{{- fail "auth.introspection.url is required with the other auth.introspection values" }}
{{- end }}
{{- if ne (not $i.clientID) (not (or $i.clientSecret $i.existingSecret)) }}
{{- fail "auth.introspection.clientID and a client secret (clientSecret or existingSecret): set both or neither" }}
{{- end }}
{{- if and $a.upstreamAuth.value $a.upstreamAuth.existingSecret }}
{{- fail "set auth.upstreamAuth.value or auth.upstreamAuth.existingSecret, not both" }}
{{- end }}
{{- $_ := include "keygate.tokenSources" . }}
{{- end }}
