"""The consumer's trust anchor: the chain's CA and its CRL, as the function's environment names
them.

`TRUST_ANCHOR_CA_PEM` is the CA certificate (PEM) that issues terminals' certificates: the same
one the Roles Anywhere trust anchor holds (the template takes it as a parameter and gives it to
both). `CRL_PARAMETER` names an SSM parameter holding the current CRL (PEM), the same CRL the
Roles Anywhere `CRL` resource holds; it is read again at most every `CRL_REFRESH_SECONDS`, so
revoking a stolen terminal's certificate (docs/architecture.md: "A stolen terminal") reaches
warm functions within minutes. Without `CRL_PARAMETER` nothing is revoked.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud.errors import ConsumerConfigError
from wire.signing import SignerIdentity, SigningKeyError, TrustAnchor

CA_ENV = "TRUST_ANCHOR_CA_PEM"
CRL_ENV = "CRL_PARAMETER"
CRL_REFRESH_SECONDS = 300.0


class RefreshingTrust:
    """A `TrustAnchor` whose CRL is re-read from SSM every `CRL_REFRESH_SECONDS`.

    If the parameter cannot be read, the anchor last read stays in use (a warm function keeps
    verifying through an SSM hiccup); a cold start that cannot read it fails, rather than
    trusting a certificate that may be revoked."""

    def __init__(
        self,
        ca_pem: bytes,
        ssm: Any,
        parameter: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ca_pem = ca_pem
        self._ssm = ssm
        self._parameter = parameter
        self._clock = clock
        self._anchor = self._read()
        self._read_at = clock()

    def _read(self) -> TrustAnchor:
        reply = self._ssm.get_parameter(Name=self._parameter)
        return TrustAnchor.from_pem(self._ca_pem, str(reply["Parameter"]["Value"]).encode())

    def verify(self, detail: Mapping[str, Any], now: datetime | None = None) -> SignerIdentity:
        if self._clock() - self._read_at >= CRL_REFRESH_SECONDS:
            # on failure the last good anchor stays; the next call tries again
            with contextlib.suppress(BotoCoreError, ClientError, SigningKeyError):
                self._anchor = self._read()
            self._read_at = self._clock()
        return self._anchor.verify(detail, now)


def trust_from_env(
    env: Mapping[str, str] = os.environ, ssm: Any = None
) -> TrustAnchor | RefreshingTrust:
    ca_pem = env.get(CA_ENV)
    if not ca_pem:
        raise ConsumerConfigError(f"the environment lacks {CA_ENV}")
    try:
        parameter = env.get(CRL_ENV)
        if parameter:
            if ssm is None:
                raise ConsumerConfigError(f"{CRL_ENV} is set but no SSM client was given")
            return RefreshingTrust(ca_pem.encode(), ssm, parameter)
        return TrustAnchor.from_pem(ca_pem.encode())
    except (ValueError, SigningKeyError) as error:
        raise ConsumerConfigError(f"{CA_ENV} or the CRL is not usable: {error}") from error
