"""The container stack, checked without a container engine.

`docker-compose.yml` is validated against the Compose Specification schema shipped in
`infra/compose/compose-spec.json` (draft-07), and then against what the repository holds: the one
Dockerfile, every file it copies, every Python module a container runs, every host path mounted,
every variable a user must set. The rules of the stack (see DESIGN.md) are checked too: one image
for every Python component, one migrate, web, worker and beat per service (roles of that image,
`buendnis <component> <role>`); what the components read at run time (the realm file) in the
image; the web front end signing in through Keycloak's browser-facing URL; nothing published
beyond loopback; the local identity provider never in the stack; an image that runs as an
unprivileged user; access logs without query strings. `make test-compose`
(tests/compose/test_compose_stack.py) starts the stack itself.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shlex
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

from buendnis_common import entrypoint

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "infra" / "compose" / "compose-spec.json"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
REALM_FILE = ROOT / "infra" / "keycloak" / "buendnis-realm.json"
REALM_TARGET = "/opt/keycloak/data/import/buendnis-realm.json"
INIT_SCRIPT = ROOT / "infra" / "postgres" / "init-databases.sh"
PROCFILE = ROOT / "Procfile"
WEB_CONFIG = ROOT / "web" / "web" / "config.py"

SERVICES = ("intake", "referrals", "notifications")
# Deployable → its folder in the repository (and under /app in its image).
DEPLOYABLE_DIRS = {
    "intake": "services/intake",
    "referrals": "services/referrals",
    "notifications": "services/notifications",
    "gateway": "gateway",
    "web": "web",
}
DOCKERFILE = ROOT / "Dockerfile"
GUNICORN_CONFIG = ROOT / "gunicorn.conf.py"
IMAGE = "buendnis/buendnis:${BUENDNIS_TAG:-dev}"
# Top-level Python package → where its source lives.
PACKAGE_DIRS = {
    "buendnis_common": "common/buendnis_common",
    "intake": "services/intake/intake",
    "referrals": "services/referrals/referrals",
    "notifications": "services/notifications/notifications",
    "gateway": "gateway/gateway",
    "web": "web/web",
}
WEB_SERVICES = (*SERVICES, "gateway", "web")
# The port a deployable's gunicorn listens on inside its container.
CONTAINER_PORTS = {name: 8000 for name in (*SERVICES, "gateway", "web")}
LOOPBACK = "127.0.0.1"
ISSUER = "http://localhost:8080/realms/buendnis"
# Where the browser reaches the web front end and Keycloak (published on loopback).
WEB_URL = "http://localhost:8090"
KEYCLOAK_PUBLIC_URL = "http://localhost:8080"
# Access logs name the path, never the query string: a search can carry a person's name.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'


def role_command(component: str, role: str) -> list[str]:
    return ["buendnis", component, role]


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt} …
# `$${…}` is Compose's escape for a literal `${…}` and is not interpolated.
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
BARE_VARIABLE = re.compile(r"(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


# --------------------------------------------------------------------------- loading


def _load_compose() -> dict:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


def _compose_or_empty() -> dict:
    """For parametrisation at collection time; a broken file fails in the tests below."""
    try:
        return _load_compose()
    except Exception:  # noqa: BLE001 - reported by test_compose_file_is_valid_yaml
        return {}


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _strings(node, path=()):
    """Every string value in the loaded YAML, with its path (keys are not interpolated)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, str(index)))
    elif isinstance(node, str):
        yield path, node


def _interpolations(compose: dict) -> list[tuple[str, str | None, str, str]]:
    """(name, operator, argument, where) for every ${…} in a value of the compose file."""
    found = []
    for path, text in _strings(compose):
        for match in INTERPOLATION.finditer(text):
            found.append((match["name"], match["op"], match["arg"] or "", "/".join(path)))
    return found


def _required_variables(compose: dict) -> dict[str, str]:
    """Variables used without a default: ${VAR}, ${VAR:?…}, ${VAR?…} → where first seen."""
    required: dict[str, str] = {}
    for name, op, _arg, where in _interpolations(compose):
        if op in (None, ":?", "?"):
            required.setdefault(name, where)
    return required


def _env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(set variables, variables documented in comments as `# NAME=value`)."""
    assigned: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", stripped)
        if not match:
            continue
        target = commented if match[1] else assigned
        target[match[2]] = match[3]
    return assigned, commented


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if not full:
            continue
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return instructions


def _words(arguments: str) -> list[str]:
    """Arguments of an instruction, JSON (exec) form or shell words."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        assert isinstance(value, list), arguments
        return [str(item) for item in value]
    return shlex.split(arguments)


def _dockerfile_cmd(dockerfile: str) -> list[str]:
    cmds = [args for op, args in _dockerfile_instructions(ROOT / dockerfile) if op == "CMD"]
    assert cmds, f"{dockerfile} has no CMD"
    assert cmds[-1].startswith("["), f"{dockerfile}: CMD must be in exec (JSON) form"
    return _words(cmds[-1])


