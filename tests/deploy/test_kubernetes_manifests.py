"""deploy/kubernetes against the Kubernetes API schemas and against the code it runs.

There is no cluster, kubectl or kustomize here. The kustomizations hold plain manifests only (no generators,
patches or transformers), so the files are exactly what `kubectl apply -k` sends; every object is validated
against the API schemas that kubernetes-validate ships, for every Kubernetes version it knows. The rest ties
the manifests to the code: the variables are settings that validate (through `python -m edge check-config`'s
own code), the probes ask routes the edge and the actions service serve on the ports they listen on, the grace
period outlasts the edge's shutdown, the user is the image's, and the Secrets the pods read are the ones
docs/kubernetes.md tells operators to create (none is shipped: applying the directory again must never
overwrite real secrets with examples).
"""

from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from actions.app import create_app as create_actions_app
from actions.settings import ActionsSettings
from edge import check_config
from edge.db.cli import DatabaseSettings
from edge.http_server.config import server_config
from edge.settings import EdgeSettings
from tests.edge.conftest import DOUBLE_ADMIN_SECRET, edge_settings, start_edge_server
from tests.hasura_double import HasuraDouble
from tests.support.servers import start_server

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
GUIDE = REPO_ROOT / "docs" / "kubernetes.md"
DOCKERFILE = REPO_ROOT / "Dockerfile"
KUSTOMIZATION = "kustomization.yaml"
IMAGE = "hasura-edge"  # the name an overlay's `images:` entry rewrites

EDGE = "hasura-edge"
ACTIONS = "hasura-edge-actions"
EDGE_SECRET = "hasura-edge-secrets"
ACTIONS_SECRET = "hasura-edge-actions-secrets"
# What operators put in the Secrets (docs/kubernetes.md), as test values in the forms the settings accept.
SECRET_VALUES = {
    EDGE_SECRET: {
        "EDGE_HASURA_ADMIN_SECRET": "k8s-test-hasura-admin-secret-5f0c",
        "EDGE_JWT_SECRET": '{"type":"HS256","key":"k8s-test-jwt-key-0123456789abcdef0123456789abcdef"}',
        "EDGE_REDIS_URL": "redis://redis:6379/0",
        "EDGE_DATABASE_URL": "postgresql://edge:password@postgres:5432/edge",
    },
    ACTIONS_SECRET: {
        "ACTIONS_DATABASE_URL": "postgresql://app:password@postgres:5432/app",
        "ACTIONS_WEBHOOK_SECRET": "k8s-test-webhook-secret-7d2e91",
    },
}


# --- reading the manifests --------------------------------------------------------------------------------


def kustomization_dirs() -> list[Path]:
    return sorted(path.parent for path in KUBERNETES.glob(f"*/{KUSTOMIZATION}"))


