{{/*
Named templates for a chart that runs keygate as a sidecar in its own pod. Add
keygate as a dependency with `mode: sidecar`, then in the pod template pass
keygate's context, `.Subcharts.keygate` (Helm >= 3.7), so names match the
ConfigMap and Secrets this chart renders:

  metadata:
    {{- with include "keygate.sidecar.podAnnotations" .Subcharts.keygate }}
    annotations:
      {{- . | nindent 6 }}
    {{- end }}
  spec:
    enableServiceLinks: false
    terminationGracePeriodSeconds: {{ include "keygate.sidecar.terminationGracePeriodSeconds" .Subcharts.keygate }}
    containers:
      - name: backend
        ...
      {{- include "keygate.sidecar.container" .Subcharts.keygate | nindent 6 }}
    volumes:
      {{- include "keygate.sidecar.volumes" .Subcharts.keygate | nindent 6 }}

deploy/kubernetes/sidecar-chart is a complete example.
*/}}

{{- define "keygate.sidecar.check" -}}
{{- if ne .Values.mode "sidecar" }}
{{- fail "the keygate.sidecar.* templates need keygate's mode: sidecar (in gateway mode keygate renders its own Deployment)" }}
{{- end }}
{{- end }}

{{/* The keygate container as one list item, for the pod's `containers:`. */}}
{{- define "keygate.sidecar.container" -}}
{{- include "keygate.sidecar.check" . -}}
- {{ include "keygate.container" . | indent 2 | trim }}
{{- end }}

{{/* keygate's volumes as list items, for the pod's `volumes:`. */}}
{{- define "keygate.sidecar.volumes" -}}
{{- include "keygate.sidecar.check" . -}}
{{- include "keygate.volumes" . | trim }}
{{- end }}

{{/* Pod annotations keygate needs (the policy checksum), as map entries; may be empty. */}}
{{- define "keygate.sidecar.podAnnotations" -}}
{{- include "keygate.sidecar.check" . -}}
{{- include "keygate.podAnnotations" . | trim }}
{{- end }}

{{/* The least terminationGracePeriodSeconds for keygate's drain; the pod's should be at least this. */}}
{{- define "keygate.sidecar.terminationGracePeriodSeconds" -}}
{{- include "keygate.sidecar.check" . -}}
{{- include "keygate.terminationGracePeriodSeconds" . | trim }}
{{- end }}
