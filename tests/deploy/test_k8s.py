"""deploy/k8s: each Kustomize overlay renders, and every object it renders is valid and safe to run.

Built-in kinds validate against the Kubernetes schemas bundled in kubernetes-validate (strict: an
unknown field is an error, offline); KEDA's ScaledObject against the subset vendored in
deploy/k8s/schemas/. Without kubectl the rendering tests are skipped with the reason printed.
"""

from __future__ import annotations

import json
import re
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
from worker.backlog import METRIC

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


@needs_kubectl
def test_dev_runs_its_own_redis_and_prod_none() -> None:
    dev = rendered("dev")
    redis_set = one(dev, "StatefulSet", "rolesync-redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis_set["command"][redis_set["command"].index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_set["command"][redis_set["command"].index("--appendfsync") + 1] == "always"
    assert one(dev, "Service", "rolesync-redis")
    assert not of_kind(rendered("prod"), "StatefulSet")
    assert not of_kind(rendered("prod"), "Secret")  # created by the operator, never from git


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
