"""Read docker/compose.yaml the way Docker Compose does, without Docker: `.env` files and
variable interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from config.settings import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"

# ${NAME}, ${NAME<op>word} with op in :- - :? ? :+ +, or $NAME; $$ is a literal dollar.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariables(ValueError):
    """Required variables (``${VAR:?...}``) are unset or empty; Compose would refuse to start."""

    def __init__(self, names: set[str]):
        self.names = names
        super().__init__(f"required variables unset or empty: {sorted(names)}")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def variables(text: str) -> dict[str, set[str]]:
    """Every variable the text refers to, with the operators it is used with."""
    found: dict[str, set[str]] = {}
    for match in _VARIABLE.finditer(text):
        name = match["braced"] or match["plain"]
        if name:
            found.setdefault(name, set()).add(match["op"] or "")
    return found


def interpolate(value: Any, env: dict[str, str], missing: set[str] | None = None) -> Any:
    """Substitute variables in every string of ``value``; collect required ones that are unset."""
    top = missing is None
    missing = set() if missing is None else missing
    if isinstance(value, dict):
        result: Any = {key: interpolate(item, env, missing) for key, item in value.items()}
    elif isinstance(value, list):
        result = [interpolate(item, env, missing) for item in value]
    elif isinstance(value, str):
        result = _VARIABLE.sub(lambda match: _substitute(match, env, missing), value)
    else:
        result = value
    if top and missing:
        raise MissingVariables(missing)
    return result


def _substitute(match: re.Match, env: dict[str, str], missing: set[str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["plain"]
    op, word = match["op"] or "", match["word"] or ""
    value = env.get(name)
    is_set, non_empty = value is not None, bool(value)
    if op in (":-", "-"):
        use_default = not non_empty if op == ":-" else not is_set
        return word if use_default else value
    if op in (":?", "?"):
        if not (non_empty if op == ":?" else is_set):
            missing.add(name)
            return ""
        return value
    if op in (":+", "+"):
        return word if (non_empty if op == ":+" else is_set) else ""
    return value or ""


def load_compose(env: dict[str, str] | None = None) -> dict:
    """The compose file as parsed YAML (anchors and merge keys resolved), interpolated with
    ``env`` if given."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    return document if env is None else interpolate(document, env)


def filled_env() -> dict[str, str]:
    """``.env.example`` with a made-up value in every empty variable, as a user would fill it."""
    env = read_env_file(ENV_EXAMPLE)
    return {name: value or f"test-{name.lower()}-value" for name, value in env.items()}


def compose_secrets_module():
    """docker/compose_secrets.py, the containers' reader of Compose secrets (not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "compose_secrets", DOCKER_DIR / "compose_secrets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER = "python /opt/cx/docker/compose_secrets.py render "


def fake_secrets(directory: Path) -> Path:
    """A /run/secrets stand-in: every secret, its value ``secret-<name>``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in compose_secrets_module().SECRETS:
        (directory / name).write_text(f"secret-{name}\n")
    return directory


def container_env(env: dict[str, str], secrets_dir: Path) -> dict[str, str]:
    """A service's environment as its processes see it, secrets read from ``secrets_dir``: each
    ``NAME_FROM_SECRETS`` becomes ``NAME`` (docker/compose_secrets.py exec), and each Airflow
    ``NAME_CMD`` running ``compose_secrets.py render`` becomes ``NAME`` (Airflow runs it)."""
    module = compose_secrets_module()
    out = module.environment({k: str(v) for k, v in env.items()}, secrets_dir)
    for key, command in list(out.items()):
        if key.endswith("_CMD") and command.startswith(RENDER):
            out[key.removesuffix("_CMD")] = module.render(command.removeprefix(RENDER), secrets_dir)
    return out
