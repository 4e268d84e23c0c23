"""deploy/k8s: each Kustomize overlay renders, and every object it renders is valid and safe to run.

Built-in kinds validate against the Kubernetes schemas bundled in kubernetes-validate (strict: an
unknown field is an error, offline); KEDA's ScaledObject against the subset vendored in
deploy/k8s/schemas/. Without kubectl the rendering tests are skipped with the reason printed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from common.settings import Settings
from ingest.app import create_app
from tests.procs import ROOT
from worker.runtime.backlog import METRIC

pytestmark = pytest.mark.integration  # `kubectl kustomize` renders the overlays

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32"
SCALED_OBJECT_SCHEMA = json.loads((K8S / "schemas" / "scaledobject-keda-v1alpha1.json").read_text())
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: overlays not rendered")

Obj = dict[str, Any]


@cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def validate(obj: Obj) -> None:
    """Raise if the object is not valid for its kind (every kind we ship must have a schema)."""
    if obj["apiVersion"] == "keda.sh/v1alpha1":
        jsonschema.validate(obj, SCALED_OBJECT_SCHEMA)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def of_kind(objs: tuple[Obj, ...], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    (found,) = of_kind(objs, kind, name)
    return found


def pod_specs(objs: tuple[Obj, ...]) -> list[Obj]:
    return [o["spec"]["template"]["spec"] for o in objs if o["kind"] in ("Deployment", "StatefulSet")]


def env_config(objs: tuple[Obj, ...]) -> dict[str, str]:
    (config,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("rolesync-env")]
    return dict(config["data"])


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    objs = rendered(overlay)
    for obj in objs:
        validate(obj)
    assert {o["kind"] for o in objs} >= {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "ScaledObject",
    }  # fmt: skip


@needs_kubectl
def test_the_validators_reject_a_broken_object() -> None:
    """The check above can fail: a typo'd field and a wrong type are both caught."""
    scaled = json.loads(json.dumps(one(rendered("prod"), "ScaledObject", "rolesync-worker")))
    scaled["spec"]["maxReplicas"] = 3  # an HPA field name, not KEDA's
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    deployment = json.loads(json.dumps(one(rendered("prod"), "Deployment", "rolesync-worker")))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_non_root_on_a_read_only_root_with_sized_resources(overlay: str) -> None:
    for spec in pod_specs(rendered(overlay)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]


def images(objs: tuple[Obj, ...]) -> list[str]:
    return [c["image"] for spec in pod_specs(objs) for c in [*spec["containers"], *spec.get("initContainers", [])]]