def _command(spec: dict) -> list[str]:
    """The command a compose service runs: its own, or its Dockerfile's CMD; a role of the one
    image (`buendnis <component> <role>`) as the entry point runs it."""
    command = spec.get("command")
    if command is None:
        build = spec.get("build")
        assert isinstance(build, dict), "a service without a command must be built here"
        command = _dockerfile_cmd(build["dockerfile"])
    if isinstance(command, str):
        command = shlex.split(command)
    command = [str(part) for part in command]
    if command[:1] == ["buendnis"] and len(command) >= 3:
        return entrypoint.command(command[1], command[2], command[3:])
    return command


def _modules_in(command: list[str]) -> list[tuple[str, str]]:
    """(module, kind) for every Python module a command names; kind ∈ {attr, main}."""
    modules: list[tuple[str, str]] = []
    program = Path(command[0]).name if command else ""
    if program == "gunicorn":
        for word in command[1:]:
            match = re.fullmatch(r"([A-Za-z_][\w.]*):\w+(\(.*\))?", word)
            if match:
                modules.append((match[1], "attr"))
    elif program == "celery":
        for flag, value in zip(command, command[1:], strict=False):
            if flag in ("-A", "--app"):
                modules.append((value.split(":")[0], "attr"))
    elif program.startswith("python") or program == Path(sys.executable).name:
        for flag, value in zip(command, command[1:], strict=False):
            if flag == "-m":
                modules.append((value, "main"))
    return modules


def _module_files(module: str, kind: str) -> list[Path]:
    top, *rest = module.split(".")
    assert top in PACKAGE_DIRS, f"{module}: package {top!r} is not one of {sorted(PACKAGE_DIRS)}"
    base = ROOT / PACKAGE_DIRS[top]
    inner = base.joinpath(*rest)
    candidates = [inner / "__init__.py"] if not rest else [inner.with_suffix(".py")]
    if rest:
        candidates.append(inner / ("__main__.py" if kind == "main" else "__init__.py"))
    return candidates


def _all_modules() -> list[tuple[str, str, str]]:
    data = _compose_or_empty()
    seen: dict[str, tuple[str, str, str]] = {}
    for name, spec in (data.get("services") or {}).items():
        try:
            command = _command(spec)
        except Exception:  # noqa: BLE001 - reported by the Dockerfile tests
            continue
        for module, kind in _modules_in(command):
            seen.setdefault(module, (module, kind, name))
    return sorted(seen.values())


def _environment(spec: dict) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: ("" if value is None else str(value)) for key, value in env.items()}


def _depends_on(spec: dict) -> dict[str, dict]:
    deps = spec.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


# --------------------------------------------------------------------------- the schema


def test_shipped_schema_is_the_compose_specification(schema: dict) -> None:
    assert schema["title"] == "Compose Specification"
    assert schema["$schema"] == "https://json-schema.org/draft-07/schema"
    Draft7Validator.check_schema(schema)
    service_keys = schema["definitions"]["service"]["properties"]
    # Features this stack relies on are in the shipped version of the schema.
    assert "service_completed_successfully" in json.dumps(service_keys["depends_on"])
    assert "start_period" in schema["definitions"]["healthcheck"]["properties"]


def test_compose_file_is_valid_yaml() -> None:
    data = _load_compose()
    assert set(data) >= {"services"}, sorted(data)


def test_compose_file_validates_against_the_schema(compose: dict, schema: dict) -> None:
    validator = Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.absolute_path))
    report = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in errors
    ]
    assert not report, "docker-compose.yml violates the Compose Specification:\n" + "\n".join(
        report
    )


def test_schema_check_catches_a_broken_file(compose: dict, schema: dict) -> None:
    """The validation above is not vacuous: the same check rejects known mistakes."""
    broken = copy.deepcopy(compose)
    gateway = broken["services"]["gateway"]
    gateway["restart_policy"] = "always"  # not a Compose key (it is deploy.restart_policy)
    gateway["depends_on"] = {"intake": {"condition": "service_ready"}}  # no such condition
    gateway["restart"] = False  # `restart: no` unquoted is a YAML boolean, not a string
    paths = {
        "/".join(str(part) for part in error.absolute_path)
        for error in Draft7Validator(schema).iter_errors(broken)
    }
    assert "services/gateway" in paths  # the unknown key
    assert "services/gateway/depends_on" in paths
    assert "services/gateway/restart" in paths


# --------------------------------------------------------------------------- files in the tree


def test_every_build_dockerfile_exists(services: dict) -> None:
    built = {name: spec["build"] for name, spec in services.items() if "build" in spec}
    assert built, "no service is built from this repository"
    for name, build in built.items():
        assert isinstance(build, dict), f"{name}: use build.context and build.dockerfile"
        context = ROOT / build.get("context", ".")
        assert context.resolve() == ROOT, f"{name}: the build context must be the repo root"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {build['dockerfile']} does not exist"


