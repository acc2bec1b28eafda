"""Identity: ``did:key`` DID documents and model-access credentials (JWT, EdDSA).

Every participant (requester, node, model owner, bridger) has a DID derived from the same
SLIP-10 Ed25519 key as its channel identity (``joynet.channels.ChannelIdentity``), in the W3C
CCG's ``did:key`` method, which needs no ledger:

    did:key:z6Mk...   (multibase base58btc of the Ed25519 multicodec 0xed01 and the public key)

and a DID document with that key as a ``JsonWebKey2020`` verification method (``#z6Mk...``, the
same fingerprint, in ``authentication`` and ``assertionMethod``), the shape IOTA Identity and
other DID libraries read. The DID is the key itself, so a document is self-certifying:
:func:`check_document` accepts it only when its method's key is the one its DID encodes. These
identities are not published anywhere (no IOTA node is reachable here), so they do not claim a
``did:iota`` name, which would name a document on an IOTA network.

A model owner marks a model private and issues **model-access credentials**: W3C verifiable
credentials as JWTs (``alg: EdDSA``, ``kid`` = the owner's verification method), with the claims
IOTA Identity uses (``iss``, ``sub``, ``jti``, ``nbf``, ``exp``, ``vc``), signed and checked with
PyJWT (EdDSA on ``cryptography``'s Ed25519): a presented token is untrusted input from any
subscriber, and whatever it holds (not a JWS, a header that is not an object, another algorithm,
bad base64, claims of the wrong types) ends as a CredentialError saying why. The owner publishes its
DID document, the private mark and revocations on its public *access channel*
(``joynet-access:<model>``, authored by the owner's key, so every entry is signed by it); an edge
node follows that channel (:class:`ModelAccessPolicy`) and serves the model only to the holder of a
valid, unexpired, unrevoked credential issued by that owner for that model.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import multibase
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from joynet.channels import Channel, ChannelIdentity, ChannelReader, MessageType, derive_channel_id
from joynet.channels.errors import AdmissionRefusedError
from joynet.channels.transport import ChannelTransport
from joynet.identity.errors import CredentialError

ACCESS_DENIED = "access denied"  # how a node's refusal for want of a valid credential begins

DID_KEY_PREFIX = "did:key:"
ED25519_MULTICODEC = b"\xed\x01"  # the multicodec of an Ed25519 public key (varint 0xed)
CREDENTIAL_TYPE = "ModelAccessCredential"
VC_CONTEXT = "https://www.w3.org/2018/credentials/v1"
ACCESS_CHANNEL_PREFIX = "joynet-access:"
CLOCK_SKEW_SECONDS = 0
JWT_ALGORITHM = "EdDSA"  # Ed25519: the only algorithm a credential may use
# What PyJWT checks besides the signature: the claims' types. Times, issuer and subject are
# checked here against the model, the holder and the caller's clock (verify_model_access).
_DECODE_OPTIONS: Any = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class ExpiredCredentialError(CredentialError):
    """Past its ``exp`` (or before its ``nbf``)."""


class RevokedCredentialError(CredentialError):
    """Its id is on the issuer's revocation list."""


class ForeignCredentialError(CredentialError):
    """Issued by someone else than the model's owner, for another model, or to another holder."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def did_of(public_key: bytes) -> str:
    """The ``did:key`` DID of an Ed25519 public key."""
    return DID_KEY_PREFIX + multibase.encode("base58btc", ED25519_MULTICODEC + public_key).decode()


def key_of_did(did: str) -> bytes:
    """The Ed25519 public key a ``did:key`` DID encodes; CredentialError for any other DID."""
    decoded = b""
    if isinstance(did, str) and did.startswith(DID_KEY_PREFIX + "z"):
        try:
            decoded = multibase.decode(did.removeprefix(DID_KEY_PREFIX))
        except (ValueError, TypeError):
            pass
    if len(decoded) != len(ED25519_MULTICODEC) + 32 or not decoded.startswith(ED25519_MULTICODEC):
        raise CredentialError(f"{did!r} is not the did:key of an Ed25519 key")
    return decoded[len(ED25519_MULTICODEC) :]


def method_id_of(did: str) -> str:
    """The id of a ``did:key`` DID's one verification method: the DID, then its fingerprint."""
    return f"{did}#{did.removeprefix(DID_KEY_PREFIX)}"


def ed25519_jwk(public_key: bytes) -> dict:
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": b64url(public_key)}


def did_document(public_key: bytes) -> dict:
    """The DID document of an Ed25519 key (one JsonWebKey2020 method for signing and auth)."""
    did = did_of(public_key)
    method_id = method_id_of(did)
    method = {"id": method_id, "controller": did, "type": "JsonWebKey2020", "publicKeyJwk": ed25519_jwk(public_key)}
    return {"id": did, "verificationMethod": [method], "authentication": [method_id], "assertionMethod": [method_id]}


