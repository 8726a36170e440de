"""An opt-in SASL/PLAIN listener on the local broker, next to the PLAINTEXT one.

The credentials live in the listener's inline JAAS config
(``listener.name.sasl_plaintext.plain.sasl.jaas.config``), where the broker's built-in PLAIN
callback handler checks them (``user_<name>="<password>"``). The PLAINTEXT listener, the
inter-broker listener and the controller listener are unchanged, so clients that use the
default bootstrap address see no difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.services import ServicesError

__all__ = ["LISTENER", "SaslPlain"]

#: The listener's name, which is also its security protocol in the protocol map.
LISTENER = "SASL_PLAINTEXT"
# The JAAS value is a quoted string inside a Java properties line: no quotes, backslashes,
# whitespace or control characters, which would end it early or need escaping.
_SAFE = re.compile(r"[!#-\[\]-~]+")


@dataclass(frozen=True, slots=True)
class SaslPlain:
    """One SASL/PLAIN user the broker accepts on its SASL listener."""

    port: int
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for what, value in (("username", self.username), ("password", self.password)):
            if not _SAFE.fullmatch(value):
                raise ServicesError(
                    f"Kafka SASL {what} must be non-empty printable ASCII without quotes, "
                    "backslashes or spaces (it goes into the broker's JAAS config)"
                )

    def jaas_config(self) -> str:
        user, password = self.username, self.password
        return (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}" user_{user}="{password}";'
        )

    def broker_properties(self) -> dict[str, str]:
        """The properties to add for the listener (listener lists are extended by the caller)."""
        prefix = f"listener.name.{LISTENER.lower()}"
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            f"{prefix}.sasl.enabled.mechanisms": "PLAIN",
            f"{prefix}.plain.sasl.jaas.config": self.jaas_config(),
        }