def test_every_python_component_is_a_role_of_the_one_image(services: dict) -> None:
    """One image (built once, from the root Dockerfile) for every Python component; the
    infrastructure's images come from elsewhere."""
    built = {name for name, spec in services.items() if "build" in spec}
    expected = {
        *(f"{svc}{suffix}" for svc in (*SERVICES, "gateway")
          for suffix in ("", "-migrate", "-worker", "-beat")),
        "web",
    }
    assert built == expected, sorted(built ^ expected)
    for name in built:
        spec = services[name]
        assert spec["image"] == IMAGE, name
        assert spec["build"] == {"context": ".", "dockerfile": "Dockerfile",
                                 "target": "runtime"}, name
        command = spec["command"]
        assert command[0] == "buendnis" and len(command) == 3, (name, command)
        component, role = command[1:]
        expected_name = component if role == "web" else f"{component}-{role}"
        assert name == expected_name, (name, command)
        assert role in entrypoint.ROLES[component], (name, command)
    for old in DEPLOYABLE_DIRS.values():
        assert not (ROOT / old / "Dockerfile").exists(), f"{old}/Dockerfile: one image only"


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for op, args in _dockerfile_instructions(DOCKERFILE):
        if op == "FROM":
            words = args.split()
            current = []
            stages[words[2] if len(words) == 3 and words[1].upper() == "AS" else ""] = current
        current.append((op, args))
    return stages


