{{- define "route53-failover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "route53-failover.fullname" -}}
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

{{- define "route53-failover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "route53-failover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "route53-failover.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "route53-failover.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "route53-failover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "route53-failover.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Pods: as asked, else 1, or 2 with HA. Several writers without the lease are refused. */}}
{{- define "route53-failover.replicas" -}}
{{- $n := .Values.replicaCount | default (ternary 2 1 .Values.ha.enabled) | int }}
{{- if and (gt $n 1) (not .Values.ha.enabled) }}
{{- fail (printf "replicaCount: %d needs ha.enabled: true (without the lease, replicas would all write the records)" $n) }}
{{- end }}
{{- $n }}
{{- end }}

{{/* The daemon's config file: .Values.config plus listen, health_listen and ha. */}}
{{- define "route53-failover.config" -}}
{{- $c := deepCopy (.Values.config | default (include "route53-failover.dryConfig" . | fromYaml)) }}
{{- $_ := set $c "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) }}
{{- if eq (int .Values.service.healthPort) (int .Values.service.port) }}
{{- fail "service.healthPort must differ from service.port: the probes get a port of their own" }}
{{- end }}
{{- $_ := set $c "health_listen" (printf "0.0.0.0:%d" (int .Values.service.healthPort)) }}
{{- if .Values.ha.enabled }}
{{- $ha := dict "enabled" true "identity" "${env:POD_NAME}" "lease_duration" .Values.ha.leaseDuration "renew_every" .Values.ha.renewEvery "max_clock_drift" .Values.ha.maxClockDrift "view_max_age" .Values.ha.viewMaxAge }}
{{- with .Values.ha.zone }}{{ $_ := set $ha "zone" . }}{{ end }}
{{- with .Values.ha.leaseName }}{{ $_ := set $ha "lease_name" . }}{{ end }}
{{- $_ := set $c "ha" $ha }}
{{- end }}
{{- if .Values.admin.enabled }}
{{- if not .Values.admin.existingSecret }}
{{- fail "admin.enabled needs admin.existingSecret: the Secret holding the admin token" }}
{{- end }}
{{- $admin := dict "token_file" (printf "../admin/%s" .Values.admin.key) }}
{{- with .Values.admin.zone }}{{ $_ := set $admin "zone" . }}{{ end }}
{{- $_ := set $c "admin" $admin }}
{{- end }}
{{- with .Values.routingControl.clusterEndpoints }}
{{- $_ := set $c "routing_control" (dict "cluster_endpoints" . "mode" $.Values.routingControl.mode "allow_safety_override" $.Values.routingControl.allowSafetyOverride) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* What cannot change without a restart (see the daemon's reload): a
change of it rolls the pods; any other config change is applied live. */}}
{{- define "route53-failover.restartChecksum" -}}
{{- $c := include "route53-failover.config" . | fromYaml }}
{{- dict "provider" $c.provider "ha" $c.ha "listen" $c.listen "health_listen" $c.health_listen "state_store" $c.state_store | toYaml | sha256sum }}
{{- end }}

{{/* With no config: the embedded memory provider, which changes nothing real. */}}
{{- define "route53-failover.dryConfig" -}}
owner: route53-failover
provider: {kind: memory, zones: [example.test]}
records:
  - name: api.example.test
    zone: example.test
    probe: {url: "https://api.example.test/health"}
    regions:
      - region: us-east-1
        target: {values: [192.0.2.10]}
      - region: eu-west-1
        target: {values: [192.0.2.20]}
{{- end }}