def read_kustomization(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((directory / KUSTOMIZATION).read_text(encoding="utf-8"))
    return loaded


def objects_in(directory: Path) -> list[dict[str, Any]]:
    found = []
    for resource in read_kustomization(directory)["resources"]:
        found += [item for item in yaml.safe_load_all((directory / resource).read_text(encoding="utf-8")) if item]
    return found


def every_object() -> list[dict[str, Any]]:
    return [item for directory in kustomization_dirs() for item in objects_in(directory)]


def the(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [item for item in objects if item["kind"] == kind and item["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [item for item in pod_spec(deployment)["containers"] if item["name"] == name]
    assert len(matches) == 1, f"{deployment['metadata']['name']} has no container {name}"
    return matches[0]


def all_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def secret_refs(item: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(variable, Secret, key) for each variable a container reads from a Secret."""
    return [
        (env["name"], env["valueFrom"]["secretKeyRef"]["name"], env["valueFrom"]["secretKeyRef"]["key"])
        for env in item.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]


def environment(objects: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, str]:
    """The container's variables as the kubelet sets them, the Secrets' keys filled with SECRET_VALUES."""
    env: dict[str, str] = {}
    for source in item.get("envFrom", []):
        # Only ConfigMaps in bulk: a Secret's variable names must be visible in the manifest (and checked).
        assert set(source) == {"configMapRef"}, f"{item['name']}: envFrom only from a ConfigMap"
        env.update(the(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in item.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = SECRET_VALUES[ref["name"]][ref["key"]]
    return env


def container_port(item: dict[str, Any], port: int | str) -> int:
    """A port given by number or by name, as a probe or a Service's targetPort gives it."""
    numbers = {entry["name"]: entry["containerPort"] for entry in item.get("ports", [])}
    if isinstance(port, int):
        assert port in numbers.values(), f"{item['name']} does not declare port {port}"
        return port
    assert port in numbers, f"{item['name']} has no port named {port}"
    return numbers[port]


def pre_stop_seconds(item: dict[str, Any]) -> int:
    command = item["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, f"{item['name']}: preStop is `sleep N`"
    return int(command[1])


def dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER (\d+):(\d+)\s*$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert users, "the Dockerfile names its user as USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


def documented_secrets() -> dict[str, set[str]]:
    """The keys of each `kubectl [-n NS] create secret generic NAME --from-literal=KEY=...` command in the guide."""
    text = GUIDE.read_text(encoding="utf-8").replace("\\\n", " ")  # one line per command
    created: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not re.match(r"\s*kubectl\b.*\bcreate secret generic\b", line):
            continue
        words = shlex.split(line, comments=True)
        name = words[words.index("generic") + 1]
        created[name] = {word.split("=")[1] for word in words if word.startswith("--from-literal=")}
    return created


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return objects_in(BASE)


@pytest.fixture
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No EDGE_*/ACTIONS_* variables of this process: the settings come only from what a test sets."""
    for name in list(os.environ):
        if name.upper().startswith(("EDGE_", "ACTIONS_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def edge_environment(
    base: list[dict[str, Any]], isolated_environment: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    """The edge container's variables set in this process, EDGE_CONFIG naming the ConfigMap's file written
    to a path of this machine (the mount is checked on its own); what was set is returned."""
    env = environment(base, container(the(base, "Deployment", EDGE), "edge"))
    config_file = tmp_path / PurePosixPath(env["EDGE_CONFIG"]).name
    config_file.write_text(the(base, "ConfigMap", "hasura-edge-config")["data"][config_file.name], encoding="utf-8")
    env["EDGE_CONFIG"] = str(config_file)
    for name, value in env.items():
        isolated_environment.setenv(name, value)
    return env


# --- kustomizations and schemas ---------------------------------------------------------------------------


def test_the_kustomizations_are_the_base_and_the_ingress() -> None:
    assert [path.name for path in kustomization_dirs()] == ["base", "ingress"]


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda path: path.name)
def test_a_kustomization_lists_exactly_the_manifests_beside_it_and_transforms_nothing(directory: Path) -> None:
    kustomization = read_kustomization(directory)
    # Anything beyond resources (namePrefix, labels, patches, generators...) would make kubectl apply other
    # objects than the files validated here.
    assert set(kustomization) == {"apiVersion", "kind", "resources"}
    assert (kustomization["apiVersion"], kustomization["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    for resource in resources:
        assert (directory / resource).is_file(), f"{directory.name}/{resource} does not exist"
    beside = {path.name for path in directory.iterdir() if path.name != KUSTOMIZATION}
    assert beside == set(resources), f"{directory.name}: files not listed: {sorted(beside - set(resources))}"


@pytest.mark.parametrize("version", sorted(set(all_versions())))
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    objects = every_object()
    assert len(objects) >= 9
    for item in objects:
        try:
            # strict: a property the schema does not know (a misspelt key) is an error too
            kubernetes_validate.validate(item, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{item['kind']} {item['metadata']['name']}: {where}: {error.message} (Kubernetes {version})")


def test_the_schema_check_catches_mistakes(base: list[dict[str, Any]]) -> None:
    """Guard against a vacuous check: a misspelt key and a wrong type are rejected."""
    version = kubernetes_validate.latest_version()
    deployment = the(base, "Deployment", EDGE)
    misspelt = yaml.safe_load(yaml.safe_dump(deployment))
    container(misspelt, "edge")["readinesProbe"] = container(misspelt, "edge").pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, version, strict=True)
    wrong_type = yaml.safe_load(yaml.safe_dump(deployment))
    pod_spec(wrong_type)["terminationGracePeriodSeconds"] = "60"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, version, strict=True)


# --- secrets ----------------------------------------------------------------------------------------------


def test_no_secret_is_shipped() -> None:
    assert [item["metadata"]["name"] for item in every_object() if item["kind"] == "Secret"] == []


def test_the_guide_creates_exactly_the_secrets_the_pods_read(base: list[dict[str, Any]]) -> None:
    read: dict[str, set[str]] = {}
    for deployment in (item for item in base if item["kind"] == "Deployment"):
        for item in all_containers(deployment):
            for variable, secret, key in secret_refs(item):
                assert variable == key, f"{item['name']}: {variable} reads the key {key}: name keys after variables"
                read.setdefault(secret, set()).add(key)
    assert read == documented_secrets()
    assert set(read) == set(SECRET_VALUES)


# --- the edge ---------------------------------------------------------------------------------------------


def test_the_edge_runs_the_image_as_its_user(base: list[dict[str, Any]]) -> None:
    uid, gid = dockerfile_user()
    for name, command in ((EDGE, ["python", "-m", "edge"]), (ACTIONS, ["python", "-m", "actions"])):
        deployment = the(base, "Deployment", name)
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (uid, gid)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        # Service links would set e.g. EDGE_PORT=tcp://... for a Service named "edge": not a port number.
        assert spec["enableServiceLinks"] is False
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert container(deployment, spec["containers"][0]["name"])["command"] == command
        for item in all_containers(deployment):
            assert item["image"].partition(":")[0] == IMAGE
            context = item["securityContext"]
            assert context["runAsNonRoot"] is True
            assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            tmp = [mount for mount in item["volumeMounts"] if mount["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], f"{item['name']}: /tmp is an emptyDir"
            assert {"cpu", "memory"} <= set(item["resources"]["requests"]) & set(item["resources"]["limits"])


def test_the_edge_environment_is_real_settings_and_passes_check_config(edge_environment: dict[str, str]) -> None:
    fields = {f"EDGE_{name.upper()}" for name in EdgeSettings.model_fields} | {"EDGE_CONFIG"}
    assert set(edge_environment) <= fields, f"not EdgeSettings fields: {sorted(set(edge_environment) - fields)}"
    out, err = io.StringIO(), io.StringIO()
    assert check_config.main([], out=out, err=err) == check_config.EXIT_OK, err.getvalue()
    assert err.getvalue() == ""  # not even a warning (an EDGE_* variable that is no setting is one)
    settings = EdgeSettings()  # what `python -m edge` reads
    plans = yaml.safe_load(Path(edge_environment["EDGE_CONFIG"]).read_text(encoding="utf-8"))["plans"]
    assert set(settings.plans) == set(plans) and len(plans) >= 2
    assert settings.host == "0.0.0.0"  # the kubelet and the Service reach the pod's address


def test_the_config_file_is_mounted_where_edge_config_names_it(base: list[dict[str, Any]]) -> None:
    deployment = the(base, "Deployment", EDGE)
    edge = container(deployment, "edge")
    path = PurePosixPath(environment(base, edge)["EDGE_CONFIG"])
    volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
    mounts = [mount for mount in edge["volumeMounts"] if PurePosixPath(mount["mountPath"]) == path.parent]
    assert len(mounts) == 1 and mounts[0]["readOnly"] is True
    config_map = the(base, "ConfigMap", volumes[mounts[0]["name"]]["configMap"]["name"])
    assert path.name in config_map["data"]


def test_the_probes_ask_the_edge_on_its_port(base: list[dict[str, Any]], edge_environment: dict[str, str]) -> None:
    edge = container(the(base, "Deployment", EDGE), "edge")
    settings = EdgeSettings()
    assert edge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert edge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    scheme = "HTTPS" if settings.tls_cert_file is not None else "HTTP"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = edge[probe]["httpGet"]
        assert container_port(edge, get["port"]) == settings.port, f"{probe} is not on EDGE_PORT"
        assert get.get("scheme", "HTTP") == scheme, f"{probe}: the edge serves {scheme} on EDGE_PORT"
    assert container_port(edge, "http") == settings.port


def test_the_probed_paths_answer_200_from_a_running_edge(base: list[dict[str, Any]]) -> None:
    """The kubelet's requests, sent to the edge under its own server in front of a healthy Hasura."""
    edge = container(the(base, "Deployment", EDGE), "edge")
    paths = {edge[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    double = HasuraDouble(admin_secret=DOUBLE_ADMIN_SECRET)
    hasura = start_server(double.app)
    try:
        server = start_edge_server(edge_settings(hasura.url))
        try:
            for path in sorted(paths):
                assert httpx.get(f"{server.url}{path}", timeout=5).status_code == 200, path
        finally:
            server.stop()
    finally:
        hasura.stop()


def test_metrics_are_served_on_the_declared_port(base: list[dict[str, Any]]) -> None:
    deployment = the(base, "Deployment", EDGE)
    edge = container(deployment, "edge")
    env = environment(base, edge)
    assert container_port(edge, "metrics") == int(env["EDGE_METRICS_PORT"]) != int(env["EDGE_PORT"])
    assert env["EDGE_METRICS_HOST"] == "0.0.0.0"  # scraped at the pod's address
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == env["EDGE_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_actions_service_is_scraped_on_its_port(base: list[dict[str, Any]]) -> None:
    from actions.metrics import METRICS_PATH

    deployment = the(base, "Deployment", ACTIONS)
    actions = container(deployment, "actions")
    env = environment(base, actions)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == env["ACTIONS_PORT"] == str(container_port(actions, "http"))
    assert annotations["prometheus.io/path"] == METRICS_PATH


def test_the_grace_period_outlasts_the_prestop_sleep_and_the_edges_drain(
    base: list[dict[str, Any]], edge_environment: dict[str, str]
) -> None:
    deployment = the(base, "Deployment", EDGE)
    edge = container(deployment, "edge")
    settings = EdgeSettings()
    # One process per pod: no supervisor, whose workers get extra seconds to exit (docs/operations.md).
    assert settings.workers == 1
    # After SIGTERM: requests in flight get the server's graceful shutdown, then the lifespan drains what is
    # still on its way to Hasura (edge/http_server/server.py, edge/app.py).
    drain = server_config(settings).graceful_shutdown + settings.upstream_drain_seconds
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop_seconds(edge) + drain
    # The endpoint's removal needs some seconds to reach the nodes and the Ingress.
    assert pre_stop_seconds(edge) >= 5


def test_the_edges_tables_are_upgraded_before_the_edge_serves(
    base: list[dict[str, Any]], isolated_environment: pytest.MonkeyPatch
) -> None:
    deployment = the(base, "Deployment", EDGE)
    (upgrade,) = pod_spec(deployment)["initContainers"]
    assert upgrade["command"] == ["python", "-m", "edge", "db", "upgrade"]
    assert upgrade["image"] == container(deployment, "edge")["image"]
    # `db upgrade` reads the database URL only, from the same Secret key as the edge.
    assert secret_refs(upgrade) == [
        ref for ref in secret_refs(container(deployment, "edge")) if ref[0] == "EDGE_DATABASE_URL"
    ]
    for name, value in environment(base, upgrade).items():
        isolated_environment.setenv(name, value)
    assert DatabaseSettings().database_url is not None


def test_scaling_out_shares_limits_through_redis(base: list[dict[str, Any]]) -> None:
    deployment = the(base, "Deployment", EDGE)
    autoscaler = the(base, "HorizontalPodAutoscaler", EDGE)
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", EDGE)
    # The autoscaler owns the count: a replicas field would reset it on every apply.
    assert "replicas" not in deployment["spec"]
    # CPU utilisation is measured against the request.
    assert [metric["resource"]["name"] for metric in autoscaler["spec"]["metrics"]] == ["cpu"]
    assert "cpu" in container(deployment, "edge")["resources"]["requests"]
    assert autoscaler["spec"]["minReplicas"] >= 2
    # Several replicas: limits, quotas and budgets are shared only through Redis (docs/usage-plans.md).
    assert "EDGE_REDIS_URL" in environment(base, container(deployment, "edge"))


def test_services_and_the_disruption_budget_select_one_deployment_each(base: list[dict[str, Any]]) -> None:
    deployments = {item["metadata"]["name"]: item for item in base if item["kind"] == "Deployment"}
    assert set(deployments) == {EDGE, ACTIONS}

    def selected(selector: dict[str, str]) -> list[str]:
        return [
            name
            for name, item in deployments.items()
            if selector.items() <= item["spec"]["template"]["metadata"]["labels"].items()
        ]

    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert selected(deployment["spec"]["selector"]["matchLabels"]) == [name]
        service = the(base, "Service", name)
        assert selected(service["spec"]["selector"]) == [name]
        for port in service["spec"]["ports"]:
            container_port(pod_spec(deployment)["containers"][0], port["targetPort"])
    budget = the(base, "PodDisruptionBudget", EDGE)
    assert budget["spec"]["selector"]["matchLabels"] == deployments[EDGE]["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["maxUnavailable"] < the(base, "HorizontalPodAutoscaler", EDGE)["spec"]["minReplicas"]


def test_the_ingress_routes_to_the_edges_http_port_with_tls(base: list[dict[str, Any]]) -> None:
    ingress = the(objects_in(KUBERNETES / "ingress"), "Ingress", EDGE)
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls["hosts"]
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = the(base, "Service", backend["name"])
            assert backend["name"] == EDGE  # never the actions service: only Hasura calls it
            assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
            assert backend["port"]["name"] != "metrics"


# --- the actions service ----------------------------------------------------------------------------------


def test_the_actions_environment_is_real_settings(
    base: list[dict[str, Any]], isolated_environment: pytest.MonkeyPatch
) -> None:
    deployment = the(base, "Deployment", ACTIONS)
    actions = container(deployment, "actions")
    env = environment(base, actions)
    fields = {f"ACTIONS_{name.upper()}" for name in ActionsSettings.model_fields}
    assert set(env) <= fields, f"not ActionsSettings fields: {sorted(set(env) - fields)}"
    for name, value in env.items():
        isolated_environment.setenv(name, value)
    settings = ActionsSettings()  # validates like `python -m actions`
    assert settings.host == "0.0.0.0"
    routes = create_actions_app(settings).openapi()["paths"]  # the service's own description, /openapi.json
    assert actions["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert actions["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe"):
        get = actions[probe]["httpGet"]
        assert "get" in routes[get["path"]], f"{probe}: the actions service does not serve GET {get['path']}"
        assert container_port(actions, get["port"]) == settings.port
        assert get.get("scheme", "HTTP") == "HTTP"
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop_seconds(actions)


# --- the guide --------------------------------------------------------------------------------------------


def test_the_guide_is_linked_from_the_readme_and_the_operations_doc() -> None:
    readme_docs_row = [
        line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.startswith("| `docs/`")
    ]
    assert len(readme_docs_row) == 1 and "kubernetes.md" in readme_docs_row[0]
    assert "(kubernetes.md)" in (REPO_ROOT / "docs" / "operations.md").read_text()
