"""Client settings shared by the Kafka source, sinks and checkpoint store.

:class:`KafkaSecurity` (TLS, SASL) validates its combination of settings and turns it into
kafka-python client keyword arguments; :func:`client_config` is the part of every client's
configuration that the three share (the broker list, the client id, the security). Pure: no
kafka-python here (that is :mod:`streamem.kafka.client`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamem.errors import ConfigError

__all__ = ["KafkaSecurity", "client_config"]

_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """Connection security shared by the Kafka source, sinks and checkpoint store.

    Parameters
    ----------
    security_protocol
        ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
    sasl_mechanism
        ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (SASL protocols only).
    sasl_username, sasl_password
        SASL credentials; the password is masked in ``repr``.
    ssl_cafile, ssl_certfile, ssl_keyfile
        PEM files: the CA bundle, and a client certificate and key for mutual TLS.

    Examples
    --------
    >>> s = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "app", "hunter2")
    >>> "hunter2" in repr(s)
    False
    >>> s.client_kwargs()["sasl_plain_password"]
    'hunter2'
    >>> KafkaSecurity("SASL_SSL", "PLAIN", "app").validate("source")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: source.sasl_password: required when sasl_mechanism is set; ...
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __repr__(self) -> str:
        masked = None if self.sasl_password is None else "***"
        return (f"KafkaSecurity(security_protocol={self.security_protocol!r}, "
                f"sasl_mechanism={self.sasl_mechanism!r}, sasl_username={self.sasl_username!r}, "
                f"sasl_password={masked!r}, ssl_cafile={self.ssl_cafile!r}, "
                f"ssl_certfile={self.ssl_certfile!r}, ssl_keyfile={self.ssl_keyfile!r})")

    def validate(self, prefix: str = "source") -> KafkaSecurity:
        """Check the combination; raise :class:`ConfigError` naming the key, else return self.

        Parameters
        ----------
        prefix
            Config section used in error paths (``source``, ``sinks[2]``, ``checkpoint``).

        Returns
        -------
        KafkaSecurity
            ``self``, for chaining.

        Examples
        --------
        >>> KafkaSecurity("SSL", ssl_certfile="c.pem").validate("sinks[0]")
        Traceback (most recent call last):
        ...
        streamem.errors.ConfigError: sinks[0].ssl_keyfile: required when ssl_certfile is set; ...
        """
        proto, mech = self.security_protocol, self.sasl_mechanism
        if proto not in _PROTOCOLS:
            raise ConfigError(f"{prefix}.security_protocol",
                              f"{proto!r} is not one of {', '.join(_PROTOCOLS)}")
        sasl = proto.startswith("SASL_")
        if sasl and mech is None:
            raise ConfigError(f"{prefix}.sasl_mechanism", f"required when security_protocol is "
                              f"{proto}; set one of {', '.join(_MECHANISMS)}")
        if mech is not None:
            if mech not in _MECHANISMS:
                raise ConfigError(f"{prefix}.sasl_mechanism",
                                  f"{mech!r} is not one of {', '.join(_MECHANISMS)}")
            if not sasl:
                raise ConfigError(f"{prefix}.sasl_mechanism", f"needs security_protocol "
                                  f"SASL_PLAINTEXT or SASL_SSL, not {proto}")
            for key in ("sasl_username", "sasl_password"):
                if not getattr(self, key):
                    raise ConfigError(f"{prefix}.{key}", "required when sasl_mechanism is set; "
                                      "pass it via ${ENV_VAR} in the config")
        elif self.sasl_username or self.sasl_password:
            raise ConfigError(f"{prefix}.sasl_mechanism", "required when sasl_username or "
                              f"sasl_password is set; set one of {', '.join(_MECHANISMS)}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            have, need = (("ssl_certfile", "ssl_keyfile") if self.ssl_keyfile is None
                          else ("ssl_keyfile", "ssl_certfile"))
            raise ConfigError(f"{prefix}.{need}", f"required when {have} is set; "
                              "mutual TLS needs both the certificate and its key")
        uses_ssl = proto in ("SSL", "SASL_SSL")
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key) is not None and not uses_ssl:
                raise ConfigError(f"{prefix}.{key}", f"only used with security_protocol SSL or "
                                  f"SASL_SSL, not {proto}")
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients.

        Returns
        -------
        dict
            Only the keys that are set.

        Examples
        --------
        >>> KafkaSecurity().client_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        kw: dict[str, Any] = {"security_protocol": self.security_protocol}
        pairs = {"sasl_mechanism": self.sasl_mechanism,
                 "sasl_plain_username": self.sasl_username,
                 "sasl_plain_password": self.sasl_password, "ssl_cafile": self.ssl_cafile,
                 "ssl_certfile": self.ssl_certfile, "ssl_keyfile": self.ssl_keyfile}
        kw.update({k: v for k, v in pairs.items() if v is not None})
        return kw


def client_config(bootstrap_servers: str | Sequence[str], security: KafkaSecurity,
                  **settings: Any) -> dict[str, Any]:
    """kafka-python client keyword arguments: the brokers, ``settings``, then the security.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` entries, as a list or one comma-separated string.
    security
        Validated connection security.
    **settings
        Client-specific settings (``client_id``, timeouts, ...).

    Examples
    --------
    >>> cfg = client_config("b1:9092, b2:9092", KafkaSecurity(), client_id="streamem")
    >>> cfg["bootstrap_servers"], cfg["client_id"], cfg["security_protocol"]
    (['b1:9092', 'b2:9092'], 'streamem', 'PLAINTEXT')
    """
    servers = ([s.strip() for s in bootstrap_servers.split(",")]
               if isinstance(bootstrap_servers, str) else list(bootstrap_servers))
    return {"bootstrap_servers": servers, **settings, **security.client_kwargs()}
