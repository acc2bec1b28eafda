"""joynet.identity.credentials: did:key DID documents, model-access credentials (JWT, EdDSA) checked by
the edge node against the owner's access channel, and interoperability with IOTA Identity
(@iota/identity-wasm, through toolchain/identity_interop.mjs) in both directions."""

import asyncio
import json
import subprocess
import time

import jwt as pyjwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import PROJECT_ROOT
from joynet.channels import MessageType, SQLiteLedger
from joynet.feeless.handler import AdmissionRefusedError
from joynet.identity.credentials import (
    CredentialError, DIDIdentity, ExpiredCredentialError, ForeignCredentialError, ModelAccessPolicy,
    ModelAccessRegistry, RevokedCredentialError, check_document, did_of, verify_model_access,
)

PROJECT = PROJECT_ROOT
OWNER_SEED = "abandon " * 11 + "about"
HOLDER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
OTHER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
MODEL = "private-digits"
HOUR = 3600


@pytest.fixture(scope="module")
def owner():
    return DIDIdentity.from_mnemonic(OWNER_SEED)


@pytest.fixture(scope="module")
def holder():
    return DIDIdentity.from_mnemonic(HOLDER_SEED)


@pytest.fixture(scope="module")
def stranger():
    return DIDIdentity.from_mnemonic(OTHER_SEED)


@pytest.fixture
def ledger(tmp_path):
    return SQLiteLedger(tmp_path / "channels.sqlite3")


@pytest.fixture
def ledger_path_env(tmp_path, monkeypatch):
    """The embedded ledger's file, also the default of every IOTAInferenceHandler of the test."""
    path = tmp_path / "channels.sqlite3"
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(path))
    return path