def test_dockerfile_copy_sources_exist() -> None:
    copies = [_words(args) for op, args in _dockerfile_instructions(DOCKERFILE)
              if op in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing"
    for words in copies:
        if any(w.startswith("--from") for w in words):
            continue  # from an earlier stage
        paths = [word for word in words if not word.startswith("--")]
        assert len(paths) >= 2, f"COPY needs a source and a destination: {words}"
        for source in paths[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile: COPY {source} is missing"
            for pattern in _dockerignore():
                assert not _ignored(source, pattern), f"COPY {source}: .dockerignore drops it"


def _dockerignore() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("!")]


def _ignored(source: str, pattern: str) -> bool:
    source = source.rstrip("/")
    pattern = pattern.removeprefix("**/").rstrip("/")
    return source == pattern or source.startswith(pattern + "/")


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    stages = _stages()
    assert list(stages)[0] == "build" and list(stages)[-1] == "runtime", list(stages)
    build = " ".join(args for op, args in stages["build"] if op == "RUN")
    assert "pip wheel" in build and "--wheel-dir /wheels" in build, "wheels built once"
    assert "--no-index --find-links /wheels" in build, "installed from those wheels only"
    runtime = [(op, args) for name in ("base", "runtime") for op, args in stages[name]]
    users = [args.strip() for op, args in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0", ""), users
    runs = " ".join(args for op, args in runtime if op == "RUN")
    assert re.search(rf"useradd\b[^&;]*\b{re.escape(users[-1])}\b", runs), "user never created"
    assert not any("pip wheel" in args for op, args in runtime), "no build tools at run time"
    # The production stage gets nothing of the CI stand-ins.
    assert all("infra/idp" not in args and "infra/dev" not in args for _, args in runtime)


def test_the_image_holds_what_the_components_read_at_run_time() -> None:
    """The organisation directory is read from the realm file at run time (GET
    /api/v1/organizations): it must be in the image, where REALM_FILE says."""
    base = _stages()["base"]
    copies = {_words(args)[-1]: _words(args)[-2] for op, args in base if op == "COPY"}
    env = " ".join(args for op, args in base if op == "ENV")
    assert copies.get("/app/infra/keycloak/buendnis-realm.json") == (
        "infra/keycloak/buendnis-realm.json")
    assert "REALM_FILE=/app/infra/keycloak/buendnis-realm.json" in env
    assert copies.get("/app/gunicorn.conf.py") == "gunicorn.conf.py"
    assert "GUNICORN_CONFIG=/app/gunicorn.conf.py" in env
    for folder in DEPLOYABLE_DIRS.values():
        top = folder.split("/")[0]
        assert any(dest.rstrip("/") in (f"/app/{folder}", f"/app/{top}") for dest in copies), (
            folder)
    checks = [args for op, args in base if op == "HEALTHCHECK"]
    assert checks and _words(checks[-1].partition("CMD")[2].strip()) == [
        "buendnis", "healthcheck"]


def test_commands_name_the_modules_of_the_fixed_layout() -> None:
    modules = {module for module, _kind, _service in _all_modules()}
    expected = (
        {"buendnis_common.migrate"}
        | {f"{svc}.{part}" for svc in SERVICES for part in ("app", "worker")}
        | {"gateway.app", "gateway.worker"}
        | {"web.app"}
    )
    assert modules == expected


@pytest.mark.parametrize(
    ("module", "kind", "service"), _all_modules(), ids=[m for m, _, _ in _all_modules()]
)
def test_python_module_in_a_command_exists(module: str, kind: str, service: str) -> None:
    candidates = _module_files(module, kind)
    present = [path for path in candidates if path.is_file()]
    shown = ", ".join(str(path.relative_to(ROOT)) for path in candidates)
    assert present, f"{service} runs {module}, but none of these exists: {shown}"
    source = present[0].read_text(encoding="utf-8")
    if module.endswith(".app"):
        assert re.search(r"^def create_app\(", source, re.M), f"{present[0]}: no create_app()"
    if module.endswith(".worker"):
        assert re.search(r"^celery\b\s*(:[^=\n]*)?=", source, re.M), (
            f"{present[0]}: no module-level Celery app named `celery`"
        )


def test_every_mounted_host_path_exists(compose: dict, services: dict) -> None:
    named = set(compose.get("volumes") or {})
    checked = 0
    for name, spec in services.items():
        for volume in spec.get("volumes") or []:
            if isinstance(volume, str):
                source = volume.split(":")[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            else:
                kind, source = volume["type"], volume.get("source", "")
            if kind == "bind":
                assert not source.startswith(("/", "~")), f"{name}: absolute host path {source}"
                assert (ROOT / source).exists(), f"{name}: mounted host path {source} is missing"
                checked += 1
            elif kind == "volume":
                assert source in named, f"{name}: volume {source!r} is not declared"
    assert checked >= 2  # the realm file and the database init script


def test_postgres_init_script_is_executable_and_creates_every_database(services: dict) -> None:
    assert INIT_SCRIPT.is_file(), f"{INIT_SCRIPT} is missing"
    # The postgres entrypoint *sources* non-executable scripts into its own shell.
    assert os.access(INIT_SCRIPT, os.X_OK), f"{INIT_SCRIPT} must be executable"
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash"), "the init script needs a bash shebang"
    for svc in SERVICES:
        assert svc in text, f"init-databases.sh does not create {svc}"
    postgres = services["postgres"]
    env = _environment(postgres)
    for svc in SERVICES:
        assert f"{svc.upper()}_DB_PASSWORD" in env, f"postgres needs {svc.upper()}_DB_PASSWORD"
    mounts = [v for v in postgres["volumes"] if isinstance(v, dict) and v["type"] == "bind"]
    assert [(m["source"], m["target"].rsplit("/", 1)[0]) for m in mounts] == [
        ("./infra/postgres/init-databases.sh", "/docker-entrypoint-initdb.d")
    ]


def test_dockerignore_keeps_local_state_and_secrets_out(services: dict) -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", "var/", ".git", "**/__pycache__", "tests", "bench", ".env"):
        assert needed in patterns, f".dockerignore lacks {needed}"
    for folder in ("common", *DEPLOYABLE_DIRS.values()):
        top = folder.split("/")[0]
        assert top not in patterns and f"{top}/" not in patterns, f"{folder} would be ignored"


# --------------------------------------------------------------------------- variables


def test_no_bare_dollar_variables(compose: dict) -> None:
    """$VAR works too, but the file uses ${VAR} only, so the checks below see every variable."""
    bare = [
        ("/".join(path), match[0])
        for path, text in _strings(compose)
        for match in BARE_VARIABLE.finditer(text.replace("$$", ""))
    ]
    assert not bare, bare


def test_every_required_variable_is_documented_in_env_example(compose: dict) -> None:
    assigned, _commented = _env_example()
    required = _required_variables(compose)
    assert required, "expected secrets that must come from the environment"
    missing = {name: where for name, where in required.items() if name not in assigned}
    assert not missing, f"not set in .env.example: {missing}"
    empty = [name for name in required if not assigned[name].strip()]
    assert not empty, f"empty in .env.example: {empty}"


def test_env_example_documents_only_variables_the_stack_uses(compose: dict) -> None:
    assigned, commented = _env_example()
    used = {name for name, _op, _arg, _where in _interpolations(compose)}
    assert set(assigned) - used == set(), "set in .env.example but unused"
    assert set(commented) - used == set(), "documented in .env.example but unused"
    defaults = {name: arg for name, op, arg, _ in _interpolations(compose) if op in (":-", "-")}
    for name, value in commented.items():
        assert defaults.get(name) == value, f".env.example shows {name}={value}, compose default"


def test_secrets_have_no_default(compose: dict) -> None:
    """Passwords of exposed things and signing keys must be set; demo defaults only for DBs."""
    required = _required_variables(compose)
    for name, _op, _arg, where in _interpolations(compose):
        if re.search(r"(SECRET|_KEY|ADMIN_PASSWORD|REDIS_PASSWORD)$", name):
            assert name in required, f"{name} has a default at {where}"


def test_a_variable_has_the_same_default_everywhere(compose: dict) -> None:
    defaults: dict[str, set[str]] = {}
    for name, op, arg, _where in _interpolations(compose):
        if op in (":-", "-"):
            defaults.setdefault(name, set()).add(arg)
    drift = {name: values for name, values in defaults.items() if len(values) > 1}
    assert not drift, drift


# --------------------------------------------------------------------------- Keycloak


def test_keycloak_imports_the_realm_file(services: dict) -> None:
    keycloak = services["keycloak"]
    assert re.fullmatch(r"quay\.io/keycloak/keycloak:26\.\d+\.\d+", keycloak["image"]), (
        f"pin a Keycloak 26 release: {keycloak['image']}"
    )
    command = _command(keycloak)
    assert command[0] == "start-dev" and "--import-realm" in command, command
    mounts = [v for v in keycloak.get("volumes") or [] if isinstance(v, dict)]
    realm = [m for m in mounts if m.get("target") == REALM_TARGET]
    assert len(realm) == 1, f"the realm must be mounted at {REALM_TARGET}"
    assert realm[0]["type"] == "bind" and realm[0].get("read_only") is True
    assert (ROOT / realm[0]["source"]).resolve() == REALM_FILE
    assert REALM_FILE.is_file(), f"{REALM_FILE.relative_to(ROOT)} is missing"


def test_keycloak_issuer_health_and_admin(services: dict) -> None:
    keycloak = services["keycloak"]
    env = _environment(keycloak)
    origin = urlsplit(ISSUER)
    assert env["KC_HOSTNAME"] == f"{origin.scheme}://{origin.netloc}"
    assert env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert env["KC_HEALTH_ENABLED"] == "true"
    assert "KC_BOOTSTRAP_ADMIN_USERNAME" in env and "KC_BOOTSTRAP_ADMIN_PASSWORD" in env
    assert "KEYCLOAK_ADMIN" not in env, "Keycloak 26 uses KC_BOOTSTRAP_ADMIN_*"
    # The issuer's port is what the host publishes, on loopback.
    assert f"{LOOPBACK}:{origin.port}:8080" in keycloak["ports"]
    test = " ".join(keycloak["healthcheck"]["test"])
    assert "/dev/tcp/localhost/9000" in test and "/health/ready" in test, test


def test_every_realm_placeholder_reaches_keycloak(services: dict) -> None:
    """Keycloak resolves ${NAME} / ${NAME:default} in an imported realm from its environment.

    Upper-case names only: lower- and camel-case ones (${client_id}, ${emailScopeConsentText})
    are Keycloak's own message keys, resolved from its theme bundles, not from the environment.
    """
    assert REALM_FILE.is_file(), f"{REALM_FILE.relative_to(ROOT)} is missing"
    text = REALM_FILE.read_text(encoding="utf-8")
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::[^}]*)?\}", text))
    assert placeholders >= {f"{svc.upper()}_CLIENT_SECRET" for svc in SERVICES}, placeholders
    env = _environment(services["keycloak"])
    missing = sorted(placeholders - set(env))
    assert not missing, f"the realm file reads {missing}, not passed to keycloak"


