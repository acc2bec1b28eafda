"""Where JoyNet keeps its files, in a source checkout and as an installed package.

``joynet_home()`` is ``$JOYNET_HOME``, default ``~/.joynet``: an operator's deployments
(``deployments/<network>.json``), edge journals (``edge/``), the embedded IPFS store (``ipfs/``)
and model caches (``models/``) live there unless their own variables say otherwise.

``CHECKOUT`` is the source checkout the package is imported from (an editable install, or
``PYTHONPATH``), None for an installed copy: a checkout keeps its deployments in its own
``deployments/`` and compiles its contracts; an installed package reads the contract types it
ships (``joynet/chain/contract_types/``) and never compiles.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "JOYNET_HOME"
PACKAGE_DIR = Path(__file__).resolve().parent


def _checkout() -> Path | None:
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "contracts").is_dir() else None


CHECKOUT = _checkout()


def joynet_home() -> Path:
    """``$JOYNET_HOME``, default ``~/.joynet`` (not created here)."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".joynet"
