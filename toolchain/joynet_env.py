"""Process environment for every Python program that runs from this project's ``.venv``.

``make setup`` installs a ``joynet-toolchain.pth`` file into the virtualenv that imports this
module at interpreter start, so ``.venv/bin/ape``, ``.venv/bin/pytest`` and agents started by
``ape run`` find the same toolchain whether or not the virtualenv is activated:

* ``SOLCX_BINARY_PATH`` points py-solc-x (and so ape-solidity) at ``.venv/solcx``, where the
  solc-js shim is installed as ``solc-v0.8.28``; nothing is written to ``~/.solcx``.
* ``.venv/bin`` (where the npm anvil binary is linked) leads ``PATH``, which is the only place
  ape-foundry looks for anvil.
* When the project itself lies under the system temporary directory (a CI clone in /tmp),
  ``TMPDIR`` moves to ``.venv/tmp``: Ape treats any project inside the temporary directory as
  one of its own throw-away copies and then finds no sources to compile.
* ``.env`` (the operator's settings) and then ``.env.template`` (the documented defaults) fill
  in variables that ``ape-config.yaml`` expands, such as ``POLYGON_SUPERNET_CHAIN_ID``. A value
  already in the environment always wins.

It must stay cheap and must never raise: it runs before every Python program in the venv.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
SOLCX_DIR = PROJECT_ROOT / ".venv" / "solcx"


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; comments, blank lines and malformed lines are ignored."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf8")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key.isidentifier():
            values[key] = value
    return values


def _move_tempdir_out_of_the_way() -> None:
    import tempfile

    system_temp = Path(tempfile.gettempdir()).resolve()
    if PROJECT_ROOT == system_temp or system_temp in PROJECT_ROOT.parents:
        private_temp = PROJECT_ROOT / ".venv" / "tmp"
        private_temp.mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = str(private_temp)
        tempfile.tempdir = None  # forget the cached answer so the new TMPDIR is used


def apply() -> None:
    os.environ.setdefault("SOLCX_BINARY_PATH", str(SOLCX_DIR))
    _move_tempdir_out_of_the_way()
    path_entries = os.environ.get("PATH", "").split(os.pathsep)
    if str(VENV_BIN) not in path_entries:
        os.environ["PATH"] = os.pathsep.join([str(VENV_BIN), *path_entries])
    # .env overrides the template's defaults; the real environment overrides both. Empty
    # values in .env.template mean "no default" and are not exported.
    defaults = _read_env_file(PROJECT_ROOT / ".env.template")
    defaults.update(_read_env_file(PROJECT_ROOT / ".env"))
    for key, value in defaults.items():
        if value and key not in os.environ:
            os.environ[key] = value


try:
    apply()
except Exception:  # noqa: BLE001 - a broken .env must not break every Python program
    pass