def test_services_and_keycloak_share_the_client_secrets(services: dict) -> None:
    keycloak = _environment(services["keycloak"])
    for svc in SERVICES:
        variable = f"{svc.upper()}_CLIENT_SECRET"
        env = _environment(services[svc])
        assert env[variable] == keycloak[variable], variable
        assert INTERPOLATION.fullmatch(env[variable]), f"{variable} must come from the env"
        assert env[f"{svc.upper()}_CLIENT_ID"] == f"{svc}-service"


# --------------------------------------------------------------------------- the stack


@pytest.mark.parametrize("svc", SERVICES)
def test_service_has_migrate_web_worker_and_beat(services: dict, svc: str) -> None:
    roles = {
        "migrate": f"{svc}-migrate",
        "web": svc,
        "worker": f"{svc}-worker",
        "beat": f"{svc}-beat",
    }
    for role, name in roles.items():
        assert name in services, f"{svc} has no {role} service ({name})"
    specs = {role: services[name] for role, name in roles.items()}
    # One image, run four ways, with one environment.
    assert len({spec["image"] for spec in specs.values()}) == 1
    assert len({json.dumps(_environment(spec), sort_keys=True) for spec in specs.values()}) == 1
    for role, spec in specs.items():
        assert spec["command"] == role_command(svc, role), (role, spec["command"])
    for role in ("web", "worker", "beat"):
        dependency = _depends_on(specs[role]).get(roles["migrate"])
        assert dependency == {"condition": "service_completed_successfully"}, (
            f"{roles[role]} must wait for {roles['migrate']} to complete: {dependency}"
        )
    assert _depends_on(specs["migrate"]).get("postgres") == {"condition": "service_healthy"}


def test_exactly_one_beat_per_service(services: dict) -> None:
    beats: dict[str, list[str]] = {}
    for name, spec in services.items():
        command = _command(spec) if spec.get("command") else []
        if "celery" in command[:1] and "beat" in command:
            app = command[command.index("-A") + 1]
            beats.setdefault(app, []).append(name)
    assert beats == {f"{svc}.worker": [f"{svc}-beat"] for svc in (*SERVICES, "gateway")}


