// Interoperability of JoyNet's model-access credentials with IOTA Identity (@iota/identity-wasm),
// offline. Reads one JSON request on stdin, writes one JSON answer on stdout:
//   {"op": "validate", "jwt": "...", "issuerDocument": {...}}
//       -> {"valid": true, "credential": {...}} | {"valid": false, "error": "..."}
//     identity-wasm's JwtCredentialValidator with its EdDSAJwsVerifier: signature, issuer method,
//     expiry and issuance date, as an IOTA Identity verifier would check a JoyNet credential.
//   {"op": "issue", "holder": "did:...", "model": "...", "expiresAt": "2030-01-01T00:00:00Z"}
//       -> {"jwt": "...", "issuerDocument": {...}, "credentialId": "urn:uuid:..."}
//     a DID document with a fresh Ed25519 key (identity-wasm's JwkMemStore) issuing a
//     ModelAccessCredential, for JoyNet to validate.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import * as identity from "@iota/identity-wasm/node/index.js";

const {
  CoreDocument, Credential, EdDSAJwsVerifier, FailFast, Jwt, JwkMemStore, JwsAlgorithm, JwsSignatureOptions,
  JwtCredentialValidationOptions, JwtCredentialValidator, KeyIdMemStore, MethodScope, Storage, Timestamp,
} = identity;

async function validate({ jwt, issuerDocument }) {
  try {
    const validator = new JwtCredentialValidator(new EdDSAJwsVerifier());
    const decoded = validator.validate(new Jwt(jwt), CoreDocument.fromJSON(issuerDocument),
      new JwtCredentialValidationOptions(), FailFast.FirstError);
    return { valid: true, credential: decoded.credential().toJSON() };
  } catch (error) {
    return { valid: false, error: String(error?.message ?? error) };
  }
}

async function issue({ holder, model, expiresAt }) {
  // An issuer of identity-wasm's own (a key in its memory store), not a JoyNet identity.
  const document = new CoreDocument({ id: "did:example:model-owner" });
  const storage = new Storage(new JwkMemStore(), new KeyIdMemStore());
  const fragment = await document.generateMethod(storage, JwkMemStore.ed25519KeyType(), JwsAlgorithm.EdDSA,
    "#key-1", MethodScope.AssertionMethod());
  const credentialId = `urn:uuid:${randomUUID()}`;
  const credential = new Credential({
    id: credentialId,
    type: "ModelAccessCredential",
    issuer: document.id(),
    credentialSubject: { id: holder, model },
    expirationDate: Timestamp.parse(expiresAt),
  });
  const jwt = await document.createCredentialJwt(storage, fragment, credential, new JwsSignatureOptions());
  return { jwt: jwt.toString(), issuerDocument: document.toJSON(), credentialId };
}

const request = JSON.parse(readFileSync(0, "utf8"));
const operations = { validate, issue };
if (!(request.op in operations)) {
  console.log(JSON.stringify({ error: `unknown op ${request.op}` }));
  process.exitCode = 2;
} else {
  console.log(JSON.stringify(await operations[request.op](request)));
}
