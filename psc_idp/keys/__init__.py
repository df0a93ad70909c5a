"""Token-signing keys: the Signer seam, the key ring and JWS assembly."""
