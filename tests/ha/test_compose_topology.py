"""docker-compose.ha.yml and the Dockerfile: valid for Debian's docker-compose 1.29 (`config -q`), and the
topology the HA deployment promises, read from the resolved file."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.ha.yml"
DOCKER_COMPOSE = shutil.which("docker-compose")
LONG_RUNNING_EXCEPT = {"migrate"}  # a one-shot job


@pytest.fixture(scope="module")
def compose() -> dict:
    assert DOCKER_COMPOSE, "docker-compose is missing: deploy/local/install.sh installs Debian's docker-compose"
    checked = subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    resolved = subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE_FILE), "config"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)


def command_of(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else list(command)


def services_running(compose: dict, *words: str) -> list[str]:
    return sorted(name for name, s in compose["services"].items() if command_of(s)[: len(words)] == list(words))


def test_the_file_keeps_to_what_docker_compose_1_29_and_stack_deploy_accept():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "name" not in raw and "version" not in raw
    assert "start_interval" not in COMPOSE_FILE.read_text()


def test_three_api_replicas_without_worker_and_two_workers(compose):
    api = services_running(compose, "prs", "serve")
    assert len(api) == 3
    assert all("--no-worker" in command_of(compose["services"][name]) for name in api)
    assert len(services_running(compose, "prs", "worker")) >= 2


def test_postgres_is_two_patroni_nodes_with_etcd_and_synchronous_replication(compose):
    patroni = [n for n, s in compose["services"].items() if "patroni" in " ".join(command_of(s))]
    assert len(patroni) == 2
    assert len([n for n, s in compose["services"].items() if "etcd" in s.get("image", "")]) >= 1
    config = yaml.safe_load((REPO_ROOT / "deploy/ha/patroni/patroni.yml").read_text())
    assert config["bootstrap"]["dcs"]["synchronous_mode"] is True
    for name in patroni:
        mounts = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in compose["services"][name]["volumes"]]
        assert any(m.endswith("deploy/ha/patroni/patroni.yml") for m in mounts)
    url = compose["services"][services_running(compose, "prs", "serve")[0]]["environment"]["PRS_DATABASE_URL"]
    assert "target_session_attrs=read-write" in url and all(f"{n}:5432" in url for n in patroni)


def test_every_part_of_the_topology_is_there(compose):
    images = {name: s.get("image", "") for name, s in compose["services"].items()}
    assert any(command_of(s)[:2] == ["chroma", "run"] for s in compose["services"].values())
    ollama = [n for n, image in images.items() if image.startswith("ollama/ollama")]
    assert len(ollama) == 2
    for name in ollama:
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert any("gpu" in d["capabilities"] for d in devices)
    for product in ("nginx", "redis", "minio/minio", "prom/prometheus", "prom/alertmanager", "grafana/grafana"):
        assert any(image.startswith(product) for image in images.values()), product


def test_every_service_has_a_health_check_a_restart_policy_and_limits(compose):
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") or service.get("deploy", {}).get("restart_policy"), name
        if name not in LONG_RUNNING_EXCEPT:
            assert service.get("restart") in ("unless-stopped", "always"), name
            assert service["deploy"]["resources"]["limits"]["memory"], f"{name} has no memory limit"


def test_secrets_are_compose_secrets_never_environment_values(compose):
    names = set(compose["secrets"])
    assert {"jwt_secret", "notify_key", "db_password"} <= names
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for forbidden in ("PRS_JWT_SECRET", "PRS_NOTIFY_SECRET_KEY", "PGPASSWORD", "PATRONI_SUPERUSER_PASSWORD"):
            assert forbidden not in environment, f"{name} sets {forbidden} in plain text"
        for variable, value in environment.items():
            if variable.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), (name, variable)
                secret = str(value).rsplit("/", 1)[1]
                assert secret in [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]


def test_only_nginx_is_on_the_public_network_and_the_internal_one_has_no_way_out(compose):
    assert compose["networks"]["internal"].get("internal") is True
    public = sorted(name for name, s in compose["services"].items() if "public" in (s.get("networks") or {}))
    assert public == ["nginx"]
    published = sorted(name for name, s in compose["services"].items() if s.get("ports"))
    assert published == ["nginx"]


def test_mounted_configuration_files_are_the_repository_ones_and_names_resolve(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("/") or source.startswith("."):
                assert Path(source).exists(), f"{name} mounts {source}, which is not in the repository"
    known = set(compose["services"])
    for service in compose["services"].values():
        for network in (service.get("networks") or {}).values():
            known.update((network or {}).get("aliases", []))
    upstreams = re.findall(r"server (\w[\w-]*):\d+", (REPO_ROOT / "nginx/nginx.conf").read_text())
    assert upstreams and set(upstreams) <= known
    prometheus = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t.split(":")[0]
        for job in prometheus["scrape_configs"]
        for c in job.get("static_configs", [])
        for t in c["targets"]
        if "://" not in t
    }
    assert targets <= known, sorted(targets - known)


def test_the_image_is_multi_stage_non_root_without_compilers_and_checks_liveness():
    text = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert len(stages) >= 2
    final = stages[-1]
    assert re.search(r"(?m)^USER (?!root|0\b)\S+", final)
    assert "build-essential" not in final and "cmake" not in final and "gcc" not in final
    assert "COPY --from=build" in final
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*?/health/live", final)
    assert not re.search(r"(?im)^(ENV|ARG)\s.*(SECRET|PASSWORD)", text), "secrets are never baked into the image"


def test_the_image_holds_every_package_of_the_project_and_a_portable_llama_cpp():
    text = (REPO_ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = [name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"(?m)^COPY {package} \./{package}$", text), f"{package} is not copied into the image"
    assert "-DGGML_NATIVE=OFF" in (REPO_ROOT / "deploy" / "llama-cmake-args").read_text().split()
    for builder in (text, (REPO_ROOT / "deploy" / "local" / "install.sh").read_text()):
        assert 'CMAKE_ARGS="$(cat deploy/llama-cmake-args)"' in builder, "llama.cpp is built with the portable flags"
