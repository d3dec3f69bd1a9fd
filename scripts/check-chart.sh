#!/usr/bin/env bash
# Checks the Helm chart: `helm lint --strict`; `helm template` of the
# default values and of each example, through `kubernetes-validate
# --strict`; the daemon's `check` on the config each renders (with the
# pod's file layout); the alert rules through `promtool check rules` and
# `promtool test rules`; and that bad values are refused.
# Needs helm (.tools/, see .ci/run), kubernetes-validate and PyYAML
# (.venv), promtool, and the daemon binary (BIN, default the debug build
# under CARGO_TARGET_DIR or target/).
set -euo pipefail
cd "$(dirname "$0")/.."
chart=charts/route53-failover
helm=${HELM:-.tools/layer/helm/helm}
py=.venv/bin/python
bin=${BIN:-${CARGO_TARGET_DIR:-target}/debug/route53-failover}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "--- helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$chart/examples/api-gateway.yaml" -f "$chart/examples/us-east-1.yaml"

# Each case: a name, then the values files (none: the defaults).
cases=(
  "defaults"
  "us-east-1 examples/api-gateway.yaml examples/us-east-1.yaml"
  "eu-west-1 examples/api-gateway.yaml examples/eu-west-1.yaml"
)
for case in "${cases[@]}"; do
  read -r name files <<<"$case"
  args=()
  for f in $files; do args+=(-f "$chart/$f"); done
  out="$work/$name"
  mkdir -p "$out"
  echo "--- $name: helm template | kubernetes-validate --strict"
  "$helm" template rf "$chart" -n route53-failover "${args[@]}" >"$out/all.yaml"
  .venv/bin/kubernetes-validate --strict --quiet "$out/all.yaml"
  # The pod's layout: the config in config/, each mounted secret beside it.
  "$py" - "$out" <<'PY'
import os, sys, yaml
out = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{out}/all.yaml")) if d]
kinds = {d["kind"] for d in docs}
assert {"Deployment", "ConfigMap", "Service", "ServiceAccount"} <= kinds, kinds
cm = next(d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d["data"])
os.makedirs(f"{out}/pod/config")
open(f"{out}/pod/config/config.yaml", "w").write(cm["data"]["config.yaml"])
dep = next(d for d in docs if d["kind"] == "Deployment")
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
assert c["securityContext"]["readOnlyRootFilesystem"] is True
assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
assert pod["securityContext"]["runAsNonRoot"] is True
assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
assert c["args"][:3] == ["run", "--config", "/etc/route53-failover/config/config.yaml"]
assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"]
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
# The probes use the health port, which the config serves them on.
health = next(p for p in c["ports"] if p["name"] == "health")
assert c["livenessProbe"]["httpGet"]["port"] == "health"
assert c["readinessProbe"]["httpGet"]["port"] == "health"
assert yaml.safe_load(cm["data"]["config.yaml"])["health_listen"] == f"0.0.0.0:{health['containerPort']}"
config = yaml.safe_load(cm["data"]["config.yaml"])
ha = config.get("ha", {}).get("enabled", False)
assert dep["spec"]["replicas"] == (2 if ha else 1), dep["spec"]["replicas"]
# One writer through a rollout: without the lease, never two pods at once.
strategy = dep["spec"]["strategy"]
if ha:
    assert strategy["type"] == "RollingUpdate", strategy
else:
    assert strategy == {"type": "Recreate"}, strategy
assert ("PodDisruptionBudget" in kinds) == ha
admin = config.get("admin")
assert (admin is None) == (not any(m["mountPath"] == "/etc/route53-failover/admin" for m in c.get("volumeMounts", [])))
for m in c.get("volumeMounts", []):
    if m["mountPath"] == "/etc/route53-failover/admin":
        os.makedirs(f"{out}/pod/admin")
        # The token the config names, as the Secret's key mounts it.
        assert admin["token_file"].startswith("../admin/"), admin
        open(f"{out}/pod/config/{admin['token_file']}", "w").write("stand-in-admin-token-0123456789\n")
    if m["mountPath"].startswith("/etc/route53-failover/secrets/"):
        d = out + "/pod/" + m["mountPath"][len("/etc/route53-failover/"):]
        os.makedirs(d)
        # A stand-in for each key the config names below this mount.
        for key in ["client-secret", "token"]:
            open(f"{d}/{key}", "w").write("stand-in\n")