@pytest.mark.parametrize("svc", SERVICES)
def test_service_environment(services: dict, svc: str) -> None:
    env = _environment(services[svc])
    prefix = svc.upper()
    assert env["REDIS_URL"] == BROKER_URL
    assert env["OIDC_ISSUER"] == ISSUER
    base = "http://keycloak:8080/realms/buendnis/protocol/openid-connect"
    assert env["OIDC_JWKS_URL"] == f"{base}/certs"
    assert env["OIDC_TOKEN_URL"] == f"{base}/token"
    assert env["OIDC_AUDIENCE"] == "buendnis-api"
    for other in SERVICES:
        assert env[f"{other.upper()}_URL"] == f"http://{other}:8000"
        if other != svc:  # a service never gets another service's database
            assert f"{other.upper()}_DATABASE_URL" not in env
    url = urlsplit(env[f"{prefix}_DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert (url.username, url.hostname, url.port, url.path) == (svc, "postgres", 5432, f"/{svc}")
    assert INTERPOLATION.fullmatch(url.password or ""), "the password comes from the env"
    assert "SECRET_KEY" not in env, "nothing in the services reads a SECRET_KEY"
    if svc == "notifications":
        assert (env["SMTP_HOST"], env["SMTP_PORT"]) == ("mailpit", "1025")
        assert env["REMINDER_OFFSETS"] == "${REMINDER_OFFSETS:-24h,2h}"


def test_gateway_environment_and_dependencies(services: dict) -> None:
    gateway = services["gateway"]
    env = _environment(gateway)
    assert env["OIDC_ISSUER"] == ISSUER
    for svc in SERVICES:
        assert env[f"{svc.upper()}_URL"] == f"http://{svc}:8000"
        assert f"{svc.upper()}_DATABASE_URL" not in env
        assert _depends_on(gateway)[svc] == {"condition": "service_healthy"}
    assert "SECRET_KEY" not in env, "nothing in the gateway reads a SECRET_KEY"


BROKER_URL = "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD (see .env.example)}@redis:6379/0"


def _required(value: str) -> bool:
    match = INTERPOLATION.fullmatch(value or "")
    return bool(match) and match["op"] == ":?"


def test_the_broker_requires_a_password_and_every_client_sends_it(services: dict) -> None:
    broker = services["redis"]
    command = broker["command"]
    password = command[command.index("--requirepass") + 1]
    assert _required(password), "the broker's password comes from the env, no default"
    assert _environment(broker)["REDISCLI_AUTH"] == password  # the healthcheck's redis-cli
    assert "PONG" in " ".join(broker["healthcheck"]["test"]), "NOAUTH must not count as healthy"
    clients = {name: _environment(spec)["REDIS_URL"] for name, spec in services.items()
               if "REDIS_URL" in _environment(spec)}
    assert clients and set(clients.values()) == {BROKER_URL}, clients


def test_events_are_signed_and_the_audit_trail_sealed_by_a_restricted_role(
        services: dict) -> None:
    for name, spec in services.items():
        env = _environment(spec)
        if "REDIS_URL" in env:  # every process on the broker signs and checks events
            assert _required(env.get("EVENT_SIGNING_KEY", "")), name
    for name in ("gateway", "gateway-worker", "gateway-beat", "gateway-migrate"):
        env = _environment(services[name])
        assert _required(env["AUDIT_CHAIN_KEY"]), name
        assert urlsplit(env["GATEWAY_DATABASE_URL"]).username == "gateway_app", name
        assert env["AUDIT_CHECKPOINT_DIR"] == "/var/lib/buendnis/audit-checkpoints"
        if name != "gateway-migrate":  # the owner's password only where migrations run
            assert "GATEWAY_MIGRATE_DATABASE_URL" not in env, name
    owner = urlsplit(_environment(services["gateway-migrate"])["GATEWAY_MIGRATE_DATABASE_URL"])
    assert owner.username == "gateway"
    assert _command(services["gateway-beat"])[:4] == ["celery", "-A", "gateway.worker", "beat"]
    # The worker writes the checkpoints; the gateway can read them for `verify`.
    assert "audit-checkpoints:/var/lib/buendnis/audit-checkpoints" in (
        services["gateway-worker"]["volumes"])
    (mount,) = services["gateway"]["volumes"]
    assert (mount["source"], mount["read_only"]) == ("audit-checkpoints", True)
    assert "GATEWAY_APP_DB_PASSWORD" in _environment(services["postgres"])
    assert "CREATE ROLE gateway_app" in INIT_SCRIPT.read_text(encoding="utf-8")


def test_web_environment_and_dependencies(services: dict) -> None:
    web = services["web"]
    env = _environment(web)
    assert env["GATEWAY_URL"] == "http://gateway:8000"  # the only API the pages call
    # Sessions (tokens never reach a browser) and rate limits: a Redis apart from the broker.
    assert env["WEB_REDIS_URL"] == "redis://web-redis:6379/0"
    assert "REDIS_URL" not in env, "the pages have no business with the broker"
    # Discovery, token and keys over the compose network; the browser goes to the published
    # Keycloak, which is what KC_HOSTNAME pins the frontend URLs (and the issuer) to.
    assert env["OIDC_SERVER_URL"] == "http://keycloak:8080"
    assert env["OIDC_PUBLIC_URL"] == KEYCLOAK_PUBLIC_URL
    assert _environment(services["keycloak"])["KC_HOSTNAME"] == KEYCLOAK_PUBLIC_URL
    assert env["OIDC_REALM"] == "buendnis" and env["WEB_CLIENT_ID"] == "buendnis-web"
    assert env["WEB_URL"] == WEB_URL
    # The key signs the CSRF tokens: required, from the env, never a file in the container.
    secret = INTERPOLATION.fullmatch(env["WEB_SECRET_KEY"])
    assert secret and secret["op"] == ":?", "WEB_SECRET_KEY: from the env, required, no default"
    assert env["WEB_REQUIRE_SECRET_KEY"] == "true"
    for target in ("gateway", "keycloak", "web-redis"):
        assert _depends_on(web)[target] == {"condition": "service_healthy"}, target
    # What the browser reaches is what the host publishes, on loopback.
    web_origin = urlsplit(WEB_URL)
    assert f"{LOOPBACK}:{web_origin.port}:{CONTAINER_PORTS['web']}" in web["ports"]
    assert urlsplit(KEYCLOAK_PUBLIC_URL).port == urlsplit(ISSUER).port


def _redis_options(spec: dict) -> dict[str, str]:
    command = spec["command"]
    assert command[0] == "redis-server", command
    return {name[2:]: value for name, value in zip(command[1::2], command[2::2], strict=True)}


def test_the_broker_never_evicts_and_sessions_live_apart_and_bounded(services: dict) -> None:
    """A flood of sessions can fill only the web front end's Redis, which then drops old
    sessions; the broker's queues are never evicted."""
    broker = _redis_options(services["redis"])
    assert broker["maxmemory-policy"] == "noeviction" and broker["maxmemory"]
    web_redis = _redis_options(services["web-redis"])
    assert web_redis["maxmemory-policy"] in ("allkeys-lru", "volatile-lru")
    assert web_redis["maxmemory"] not in ("", "0"), "bounded"
    users = {name for name, spec in services.items()
             if "redis://web-redis" in " ".join(map(str, _environment(spec).values()))}
    assert users == {"web"}, users
    assert "web-redis" not in _depends_on(services["gateway"])


def test_the_gateway_trusts_forwarded_addresses_from_the_web_front_end_only(
        compose: dict, services: dict) -> None:
    """The per-address limit counts the browser's address behind the web front end, and no
    one else can claim an address: the trusted proxy is the web front end's fixed address."""
    trusted = _environment(services["gateway"])["GATEWAY_TRUSTED_PROXIES"].split(",")
    web_address = services["web"]["networks"]["default"]["ipv4_address"]
    assert trusted == [web_address]
    (subnet,) = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    assert ipaddress.ip_address(web_address) in ipaddress.ip_network(subnet)


def test_web_reads_every_variable_it_is_given(services: dict) -> None:
    """No setting the front end ignores: every variable is one web/web/config.py reads."""
    source = WEB_CONFIG.read_text(encoding="utf-8")
    # redis_url() and is_development() read these two through the shared settings.
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source)) | {"REDIS_URL", "BUENDNIS_ENV"}
    # Every process reads these two through buendnis_common.metrics.
    read |= {"METRICS_PORT", "METRICS_HOST"}
    unread = sorted(set(_environment(services["web"])) - read)
    assert not unread, f"the web front end does not read {unread}"