@needs_kubectl
def test_prod_names_every_image_by_digest() -> None:
    """A tag can be moved to another image; a digest names exactly the one built and tested."""
    found = images(rendered("prod"))
    assert found
    assert [image for image in found if not re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", image)] == []


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_overlay_runs_an_untagged_image(overlay: str) -> None:
    """An untagged image is `:latest`, whatever was pushed last."""
    untagged = [
        image for image in images(rendered(overlay)) if not re.search(r"(:[\w.-]+|@sha256:[0-9a-f]{64})$", image)
    ]
    assert untagged == []


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_the_shutdown_timeout(overlay: str) -> None:
    objs = rendered(overlay)
    shutdown_s = int(env_config(objs)["ROLESYNC_SHUTDOWN_TIMEOUT_S"])
    for name in ("rolesync-ingest", "rolesync-worker"):
        spec = one(objs, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > shutdown_s


@needs_kubectl
def test_ingest_probes_use_its_endpoints_and_liveness_never_asks_redis() -> None:
    container = one(rendered("prod"), "Deployment", "rolesync-ingest")["spec"]["template"]["spec"]["containers"][0]
    paths = {getattr(route, "path", None) for route in create_app(Settings()).routes}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"  # /readyz pings Redis
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz"} <= paths


@needs_kubectl
def test_api_probes_use_its_endpoints_and_its_keys_come_from_a_secret() -> None:
    from api.app import create_app as create_api

    objs = rendered("prod")
    container = one(objs, "Deployment", "rolesync-api")["spec"]["template"]["spec"]["containers"][0]
    paths = {getattr(route, "path", None) for route in create_api(Settings()).routes}
    probes = {container["livenessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"]["path"]}
    assert probes == {"/healthz", "/readyz"} <= paths
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["ROLESYNC_API_KEYS"]["name"] == refs["ROLESYNC_WORKFLOW_SECRET"]["name"] == "rolesync-api"
    assert refs["ROLESYNC_WORKFLOW_SECRET"]["optional"] is True  # the read routes serve without the guard
    assert one(objs, "Service", "rolesync-api")["spec"]["selector"] == {"app.kubernetes.io/name": "rolesync-api"}


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(
    ("name", "limit"),
    [("rolesync-api", "ROLESYNC_API_AUTH_FAILURES"), ("rolesync-ingest", "ROLESYNC_INGEST_SIGNATURE_FAILURES")],
)
def test_per_address_limits_count_only_where_the_callers_address_is_seen(overlay: str, name: str, limit: str) -> None:
    """Behind the ingress, a per-address limit without FORWARDED_ALLOW_IPS would block every caller at once."""
    container = one(rendered(overlay), "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values.get("FORWARDED_ALLOW_IPS") or values.get(limit) == "0"


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_targets_the_right_workloads_on_the_right_signal(overlay: str) -> None:
    objs = rendered(overlay)
    hpa = one(objs, "HorizontalPodAutoscaler", "rolesync-ingest")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "rolesync-ingest"
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    scaled = one(objs, "ScaledObject", "rolesync-worker")["spec"]
    assert one(objs, "Deployment", scaled["scaleTargetRef"]["name"])
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus"
    assert METRIC in trigger["metadata"]["query"]
    assert trigger["metadata"]["query"].startswith("max(")  # every pod reports the fleet's figure
    assert scaled["minReplicaCount"] >= 1  # the gauge is served by the workers themselves
    for name in ("rolesync-ingest", "rolesync-worker"):
        assert "replicas" not in one(objs, "Deployment", name)["spec"]  # the autoscaler owns it


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budgets_select_their_pods(overlay: str) -> None:
    objs = rendered(overlay)
    for budget in of_kind(objs, "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(objs, "Deployment")]
        matched = [found for found in labels if selector.items() <= found.items()]
        assert len(matched) == 1, budget["metadata"]["name"]


@needs_kubectl
def test_worker_metrics_port_matches_the_scraped_port() -> None:
    objs = rendered("prod")
    pod = one(objs, "Deployment", "rolesync-worker")["spec"]["template"]
    port = env_config(objs)["ROLESYNC_WORKER_METRICS_PORT"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == port
    assert [p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]] == [int(port)]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_plans_ship_as_a_config_map_and_credentials_come_from_secrets(overlay: str) -> None:
    objs = rendered(overlay)
    (plans,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("rolesync-plans")]
    assert plans["data"]["plans.toml"] == (ROOT / "plans.toml").read_text()
    worker = one(objs, "Deployment", "rolesync-worker")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in worker["env"] if "valueFrom" in e}
    assert refs["KINDE_CLIENT_SECRET"] == refs["KINDE_CLIENT_ID"] == "rolesync-kinde"
    assert refs["REDIS_URL"].startswith("rolesync-redis")
    assert not any("KINDE_CLIENT" in key for o in of_kind(objs, "Secret") for key in o.get("data", {}))


def redis_server_args(container: Obj) -> list[str]:
    """What redis-server is exec'd with: the container runs `sh -c` to feed it its password on stdin."""
    assert container["command"][:2] == ["sh", "-c"]
    return shlex.split(container["command"][2].split("exec ", 1)[1])


@needs_kubectl
def test_dev_runs_its_own_redis_and_prod_none() -> None:
    dev = rendered("dev")
    redis_set = one(dev, "StatefulSet", "rolesync-redis")["spec"]["template"]["spec"]["containers"][0]
    args = redis_server_args(redis_set)
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--appendfsync") + 1] == "always"
    assert one(dev, "Service", "rolesync-redis")
    assert not of_kind(rendered("prod"), "StatefulSet")


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_overlay_generates_a_secret(overlay: str) -> None:
    """Every credential, Redis's password too, comes from a Secret the operator creates, never from git."""
    assert not of_kind(rendered(overlay), "Secret")


@needs_kubectl
def test_dev_redis_requires_the_password_of_the_operators_secret() -> None:
    container = one(rendered("dev"), "StatefulSet", "rolesync-redis")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    password = {"name": "rolesync-redis", "key": "REDIS_PASSWORD"}
    assert refs == {"REDIS_PASSWORD": password, "REDISCLI_AUTH": password}  # the server's, and the readiness ping's
    assert container["command"][2].startswith("printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" |")
    assert redis_server_args(container)[:2] == ["redis-server", "-"]  # config from stdin: in no argument list
    assert "requirepass" not in redis_server_args(container)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A label selector's verdict on `labels` (matchLabels and the In / NotIn / Exists operators)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        verdict = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values, "Exists": key in labels}
        if not verdict[operator]:
            return False
    return True


def workloads(objs: tuple[Obj, ...]) -> dict[str, Obj]:
    """Each Deployment's and StatefulSet's name -> its pod template."""
    return {o["metadata"]["name"]: o["spec"]["template"] for o in objs if o["kind"] in ("Deployment", "StatefulSet")}


def admitted(policy: Obj, objs: tuple[Obj, ...]) -> dict[str, set[str]]:
    """Named port -> who may reach it: `ns:<namespace>` or `pod:<workload>` (workloads of this render)."""
    found: dict[str, set[str]] = {}
    for rule in policy["spec"]["ingress"]:
        sources: set[str] = set()
        for peer in rule["from"]:
            assert set(peer) in ({"namespaceSelector"}, {"podSelector"}), peer  # no ipBlock, no cross-namespace pods
            if "namespaceSelector" in peer:
                (namespace,) = peer["namespaceSelector"]["matchLabels"].values()
                sources.add(f"ns:{namespace}")
            else:
                pods = workloads(objs).items()
                sources |= {
                    f"pod:{name}" for name, pod in pods if selects(peer["podSelector"], pod["metadata"]["labels"])
                }
        for port in rule["ports"]:
            found.setdefault(port["port"], set()).update(sources)
    return found


def policies_of(objs: tuple[Obj, ...], workload: str) -> list[Obj]:
    labels = workloads(objs)[workload]["metadata"]["labels"]
    return [p for p in of_kind(objs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


INGRESS_NS, MONITORING_NS = "ns:ingress-nginx", "ns:monitoring"
APPS = {"rolesync-ingest", "rolesync-worker", "rolesync-api"}


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_reached_only_as_its_network_policy_says(overlay: str) -> None:
    """Ingest and API: their ports from the ingress controller, metrics from monitoring; worker: metrics only."""
    objs = rendered(overlay)
    expected = {
        "rolesync-ingest": {"http": {INGRESS_NS}, "metrics": {MONITORING_NS}},
        "rolesync-api": {"http": {INGRESS_NS}, "guard": {INGRESS_NS}, "metrics": {MONITORING_NS}},
        "rolesync-worker": {"metrics": {MONITORING_NS}},
        "rolesync-redis": {"redis": {f"pod:{name}" for name in APPS}},
    }
    for workload, pod in workloads(objs).items():
        (policy,) = policies_of(objs, workload)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert admitted(policy, objs) == expected[workload], workload
        named = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert set(expected[workload]) <= named  # a rule naming a port the pod lacks would admit nothing


@needs_kubectl
def test_the_policy_check_can_fail() -> None:
    """The evaluator sees a policy that admits everyone, and a Redis policy that admits any pod."""
    objs = rendered("dev")
    (redis_policy,) = policies_of(objs, "rolesync-redis")
    loose = json.loads(json.dumps(redis_policy))
    loose["spec"]["ingress"][0]["from"][0]["podSelector"] = {}
    assert admitted(loose, (*objs, {"kind": "Deployment", "metadata": {"name": "intruder"},
                                    "spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}))["redis"] >= {
        "pod:intruder"
    }  # fmt: skip
    assert not selects({"matchLabels": {"app.kubernetes.io/name": "rolesync-api"}}, {"app": "x"})


@needs_kubectl
@pytest.mark.parametrize("name", ["rolesync-ingest", "rolesync-api"])
def test_ingest_and_api_serve_metrics_off_their_public_port(name: str) -> None:
    pod = one(rendered("prod"), "Deployment", name)["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    command = container["command"]
    assert int(command[command.index("--metrics-port") + 1]) == ports["metrics"] != ports["http"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])


def test_image_ships_only_the_runtime_packages() -> None:
    copied = re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.M)
    assert not {"bench", "chaos", "tests", "devtools", "deploy", "."} & set(copied)


def test_readme_documents_the_sentinel_form_and_links_the_deploy_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "redis+sentinel://h1:26379,h2:26379/<master>/<db>" in readme
    assert "(docs/deploy.md)" in readme
    assert "(alerts.yml)" in guide
    assert "`ROLESYNC_REDIS_MIN_REPLICAS`" in readme


@needs_kubectl
def test_the_guard_listens_on_a_port_of_its_own_that_the_service_exposes() -> None:
    """Kinde's plan-selection calls reach their own event loop, away from the reads (api/guard_port.py)."""
    objs = rendered("prod")
    (container,) = one(objs, "Deployment", "rolesync-api")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    command = container["command"]
    assert int(command[command.index("--guard-port") + 1]) == ports["guard"] not in (ports["http"], ports["metrics"])
    service = {p["name"]: p["targetPort"] for p in one(objs, "Service", "rolesync-api")["spec"]["ports"]}
    assert service == {"http": "http", "guard": "guard"}
