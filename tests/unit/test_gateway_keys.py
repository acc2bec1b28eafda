"""The gateway's API keys (joynet.gateway.keys): the keys file, authentication, and spending
limits held per key while requests are in flight."""

import json

import pytest

from joynet.gateway.errors import SpendingLimitError, UnauthorizedError
from joynet.gateway.keys import ApiKey, KeyLedger, KeysFileError, load_keys


def test_load_keys__yaml_and_json__names_secrets_and_wei_limits(tmp_path):
    (tmp_path / "keys.yaml").write_text("keys:\n  - {name: alice, key: jn-a, limit_wei: '20000000000000000000'}\n")
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{"name": "bob", "key": "jn-b", "limit_wei": 7}]}))
    assert [(k.name, k.secret, k.limit) for k in load_keys(tmp_path / "keys.yaml")] == [("alice", "jn-a", 20 * 10**18)]
    assert [(k.name, k.secret, k.limit) for k in load_keys(tmp_path / "keys.json")] == [("bob", "jn-b", 7)]


@pytest.mark.parametrize("content, words", [
    ("keys: 3", "'keys' list"),
    ("keys:\n  - {name: a, limit_wei: 1}", "needs a 'name' and a 'key'"),
    ("keys:\n  - {name: a, key: k, limit_wei: -1}", "limit_wei"),
    ("keys:\n  - {name: a, key: k, limit_wei: 'ten'}", "limit_wei"),
    ("keys:\n  - {name: a, key: k}", "limit_wei"),
    ("keys: [unclosed", "does not parse"),
])
def test_load_keys__malformed_file__one_line_error_naming_it(tmp_path, content, words):
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(KeysFileError, match=words) as error:
        load_keys(path)
    assert str(path) in str(error.value)


def test_load_keys__missing_file__error_naming_it(tmp_path):
    with pytest.raises(KeysFileError, match="keys.yaml"):
        load_keys(tmp_path / "keys.yaml")


def test_key_ledger__same_secret_twice__refused():
    with pytest.raises(KeysFileError, match="listed twice"):
        KeyLedger([ApiKey("a", "jn-same", 1), ApiKey("b", "jn-same", 1)])


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", "Basic jn-a", "Bearer jn-unknown"])
def test_authenticate__missing_or_unknown_key__unauthorized_401(header):
    ledger = KeyLedger([ApiKey("alice", "jn-a", 10)])
    with pytest.raises(UnauthorizedError) as refused:
        ledger.authenticate(header)
    assert refused.value.status == 401
    assert refused.value.body()["error"]["code"] == "invalid_api_key"


def test_authenticate__bearer_key__its_entry():
    alice = ApiKey("alice", "jn-a", 10)
    assert KeyLedger([alice, ApiKey("bob", "jn-b", 10)]).authenticate("Bearer jn-a") is alice


def test_reserve__in_flight_and_spent_count__refused_past_the_limit_and_refunds_give_back():
    alice = ApiKey("alice", "jn-a", 10)
    ledger = KeyLedger([alice])
    ledger.reserve(alice, 4)
    ledger.reserve(alice, 4)  # two in flight: 8 of 10
    with pytest.raises(SpendingLimitError) as refused:
        ledger.reserve(alice, 4)
    assert refused.value.status == 402
    ledger.settle(alice, 4, charged=True)  # settled: spent
    ledger.settle(alice, 4, charged=False)  # refunded: given back
    assert (alice.spent, alice.reserved) == (4, 0)
    ledger.reserve(alice, 6)  # exactly the limit
    with pytest.raises(SpendingLimitError):
        ledger.reserve(alice, 1)
    assert alice.usage() == {"key": "alice", "limit_wei": "10", "spent_wei": "10"}


def test_key_ledger__two_keys_of_one_name__refused():
    with pytest.raises(KeysFileError, match="two API keys are named 'a'"):
        KeyLedger([ApiKey("a", "jn-1", 1), ApiKey("a", "jn-2", 1)])


def test_key_ledger__restarted_on_its_spending_file__spent_kept_and_unsettled_reservations_count_as_spent(tmp_path):
    spending = tmp_path / "spending.sqlite3"

    def started():
        ledger = KeyLedger([ApiKey("alice", "jn-a", 10), ApiKey("bob", "jn-b", 10)], spending)
        return ledger, ledger.authenticate("Bearer jn-a"), ledger.authenticate("Bearer jn-b")

    ledger, alice, bob = started()
    ledger.reserve(alice, 3)
    ledger.settle(alice, 3, charged=True)
    ledger.reserve(alice, 2)
    ledger.settle(alice, 2, charged=False)  # refunded
    ledger.reserve(bob, 4)  # in flight when the gateway stops
    ledger.close()

    ledger, alice, bob = started()
    assert (alice.spent, alice.reserved) == (3, 0)
    assert (bob.spent, bob.reserved) == (4, 0)  # it may have been paid: it stays spent
    with pytest.raises(SpendingLimitError):
        ledger.reserve(bob, 7)  # 4 + 7 > 10: the restart gave nothing back
    ledger.reserve(bob, 6)
    ledger.close()


def test_key_ledger__spending_file_not_sqlite__one_line_error_naming_it(tmp_path):
    spending = tmp_path / "spending.sqlite3"
    spending.write_text("not a database" * 100)
    with pytest.raises(KeysFileError, match="spending file") as error:
        KeyLedger([ApiKey("alice", "jn-a", 10)], spending)
    assert str(spending) in str(error.value)


def test_gateway_command__malformed_keys_file__exit_1_with_one_line_before_any_chain(tmp_path, capsys):
    from joynet.cli import main

    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - {name: a, key: k}\n")
    assert main(["gateway", "--model", "minilm", "--keys", str(keys), "--network", "ethereum:local:nowhere"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("joynet: error: keys file") and "limit_wei" in error
    assert len(error.splitlines()) == 1