def test_realm_lets_the_web_front_end_sign_in_and_out() -> None:
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    (client,) = [c for c in realm["clients"] if c["clientId"] == "buendnis-web"]
    assert client["publicClient"] is True and client["standardFlowEnabled"] is True
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert f"{WEB_URL}/*" in client["redirectUris"]
    assert f"{WEB_URL}/*" in client["attributes"]["post.logout.redirect.uris"].split("##")


def test_web_secret_key_in_env_example_is_long_enough() -> None:
    assigned, _commented = _env_example()
    assert len(assigned["WEB_SECRET_KEY"]) >= 32, "web/web/config.py refuses shorter keys"


def test_dependencies_exist_and_healthy_ones_have_healthchecks(services: dict) -> None:
    for name, spec in services.items():
        for target, options in _depends_on(spec).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = options.get("condition")
            if condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert target.endswith("-migrate"), f"{name}: {target} is not a one-shot job"


@pytest.mark.parametrize("name", WEB_SERVICES)
def test_web_services_are_checked_on_healthz(services: dict, name: str) -> None:
    test = services[name]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python", test  # the slim image has no curl
    assert f"http://127.0.0.1:{CONTAINER_PORTS[name]}/healthz" in " ".join(test)


def test_access_logs_leave_out_query_strings() -> None:
    """Every gunicorn, in the image and in `make run`, is started by the entry point with the one
    configuration, whose access log names the path without the query."""
    config: dict = {}
    exec(compile(GUNICORN_CONFIG.read_text(encoding="utf-8"), str(GUNICORN_CONFIG), "exec"),  # noqa: S102
         config)
    assert config["accesslog"] == "-"
    assert config["access_log_format"] == ACCESS_LOG_FORMAT
    assert "%(U)s" in ACCESS_LOG_FORMAT and "%(r)s" not in ACCESS_LOG_FORMAT
    assert "%(q)s" not in ACCESS_LOG_FORMAT
    for component in (*SERVICES, "gateway", "web"):
        command = entrypoint.command(component, "web", [])
        assert command[:3] == ["gunicorn", "--config", entrypoint.gunicorn_config()], command
    procfile = PROCFILE.read_text(encoding="utf-8").splitlines()
    gunicorns = [line for line in procfile if "gunicorn" in line or " web --bind" in line]
    assert len(gunicorns) == 5, gunicorns
    for line in gunicorns:
        name, _, command = line.partition(":")
        words = shlex.split(command.replace("exec ", "", 1))
        if words[0] == "env":  # `env NAME=value … buendnis …`
            words = [w for w in words[1:] if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
        assert words[:3] == ["buendnis", name, "web"], line
        assert "--access-logformat" not in words and "--access-logfile" not in words, line


def test_a_role_waits_for_its_database_and_then_gives_up_saying_so(monkeypatch) -> None:
    """podman-compose and Kubernetes start every role at once: the entry point waits for the
    component's database, and when it has not answered within BUENDNIS_WAIT_SECONDS the role does
    not start; the message names the database and the limit, not the address or the role's
    password."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("REFERRALS_DATABASE_URL",
                       f"postgresql+psycopg://referrals:s3cret-pw@127.0.0.1:{port}/referrals")
    monkeypatch.setenv("BUENDNIS_WAIT_SECONDS", "1")
    with pytest.raises(SystemExit) as gave_up:
        entrypoint.wait_for_database("referrals", "worker")
    message = str(gave_up.value.code)
    assert message.startswith(
        "buendnis: the referrals database did not answer within 1 s ("), message
    assert "referrals worker not started" in message, message
    assert "s3cret-pw" not in message and str(port) not in message, message


def test_make_test_compose_says_why_podman_cannot_run_instead_of_pretending(monkeypatch) -> None:
    """Not root: `make test-compose` (infra/compose/stack.py check) fails with the reason."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("stack", ROOT / "infra" / "compose" / "stack.py")
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    monkeypatch.setattr(stack.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as refused:
        stack.main(["check"])
    assert "runs under podman as root" in str(refused.value.code)
    assert "this is uid 1000" in str(refused.value.code)


def test_restart_policies(services: dict) -> None:
    for name, spec in services.items():
        restart = spec.get("restart")
        if name.endswith("-migrate"):
            assert restart == "no", f"{name} is a one-shot job: restart must be 'no'"
        else:
            assert restart in ("always", "unless-stopped") or str(restart).startswith(
                "on-failure"
            ), f"{name}: restart {restart!r}"


def test_no_port_is_published_beyond_loopback(services: dict) -> None:
    published = []
    for name, spec in services.items():
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                assert port.get("host_ip") == LOOPBACK, f"{name}: {port} binds all interfaces"
                published.append((name, str(port.get("published"))))
                continue
            assert isinstance(port, str), f"{name}: port {port!r} binds all interfaces"
            assert port.startswith(f"{LOOPBACK}:") and port.count(":") == 2, (
                f"{name}: {port!r} must be published as {LOOPBACK}:HOST:CONTAINER"
            )
            published.append((name, port.split(":")[1]))
    assert sorted(published) == [
        ("gateway", "8000"), ("keycloak", "8080"), ("mailpit", "8025"), ("web", "8090")
    ]


def test_local_identity_provider_is_not_in_the_stack(compose: dict, services: dict) -> None:
    assert not [name for name in services if "idp" in name.lower()]
    for path, text in _strings(compose):
        lowered = text.lower()
        assert "infra/idp" not in lowered and "buendnis_idp" not in lowered, "/".join(path)
        assert not re.search(r"(^|[\s./:_-])idp($|[\s./:_-])", lowered), "/".join(path)
    issuers = {_environment(spec).get("OIDC_ISSUER") for spec in services.values()} - {None}
    assert issuers == {ISSUER}, issuers
    assert services["keycloak"]["image"].startswith("quay.io/keycloak/keycloak:")
