{{/*
The sidecar injector's webhooks, as the inject work decided them (notes: path /inject, three
webhooks with Istio's selectors, failurePolicy Fail as Istio's). Weft (the leader) applies the same
object with its caBundle.
*/}}
{{- define "weft.injectionWebhookCommon" }}
  clientConfig:
    service:
      namespace: {{ .Release.Namespace }}
      name: weft
      port: 443
      path: /inject
  rules:
    - apiGroups:
        - ""
      apiVersions:
        - v1
      operations:
        - CREATE
      resources:
        - pods
      scope: "*"
  failurePolicy: Fail
  matchPolicy: Equivalent
  reinvocationPolicy: Never
  sideEffects: None
  timeoutSeconds: 10
  admissionReviewVersions:
    - v1
{{- end }}

{{- define "weft.injectionWebhooks" }}
- name: namespace.sidecar-injector.weft.io
  {{- include "weft.injectionWebhookCommon" . }}
  namespaceSelector:
    matchLabels:
      istio-injection: enabled
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: NotIn
        values:
          - "false"
- name: rev.namespace.sidecar-injector.weft.io
  {{- include "weft.injectionWebhookCommon" . }}
  namespaceSelector:
    matchExpressions:
      - key: istio.io/rev
        operator: In
        values:
          - {{ .Values.webhooks.injection.revision | quote }}
      - key: istio-injection
        operator: DoesNotExist
  objectSelector:
    matchExpressions:
      - key: sidecar.istio.io/inject
        operator: NotIn
        values:
          - "false"
- name: object.sidecar-injector.weft.io
  {{- include "weft.injectionWebhookCommon" . }}
  namespaceSelector:
    matchExpressions:
      - key: istio-injection
        operator: DoesNotExist
      - key: istio.io/rev
        operator: DoesNotExist
  objectSelector:
    matchLabels:
      sidecar.istio.io/inject: "true"
{{- end }}
