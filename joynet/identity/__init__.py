"""Identity: DID documents and model-access credentials (``joynet.identity.credentials``)."""