def identity_wasm(request: dict) -> dict:
    done = subprocess.run(["node", "toolchain/identity_interop.mjs"], input=json.dumps(request), capture_output=True,
                          text=True, cwd=PROJECT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def in_an_hour():
    return int(time.time()) + HOUR


# ---- DID documents ----


@pytest.mark.parametrize("account", [0, 1, 2, 3])  # requester, node, model owner, bridger: one key path each
def test_did_document__from_wallet_mnemonic__ed25519_method_of_the_channel_key(account):
    identity = DIDIdentity.from_mnemonic(OWNER_SEED, account=account)
    document = identity.document()
    # did:key of an Ed25519 key: "z6Mk" then base58btc, 48 characters of fingerprint in all
    assert document["id"] == identity.did and identity.did.startswith("did:key:z6Mk") and len(identity.did) == 8 + 48
    assert identity.method_id == f"{identity.did}#{identity.did[8:]}"
    (method,) = document["verificationMethod"]
    assert method["type"] == "JsonWebKey2020" and method["publicKeyJwk"]["crv"] == "Ed25519"
    assert document["assertionMethod"] == document["authentication"] == [identity.method_id]
    assert check_document(document) == identity.channel_identity.public_key


def test_check_document__key_swapped__refused(owner, stranger):
    document = owner.document()
    document["verificationMethod"][0]["publicKeyJwk"] = stranger.document()["verificationMethod"][0]["publicKeyJwk"]
    with pytest.raises(CredentialError, match="not the key its DID encodes"):
        check_document(document)


@pytest.mark.parametrize("did", ["did:iota:joynet:0x" + "00" * 32, "did:key:z6Mk", "did:key:zzzz", "did:key:",
                                 "did:key:z" + "1" * 48, 7])
def test_check_document__not_the_did_key_of_an_ed25519_key__refused(owner, did):
    with pytest.raises(CredentialError, match="not the did:key of an Ed25519 key"):
        check_document({**owner.document(), "id": did})


# ---- credentials in JoyNet ----


def test_verify__valid_credential__grants_the_model_to_the_holder(owner, holder):
    jwt = owner.issue_model_access(holder.did, MODEL, expires_at=in_an_hour(), credential_id="urn:uuid:1")
    credential = verify_model_access(jwt, owner.document(), model_id=MODEL, holder_did=holder.did)
    assert (credential.id, credential.issuer, credential.holder, credential.model) == ("urn:uuid:1", owner.did, holder.did, MODEL)


@pytest.mark.parametrize("case, error, match", [
    ("expired", ExpiredCredentialError, "expired"),
    ("not yet valid", ExpiredCredentialError, "not valid before"),
    ("other holder", ForeignCredentialError, "issued to"),
    ("other model", ForeignCredentialError, "grants model"),
    ("other issuer", ForeignCredentialError, "verification method"),
    ("tampered", CredentialError, "signature does not verify"),
    ("none", CredentialError, "no access credential"),
])
def test_verify__bad_credential__refused_with_reason(owner, holder, stranger, case, error, match):
    now = int(time.time())
    jwt = {
        "expired": lambda: owner.issue_model_access(holder.did, MODEL, expires_at=now - 1, not_before=now - HOUR),
        "not yet valid": lambda: owner.issue_model_access(holder.did, MODEL, expires_at=now + 2 * HOUR, not_before=now + HOUR),
        "other holder": lambda: owner.issue_model_access(stranger.did, MODEL, expires_at=now + HOUR),
        "other model": lambda: owner.issue_model_access(holder.did, "another-model", expires_at=now + HOUR),
        "other issuer": lambda: stranger.issue_model_access(holder.did, MODEL, expires_at=now + HOUR),
        "tampered": lambda: tamper(owner.issue_model_access(holder.did, MODEL, expires_at=now + HOUR)),
        "none": lambda: "",
    }[case]()
    with pytest.raises(error, match=match):
        verify_model_access(jwt, owner.document(), model_id=MODEL, holder_did=holder.did)


def tamper(jwt: str) -> str:
    """The same credential with its expiry pushed a year on (the signature no longer matches)."""
    from joynet.identity.credentials import b64url, b64url_decode

    header, claims, signature = jwt.split(".")
    document = json.loads(b64url_decode(claims))
    document["exp"] += 365 * 24 * HOUR
    return ".".join([header, b64url(json.dumps(document).encode()), signature])


def test_access_policy__private_model_and_revocation_on_owner_channel__enforced(ledger, owner, holder, stranger):
    registry = ModelAccessRegistry(ledger, owner, MODEL)
    policy = ModelAccessPolicy(ledger, owner.document(), MODEL)
    assert policy.check(b"", holder.public_key) is None  # not marked private yet: open to everyone

    registry.mark_private()
    jwt = owner.issue_model_access(holder.did, MODEL, expires_at=in_an_hour(), credential_id="urn:uuid:revoke-me")
    assert policy.check(jwt.encode(), holder.public_key).id == "urn:uuid:revoke-me"
    assert policy.admits(holder.public_key, jwt.encode())
    with pytest.raises(AdmissionRefusedError, match="access denied: issued to .*, presented by"):
        policy.admits(stranger.public_key, jwt.encode())
    with pytest.raises(ForeignCredentialError):
        policy.check(jwt, stranger.public_key)  # a stolen credential: its holder is someone else

    registry.revoke("urn:uuid:revoke-me")
    with pytest.raises(RevokedCredentialError):
        policy.check(jwt, holder.public_key)
    with pytest.raises(AdmissionRefusedError, match="access denied: the credential urn:uuid:revoke-me was revoked"):
        policy.admits(holder.public_key, jwt.encode())


def test_access_policy__revocation_posted_by_someone_else__ignored(ledger, owner, holder, stranger):
    ModelAccessRegistry(ledger, owner, MODEL).mark_private()
    forged = ModelAccessRegistry(ledger, stranger, MODEL)  # the stranger's own channel, not the owner's
    jwt = owner.issue_model_access(holder.did, MODEL, expires_at=in_an_hour(), credential_id="urn:uuid:keep")
    forged.revoke("urn:uuid:keep")
    assert ModelAccessPolicy(ledger, owner.document(), MODEL).check(jwt, holder.public_key).id == "urn:uuid:keep"


# ---- interoperability with IOTA Identity (@iota/identity-wasm) ----


def test_identity_wasm__joynet_credential__validates_there(owner, holder):
    jwt = owner.issue_model_access(holder.did, MODEL, expires_at=in_an_hour(), credential_id="urn:uuid:interop")
    answer = identity_wasm({"op": "validate", "jwt": jwt, "issuerDocument": owner.document()})
    assert answer["valid"], answer
    credential = answer["credential"]
    assert credential["id"] == "urn:uuid:interop" and credential["issuer"] == owner.did
    assert credential["type"] == ["VerifiableCredential", "ModelAccessCredential"]
    assert credential["credentialSubject"] == {"id": holder.did, "model": MODEL}


@pytest.mark.parametrize("case", ["expired", "tampered", "other issuer"])
def test_identity_wasm__bad_joynet_credential__refused_there(owner, holder, stranger, case):
    now = int(time.time())
    jwt = {
        "expired": lambda: owner.issue_model_access(holder.did, MODEL, expires_at=now - 1, not_before=now - HOUR),
        "tampered": lambda: tamper(owner.issue_model_access(holder.did, MODEL, expires_at=now + HOUR)),
        "other issuer": lambda: stranger.issue_model_access(holder.did, MODEL, expires_at=now + HOUR),
    }[case]()
    answer = identity_wasm({"op": "validate", "jwt": jwt, "issuerDocument": owner.document()})
    assert not answer["valid"] and answer["error"]


def test_identity_wasm__its_credential__validates_in_joynet(holder):
    issued = identity_wasm({"op": "issue", "holder": holder.did, "model": MODEL, "expiresAt": "2099-01-01T00:00:00Z"})
    credential = verify_model_access(issued["jwt"], issued["issuerDocument"], model_id=MODEL, holder_did=holder.did)
    assert credential.id == issued["credentialId"] and credential.issuer == issued["issuerDocument"]["id"]
    assert credential.expires_at == 4070908800


@pytest.mark.parametrize("case", ["expired", "other holder"])
def test_identity_wasm__its_bad_credential__refused_in_joynet(holder, stranger, case):
    expires, subject = ("2000-01-01T00:00:00Z", holder.did) if case == "expired" else ("2099-01-01T00:00:00Z", stranger.did)
    issued = identity_wasm({"op": "issue", "holder": subject, "model": MODEL, "expiresAt": expires})
    error = ExpiredCredentialError if case == "expired" else ForeignCredentialError
    with pytest.raises(error):
        verify_model_access(issued["jwt"], issued["issuerDocument"], model_id=MODEL, holder_did=holder.did)


# ---- junk credentials: refused with a reason, never a crash ----

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
CLAIM_NAMES = st.sampled_from(["iss", "sub", "jti", "nbf", "exp", "vc", "iat", "aud"])


def _segment(value) -> str:
    from joynet.identity.credentials import b64url

    return b64url(json.dumps(value).encode())


@st.composite
def junk_tokens(draw):
    """Tokens a hostile subscriber may present: not a JWS at all, bad base64, a header or claims
    that are not objects, another algorithm (none, HMAC, RSA, ES256K), a foreign kid, or the
    owner's own valid signature over claims of the wrong types."""
    owner = DIDIdentity.from_mnemonic(OWNER_SEED)
    kind = draw(st.sampled_from(["text", "segments", "structure", "algorithm", "signed claims"]))
    if kind == "text":
        return draw(st.text(max_size=40))
    if kind == "segments":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.!é\x00"
        return ".".join(draw(st.lists(st.text(alphabet=alphabet, max_size=12), min_size=1, max_size=5)))
    if kind == "structure":
        header = draw(JSON_VALUES | st.fixed_dictionaries({"alg": st.just("EdDSA"), "kid": JSON_VALUES}))
        return ".".join([_segment(header), _segment(draw(JSON_VALUES)), draw(st.text("AB-_", max_size=8))])
    if kind == "algorithm":
        algorithm = draw(st.sampled_from(["none", "HS256", "RS256", "ES256K", "EdDSA ", "eddsa", ""]))
        header = {"alg": algorithm, "kid": owner.method_id, "typ": "JWT"}
        claims = {"iss": owner.did, "sub": "did:x", "exp": 2**40}
        return ".".join([_segment(header), _segment(claims), "c2lnbmF0dXJl"])
    claims = draw(st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=6) | JSON_VALUES)
    # Signed as a JWS over any JSON (PyJWT's own encode refuses claims of the wrong types).
    return pyjwt.PyJWS().encode(json.dumps(claims).encode(), owner.channel_identity.signing_key, algorithm="EdDSA",
                                headers={"kid": owner.method_id})


