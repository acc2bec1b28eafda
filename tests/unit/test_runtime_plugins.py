"""Runtime plugins found through the ``joynet.runtimes`` entry-point group: a third party's
distribution installed beside JoyNet (here: a dist-info directory and its module on sys.path,
as pip leaves them) serves a model whose metadata names its framework; JoyNet's own runtimes
are entry points of its distribution; a plugin that does not import, or is not a runtime, is an
UnknownRuntimeError naming it."""

import asyncio
import importlib.metadata

import pytest
from helpers.model_directory import DESCRIPTION, write_model_directory

from joynet.edge import InferenceNode
from joynet.inference.errors import UnknownRuntimeError
from joynet.inference.runtimes import ENTRY_POINT_GROUP, registered_frameworks, runtime_for
from joynet.models.package import publish_model
from joynet.storage import EmbeddedStore

PLUGIN_MODULE = '''
import codecs
import json

from eth_hash.auto import keccak

from joynet.inference.runtimes.base import ModelRuntime, RuntimeOutput


class Rot13Runtime(ModelRuntime):
    """A third party's runtime: the package's one file is a greeting put before the rot13 of the text."""

    def __init__(self, package, context):
        super().__init__(package, context)
        self.greeting = package.read("greeting.txt").decode()

    def run(self, input_data, *, request_id=None, node=None):
        output = {"text": self.greeting + codecs.encode(input_data["text"], "rot13")}
        return RuntimeOutput(output, keccak(json.dumps(output, sort_keys=True).encode()))


def not_a_runtime():
    return None
'''
ENTRY_POINTS = """[joynet.runtimes]
rot13 = joynet_rot13:Rot13Runtime
rot13-broken = joynet_rot13_missing:Rot13Runtime
rot13-function = joynet_rot13:not_a_runtime
"""


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch):
    """What `pip install joynet-rot13` leaves in site-packages: the module and its dist-info."""
    site = tmp_path / "site-packages"
    (site / "joynet_rot13").mkdir(parents=True)
    (site / "joynet_rot13" / "__init__.py").write_text(PLUGIN_MODULE)
    dist_info = site / "joynet_rot13-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: joynet-rot13\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_runtime_for__builtins__are_entry_points_of_joynets_own_distribution():
    entries = {entry.name: entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert entries["joynet-int-mlp"] == "joynet.inference.runtimes.digits:DigitsMLPRuntime"
    assert entries["sentence-transformers"] == "joynet.inference.runtimes.sentence_embedding:SentenceEmbeddingRuntime"
    assert runtime_for("joynet-int-mlp").__name__ == "DigitsMLPRuntime"


def test_runtime_for__framework_nobody_installed__unknown_runtime_error_listing_what_is_known():
    with pytest.raises(UnknownRuntimeError, match=r"no runtime for framework 'rot13'.*joynet-int-mlp"):
        runtime_for("rot13")


def test_execute_inference__model_of_an_installed_plugins_framework__runs_on_the_plugin(plugin_installed, tmp_path):
    description = {
        **DESCRIPTION,
        "name": "rot13-greeter",
        "framework": "rot13",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "outputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    directory = write_model_directory(tmp_path / "model", description)
    (directory / "greeting.txt").write_text("Uryyb, ")
    store = EmbeddedStore(tmp_path / "ipfs")

    async def scenario():
        cid = await publish_model(store, directory)
        node = InferenceNode(store=store, cache_dir=tmp_path / "cache")
        try:
            return await node.execute_inference(cid, {"text": "Hello world"})
        finally:
            await node.close()

    result = asyncio.run(scenario())
    assert "rot13" in registered_frameworks()
    assert result.output == {"text": "Uryyb, Uryyb jbeyq"}


@pytest.mark.parametrize("framework, why", [("rot13-broken", "does not import"),
                                            ("rot13-function", "is not a ModelRuntime")])
def test_runtime_for__plugin_that_cannot_serve__unknown_runtime_error_naming_it(plugin_installed, framework, why):
    with pytest.raises(UnknownRuntimeError, match=why):
        runtime_for(framework)