def document_methods(document: dict) -> dict[str, bytes]:
    """Ed25519 keys of a DID document by method id (embedded or listed in any relationship)."""
    methods = {}
    for relation in ("verificationMethod", "assertionMethod", "authentication"):
        for entry in document.get(relation) or []:
            if isinstance(entry, dict):
                jwk = entry.get("publicKeyJwk") or {}
                if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and "x" in jwk:
                    methods[entry["id"]] = b64url_decode(jwk["x"])
    return methods


def check_document(document: dict) -> bytes:
    """The Ed25519 key of a JoyNet DID document, after checking that its verification method
    holds the key its ``did:key`` DID encodes."""
    did = document.get("id", "")
    key = key_of_did(did)
    if document_methods(document).get(method_id_of(did)) != key:
        raise CredentialError(f"DID document {did!r}: its verification method is not the key its DID encodes")
    return key


class DIDIdentity:
    """A participant's DID and the Ed25519 key behind it (the channel identity's key)."""

    def __init__(self, channel_identity: ChannelIdentity):
        self.channel_identity = channel_identity
        self.public_key = channel_identity.public_key
        self.did = did_of(self.public_key)

    @classmethod
    def from_mnemonic(cls, mnemonic: str, account: int = 0, index: int = 0) -> DIDIdentity:
        return cls(ChannelIdentity.from_mnemonic(mnemonic, account, index))

    @property
    def method_id(self) -> str:
        return method_id_of(self.did)

    def document(self) -> dict:
        return did_document(self.public_key)

    def sign_jwt(self, claims: dict) -> str:
        return pyjwt.encode(
            claims, self.channel_identity.signing_key, algorithm=JWT_ALGORITHM, headers={"kid": self.method_id}
        )

    def issue_model_access(
        self,
        holder_did: str,
        model_id: str,
        *,
        expires_at: int,
        not_before: int | None = None,
        credential_id: str | None = None,
    ) -> str:
        """A model-access credential for ``holder_did`` on ``model_id``, valid until ``expires_at``
        (unix seconds)."""
        claims = {
            "iss": self.did,
            "sub": holder_did,
            "jti": credential_id or f"urn:uuid:{uuid.uuid4()}",
            "nbf": int(time.time()) if not_before is None else not_before,
            "exp": int(expires_at),
            "vc": {
                "@context": [VC_CONTEXT],
                "type": ["VerifiableCredential", CREDENTIAL_TYPE],
                "credentialSubject": {"model": model_id},
            },
        }
        return self.sign_jwt(claims)


