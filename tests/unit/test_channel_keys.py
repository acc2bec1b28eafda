"""Channel keys: SLIP-10 ed25519 against the spec's vectors, and the IOTA wallet path against
what iota-sdk derives from the same mnemonic."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from iota_sdk import Bip44, MnemonicSecretManager, SecretManager, Utils

from joynet.channels import ChannelIdentity
from joynet.channels.keys import HARDENED, IOTA_COIN_TYPE, public_key_bytes, slip10_derive

H = HARDENED

# SLIP-0010, "Test vector 1 for ed25519" and "Test vector 2 for ed25519":
# (path, chain code, private key, public key with SLIP-10's 0x00 prefix)
SLIP10_VECTOR_1_SEED = "000102030405060708090a0b0c0d0e0f"
SLIP10_VECTOR_1 = [
    ([], "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
     "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
     "00a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed"),
    ([0 | H], "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
     "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
     "008c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c"),
    ([0 | H, 1 | H], "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
     "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
     "001932a5270f335bed617d5b935c80aedb1a35bd9fc1e31acafd5372c30f5c1187"),
    ([0 | H, 1 | H, 2 | H], "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
     "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
     "00ae98736566d30ed0e9d2f4486a64bc95740d89c7db33f52121f8ea8f76ff0fc1"),
    ([0 | H, 1 | H, 2 | H, 2 | H], "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
     "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
     "008abae2d66361c879b900d204ad2cc4984fa2aa344dd7ddc46007329ac76c429c"),
    ([0 | H, 1 | H, 2 | H, 2 | H, 1000000000 | H], "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
     "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
     "003c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a"),
]
SLIP10_VECTOR_2_SEED = (
    "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a2"
    "9f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542"
)
SLIP10_VECTOR_2 = [
    ([], "ef70a74db9c3a5af931b5fe73ed8e1a53464133654fd55e7a66f8570b8e33c3b",
     "171cb88b1b3c1db25add599712e36245d75bc65a1a5c9e18d76f9f2b1eab4012",
     "008fe9693f8fa62a4305a140b9764c5ee01e455963744fe18204b4fb948249308a"),
    ([0 | H], "0b78a3226f915c082bf118f83618a618ab6dec793752624cbeb622acb562862d",
     "1559eb2bbec5790b0c65d8693e4d0875b1747f4970ae8b650486ed7470845635",
     "0086fab68dcb57aa196c77c5f264f215a112c22a912c10d123b0d03c3c28ef1037"),
    ([0 | H, 2147483647 | H], "138f0b2551bcafeca6ff2aa88ba8ed0ed8de070841f0c4ef0165df8181eaad7f",
     "ea4f5bfe8694d8bb74b7b59404632fd5968b774ed545e810de9c32a4fb4192f4",
     "005ba3b9ac6e90e83effcd25ac4e58a1365a9e35a3d3ae5eb07b9e4d90bcf7506d"),
    ([0 | H, 2147483647 | H, 1 | H], "73bd9fff1cfbde33a1b846c27085f711c0fe2d66fd32e139d3ebc28e5a4a6b90",
     "3757c7577170179c7868353ada796c839135b3d30554bbb74a4b1e4a5a58505c",
     "002e66aa57069c86cc18249aecf5cb5a9cebbfd6fadeab056254763874a9352b45"),
    ([0 | H, 2147483647 | H, 1 | H, 2147483646 | H], "0902fe8a29f9140480a00ef244bd183e8a13288e4412d8389d140aac1794825a",
     "5837736c89570de861ebc173b1086da4f505d4adb387c6a1b1342d5e4ac9ec72",
     "00e33c0f7d81d843c572275f287498e8d408654fdf0d1e065b84e2e6f157aab09b"),
    ([0 | H, 2147483647 | H, 1 | H, 2147483646 | H, 2 | H], "5d70af781f3a37b829f0d060924d5e960bdc02e85423494afc0b1a41bbe196d4",
     "551d333177df541ad876a60ea71f00447931c0a9da16f227c11ea080d7391b8d",
     "0047150c75db263559a70d5778bf36abbab30fb061ad69f69ece61a72b0cfa4fc0"),
]

MNEMONIC = "abandon " * 23 + "art"  # BIP-39's 24-word all-zero-entropy vector


@pytest.mark.parametrize(
    "seed, path, chain_code, private_key, public_key",
    [(SLIP10_VECTOR_1_SEED, *row) for row in SLIP10_VECTOR_1] + [(SLIP10_VECTOR_2_SEED, *row) for row in SLIP10_VECTOR_2],
)
def test_slip10_derive__spec_ed25519_vectors__chain_code_private_and_public_keys_match(
    seed, path, chain_code, private_key, public_key
):
    key = slip10_derive(bytes.fromhex(seed), path)
    assert key.chain_code.hex() == chain_code
    assert key.private_key.hex() == private_key
    assert "00" + public_key_bytes(Ed25519PrivateKey.from_private_bytes(key.private_key)).hex() == public_key


def test_slip10_derive__normal_index__refused():
    with pytest.raises(ValueError, match="hardened"):
        slip10_derive(bytes(16), [0])


@pytest.mark.parametrize("account, index", [(0, 0), (2, 5)])
def test_from_mnemonic__iota_path__same_key_signature_and_address_as_iota_sdk(account, index):
    identity = ChannelIdentity.from_mnemonic(MNEMONIC, account=account, index=index)
    wallet = SecretManager(MnemonicSecretManager(MNEMONIC))
    message = bytes(range(32))

    sdk_signature = wallet.sign_ed25519("0x" + message.hex(), Bip44(IOTA_COIN_TYPE, account, 0, index))
    [sdk_address] = wallet.generate_ed25519_addresses(
        account_index=account, start=index, end=index + 1, coin_type=IOTA_COIN_TYPE, bech32_hrp="iota"
    )

    assert sdk_signature.publicKey == "0x" + identity.public_key.hex()
    assert sdk_signature.signature == "0x" + identity.sign(message).hex()  # Ed25519 is deterministic
    assert identity.iota_address() == sdk_address


def test_from_mnemonic__different_accounts__different_keys():
    keys = {ChannelIdentity.from_mnemonic(MNEMONIC, account=a).public_key for a in range(3)}
    assert len(keys) == 3


def test_from_mnemonic__bad_checksum__refused():
    with pytest.raises(ValueError, match="mnemonic"):
        ChannelIdentity.from_mnemonic("abandon " * 23 + "abandon")


def test_channel_signature__verified_by_iota_sdk():
    from iota_sdk import Ed25519Signature

    identity = ChannelIdentity.from_mnemonic(MNEMONIC)
    message = b"JoyNet channel message v1\x00" + bytes(32)
    signature = Ed25519Signature("0x" + identity.public_key.hex(), "0x" + identity.sign(message).hex())
    assert Utils.verify_ed25519_signature(signature, "0x" + message.hex())


@pytest.mark.parametrize("mnemonic, why", [
    ("abandon " * 23 + "abandon", "bad checksum"),
    ("abandon " * 23 + "joynet", "unknown word"),
    ("abandon " * 10 + "about", "eleven words"),
])
def test_from_mnemonic__not_a_bip39_mnemonic__refused(mnemonic, why):
    with pytest.raises(ValueError, match="not a valid BIP-39 mnemonic"):
        ChannelIdentity.from_mnemonic(mnemonic)


def test_channel_mnemonic__no_file__a_new_24_word_mnemonic_kept_owner_only_and_the_same_next_time(tmp_path):
    import stat

    from joynet.channels.keys import channel_mnemonic

    path = tmp_path / "edge" / "node.channel-key"
    words = channel_mnemonic(path)
    assert len(words.split()) == 24 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert channel_mnemonic(path) == words
    assert ChannelIdentity.from_mnemonic(words).public_key == ChannelIdentity.from_mnemonic(channel_mnemonic(path)).public_key


def test_channel_mnemonic__file_damaged_by_hand__refused_with_the_reason(tmp_path):
    from joynet.channels.keys import channel_mnemonic

    path = tmp_path / "node.channel-key"
    path.write_text("abandon abandon not words")
    with pytest.raises(ValueError, match="not a valid BIP-39 mnemonic"):
        channel_mnemonic(path)