@settings(max_examples=300, deadline=None)
@given(token=junk_tokens())
def test_verify_model_access__junk_token__refused_with_a_credential_error_never_another(token):
    owner, holder = DIDIdentity.from_mnemonic(OWNER_SEED), DIDIdentity.from_mnemonic(HOLDER_SEED)
    with pytest.raises(CredentialError) as refused:
        verify_model_access(token, owner.document(), model_id=MODEL, holder_did=holder.did)
    assert str(refused.value)  # a reason the subscriber is told


@pytest.mark.parametrize("token", ["W10.e30.AA", "bnVsbA.e30.AA", "MQ.e30.AA", "eyJhbGciOiJFZERTQSJ9.W10.AA"])
def test_verify_model_access__header_or_claims_not_an_object__credential_error(owner, holder, token):
    # [] / null / 1 as the header, and an EdDSA header over claims that are a list: each once
    # raised AttributeError out of the check (and out of a serving node's admission loop).
    with pytest.raises(CredentialError):
        verify_model_access(token, owner.document(), model_id=MODEL, holder_did=holder.did)


def test_admit_pending__junk_credentials_in_one_batch__each_refused_with_a_reason_and_the_holder_admitted(
        ledger_path_env, owner, holder):
    from joynet.feeless.handler import REFUSAL, IOTAInferenceHandler

    junk = ["W10.e30.AA", "not a token", "eyJhbGciOiJub25lIn0.e30.", "\x00\xff", owner.sign_jwt({"vc": [1]})]

    async def scenario():
        ledger = SQLiteLedger(ledger_path_env)
        registry = ModelAccessRegistry(ledger, owner, MODEL)
        registry.mark_private()
        policy = ModelAccessPolicy(ledger, owner.document(), MODEL)
        node = IOTAInferenceHandler(wallet_seed=OWNER_SEED, admission=policy.admits)
        channel_id = await node.create_model_channel(MODEL, private=True)
        strangers = [IOTAInferenceHandler(wallet_seed=OTHER_SEED, address_index=i) for i in range(len(junk))]
        for stranger, token in zip(strangers, junk, strict=True):
            await stranger.subscribe(channel_id, credential=token.encode(errors="surrogateescape"))
        member = IOTAInferenceHandler(wallet_seed=HOLDER_SEED)
        await member.subscribe(channel_id, credential=owner.issue_model_access(holder.did, MODEL,
                                                                                 expires_at=in_an_hour()).encode())
        admitted = await node.admit_pending(channel_id)
        refusals = [json.loads(m.public) for m in ledger.read(bytes.fromhex(channel_id[2:]))
                    if m.type is MessageType.PACKET and m.public and json.loads(m.public).get("kind") == REFUSAL]
        return admitted, member.public_key, refusals, [stranger.public_key for stranger in strangers]

    admitted, member, refusals, strangers = asyncio.run(scenario())
    assert admitted == [member]
    assert sorted(refusal["subscriber"] for refusal in refusals) == sorted(strangers)
    assert all(refusal["reason"].startswith("access denied: ") for refusal in refusals)