def _compact(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ModelAccessCredential:
    id: str
    issuer: str
    holder: str
    model: str
    not_before: int
    expires_at: int


def verify_jwt(token: str, issuer_document: dict) -> dict:
    """The claims of an EdDSA JWT signed by a verification method of ``issuer_document``;
    CredentialError (or a subclass) for anything else, whatever the token holds."""
    if not isinstance(token, str):
        raise CredentialError("not a compact JWS (header.claims.signature)")
    try:
        header = pyjwt.get_unverified_header(token)  # to find the key: nothing in it is trusted yet
    except pyjwt.PyJWTError as error:
        raise CredentialError(f"not a compact JWS (header.claims.signature): {error}") from None
    if header.get("alg") != JWT_ALGORITHM:
        raise CredentialError(f"JWT algorithm {header.get('alg')!r}: only EdDSA (Ed25519) is accepted")
    issuer = issuer_document.get("id", "")
    kid = header.get("kid")
    if isinstance(kid, str) and kid.startswith("#"):
        kid = issuer + kid
    key = document_methods(issuer_document).get(kid) if isinstance(kid, str) else None
    if key is None or not str(kid).startswith(issuer + "#"):
        raise ForeignCredentialError(f"signed with {kid!r}, not a verification method of {issuer}")
    try:
        claims = pyjwt.decode(
            token, Ed25519PublicKey.from_public_bytes(key), algorithms=[JWT_ALGORITHM], options=_DECODE_OPTIONS
        )
    except pyjwt.InvalidSignatureError:
        raise CredentialError("the credential's signature does not verify") from None
    except (pyjwt.PyJWTError, ValueError) as error:
        raise CredentialError(f"not a valid credential: {error}") from None
    return claims


def verify_model_access(
    jwt: str | bytes,
    issuer_document: dict,
    *,
    model_id: str,
    holder_did: str,
    now: float | None = None,
    revoked: frozenset[str] | set[str] = frozenset(),
) -> ModelAccessCredential:
    """The credential, if it grants ``holder_did`` access to ``model_id``; else CredentialError."""
    if isinstance(jwt, bytes):
        jwt = jwt.decode(errors="replace")
    if not jwt:
        raise CredentialError("no access credential presented")
    claims = verify_jwt(jwt, issuer_document)
    now = time.time() if now is None else now
    vc = claims.get("vc")
    if (
        not isinstance(vc, dict)
        or not isinstance(vc.get("credentialSubject"), dict)
        or not isinstance(vc.get("type"), list)
    ):
        raise ForeignCredentialError(f"not a {CREDENTIAL_TYPE}: its vc claim has no type list and subject")
    subject = vc["credentialSubject"]
    if claims.get("iss") != issuer_document.get("id"):
        raise ForeignCredentialError(
            f"issued by {claims.get('iss')}, not by the model's owner {issuer_document.get('id')}"
        )
    if CREDENTIAL_TYPE not in vc["type"]:
        raise ForeignCredentialError(f"not a {CREDENTIAL_TYPE}")
    if subject.get("model") != model_id:
        raise ForeignCredentialError(f"grants model {subject.get('model')!r}, not {model_id!r}")
    if claims.get("sub") != holder_did:
        raise ForeignCredentialError(f"issued to {claims.get('sub')}, presented by {holder_did}")
    if not isinstance(claims.get("exp"), int) or isinstance(claims.get("exp"), bool):
        raise CredentialError("the credential has no expiry (exp)")
    if not isinstance(claims.get("nbf", 0), int) or isinstance(claims.get("nbf", 0), bool):
        raise CredentialError("the credential's nbf is not a time")
    if now >= claims["exp"] + CLOCK_SKEW_SECONDS:
        raise ExpiredCredentialError(f"the credential expired at {claims['exp']} (now {int(now)})")
    if now + CLOCK_SKEW_SECONDS < claims.get("nbf", 0):
        raise ExpiredCredentialError(f"the credential is not valid before {claims['nbf']}")
    if claims.get("jti") in revoked:
        raise RevokedCredentialError(f"the credential {claims.get('jti')} was revoked by its issuer")
    return ModelAccessCredential(
        claims.get("jti", ""), claims["iss"], claims["sub"], model_id, claims.get("nbf", 0), claims["exp"]
    )


# ---- the owner's access channel ----


def access_channel_name(model_id: str) -> str:
    return ACCESS_CHANNEL_PREFIX + model_id


class ModelAccessRegistry:
    """The model owner's side: a public channel announcing its DID document, the model's private
    mark and every revocation, each entry signed by the owner's key."""

    def __init__(self, transport: ChannelTransport, owner: DIDIdentity, model_id: str):
        self.owner, self.model_id = owner, model_id
        self.channel = Channel.create(transport, owner.channel_identity, access_channel_name(model_id), private=False)

    @property
    def channel_id(self) -> str:
        return "0x" + self.channel.channel_id.hex()

    def _post(self, body: dict) -> None:
        self.channel.publish(public=_compact(body))

    def mark_private(self) -> None:
        self._post({"kind": "private-model", "model": self.model_id, "document": self.owner.document()})

    def revoke(self, *credential_ids: str) -> None:
        self._post({"kind": "revocation", "credentials": list(credential_ids)})


class ModelAccessPolicy:
    """The edge node's side: follows the owner's access channel and checks credentials."""

    def __init__(self, transport: ChannelTransport, owner_document: dict, model_id: str):
        self.owner_document, self.model_id = owner_document, model_id
        owner_key = check_document(owner_document)
        self.reader = ChannelReader(transport, derive_channel_id(owner_key, access_channel_name(model_id)))
        self.private = False
        self.revoked: set[str] = set()

    def refresh(self) -> None:
        for message in self.reader.verified_messages():
            if message.type is not MessageType.PACKET or message.sender != self.reader.state.author:
                continue
            try:
                body = json.loads(message.public)
            except ValueError:
                continue
            if body.get("kind") == "private-model" and body.get("model") == self.model_id:
                self.private = True
            elif body.get("kind") == "revocation":
                self.revoked.update(str(item) for item in body.get("credentials") or [])

    def check(self, credential: bytes | str, holder_key: str | bytes) -> ModelAccessCredential | None:
        """None for a public model; the credential for a private one; CredentialError otherwise."""
        self.refresh()
        if not self.private:
            return None
        key = holder_key if isinstance(holder_key, bytes) else bytes.fromhex(holder_key.removeprefix("0x"))
        return verify_model_access(
            credential, self.owner_document, model_id=self.model_id, holder_did=did_of(key), revoked=self.revoked
        )

    def admits(self, holder_key: bytes, credential: bytes) -> bool:
        """Admission policy for the model channel's keyloads (``IOTAInferenceHandler``): True, or
        ``AdmissionRefusedError`` saying why, which the handler passes on to the subscriber."""
        try:
            self.check(credential, holder_key)
        except CredentialError as error:
            raise AdmissionRefusedError(f"{ACCESS_DENIED}: {error}") from None
        return True
