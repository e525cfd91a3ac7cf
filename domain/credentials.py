"""Encryption of mall credentials at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken


class CredentialCipher:
    """Encrypts credential mappings with a key derived from the deployment's secret key."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"kizuki-credentials:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, credentials: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        """The stored mapping; raises ValueError if the token was not made with this key."""
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("credentials were encrypted with another secret key") from exc
        return {str(k): str(v) for k, v in data.items()}