rules = [d for d in docs if d["kind"] == "PrometheusRule"]
if rules:
    yaml.safe_dump(rules[0]["spec"], open(f"{out}/rules.yaml", "w"))
    # Every alert links to its own section of docs/runbooks.md.
    import re
    sections = {m.lower() for m in re.findall(r"^## (\S+)$", open("docs/runbooks.md").read(), re.M)}
    alerts = [r for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r]
    for r in alerts:
        url = r["annotations"].get("runbook_url", "")
        base, _, anchor = url.partition("#")
        assert base.endswith("docs/runbooks.md"), f"{r['alert']}: runbook_url {url!r}"
        assert anchor == r["alert"].lower(), f"{r['alert']}: runbook_url {url!r} names another section"
        assert anchor in sections, f"{r['alert']}: no section '## {r['alert']}' in docs/runbooks.md"
    print(f"{len(alerts)} alerts, each with its runbook section")
monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
for sm in monitors:
    svc = next(d for d in docs if d["kind"] == "Service")
    ports = {p["name"] for p in svc["spec"]["ports"]}
    assert all(e["port"] in ports for e in sm["spec"]["endpoints"]), "ServiceMonitor port"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
import json
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1":
        board = json.loads(d["data"]["route53-failover.json"])
        assert board["panels"] and all(p["targets"] for p in board["panels"]), "dashboard panels"
        print(f"dashboard: {len(board['panels'])} panels, in {d['metadata']['namespace']}")
print(f"{len(docs)} manifests: {', '.join(sorted(kinds))}")
PY
  echo "--- $name: route53-failover check on the rendered config"
  POD_NAME=rf-7c9f-x2 "$bin" check --config "$out/pod/config/config.yaml"
  if [ -f "$out/rules.yaml" ]; then
    echo "--- $name: promtool check rules, promtool test rules"
    promtool check rules "$out/rules.yaml"
    cp "$chart/ci/alerts.test.yaml" "$out/"
    (cd "$out" && promtool test rules alerts.test.yaml)
  fi
done

echo "--- bad values are refused"
refused() {
  local want=$1; shift
  if msg=$("$helm" template rf "$chart" "$@" 2>&1); then
    echo "accepted, should be refused: $*"; exit 1
  fi
  grep -qF "$want" <<<"$msg" || { echo "refused without \"$want\": $msg"; exit 1; }
}
refused "needs ha.enabled: true" --set replicaCount=2
refused "/service/port" --set service.port=http
refused "service.healthPort must differ from service.port" --set service.healthPort=9090
refused "/ha/leaseDuration" --set ha.enabled=true --set ha.leaseDuration=soon
refused "/config" --set config.listen=0.0.0.0:1
refused "admin.enabled needs admin.existingSecret" --set admin.enabled=true
refused "/routingControl/mode" --set routingControl.mode=records
refused "/prometheusRule/runbookUrl" --set prometheusRule.runbookUrl=wiki/runbooks
echo "--- the lever's endpoints reach the config"
lever=$("$helm" template rf "$chart" \
  --set 'routingControl.clusterEndpoints[0].url=https://host-aaaaaa.us-west-2.example.aws' \
  --set 'routingControl.clusterEndpoints[0].region=us-west-2' \
  --set routingControl.mode=switches_and_records)
grep -qF "https://host-aaaaaa.us-west-2.example.aws" <<<"$lever" || { echo "no cluster endpoint in the config"; exit 1; }
grep -qF "mode: switches_and_records" <<<"$lever" || { echo "no lever mode in the config"; exit 1; }
echo "chart ok"
