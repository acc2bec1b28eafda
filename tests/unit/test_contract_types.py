"""The contract ABIs an installed package ships (joynet/chain/contract_types.json): the compiled
project's, and enough to read and decode the deployed contracts without compiling."""

import json

from ape.contracts import ContractContainer

from joynet.chain.contract_types import SHIPPED, container, export_contract_types, shipped_contract_types


def test_shipped_contract_types__match_the_compiled_project(project):
    shipped = json.loads(SHIPPED.read_text())
    assert shipped == export_contract_types(project), "the ABIs changed: run `ape run contract_types`"


def test_shipped_contract_types__read_the_deployed_token_and_marketplace(token, marketplace, deployment):
    types = shipped_contract_types()
    shipped_token = ContractContainer(types["JoyToken"]).at(token.address)
    assert shipped_token.symbol() == token.symbol()
    assert shipped_token.totalSupply() == token.totalSupply()
    shipped_market = ContractContainer(types["ModelMarketplaceV2"]).at(marketplace.address)
    assert shipped_market.coordinator() == marketplace.coordinator()
    assert container("JoyToken").contract_type.abi == types["JoyToken"].abi
