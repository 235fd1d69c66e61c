"""Typed, frozen configuration loaded from YAML.

* Unknown keys are rejected with the closest valid key; every error names the YAML path
  (``sinks[1].url``) and the fix.
* ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) in a string value is read from the environment;
  use it for secrets, which are then masked in ``repr`` and logs.
* ``STREAMEM_<SECTION>__<KEY>=value`` environment variables override the file
  (the value is parsed as YAML, so ``STREAMEM_DETECTOR__ALERT_RATE=1e-4`` is a float).

Layout (import from here; the modules are the parts):

- :mod:`.sections`: :class:`Config` and its frozen section dataclasses (the defaults);
- :mod:`.build`: the typed builder (types, unknown keys, YAML paths in errors);
- :mod:`.env`: ``${ENV_VAR}`` interpolation and :class:`Secret`;
- :mod:`.rules`: the value rules of sink settings (shared with the sink classes) and the
  bounded way a value is shown in an error;
- :mod:`.validate`: every range and cross-key rule, the one validation that ``check-config``
  and ``run`` share;
- :mod:`.load`: :func:`load_config`, :func:`parse_config`, :func:`dump_config` and the
  ``STREAMEM_...`` overrides (the only module that imports yaml; it refuses files over
  1 MiB, aliases and deep nesting).
"""

from __future__ import annotations

from streamem.config.env import Secret
from streamem.config.load import dump_config, load_config, parse_config
from streamem.config.sections import (
    AlertingConfig,
    BatchConfig,
    CheckpointConfig,
    Config,
    DeadLetterConfig,
    DetectorConfig,
    FieldsConfig,
    LoggingConfig,
    MetricsConfig,
    ModelConfig,
    SinkConfig,
    SourceConfig,
)

# the section classes were importable from the old single module too; now __all__ says so
__all__ = [
    "AlertingConfig",
    "BatchConfig",
    "CheckpointConfig",
    "Config",
    "DeadLetterConfig",
    "DetectorConfig",
    "FieldsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "Secret",
    "SinkConfig",
    "SourceConfig",
    "dump_config",
    "load_config",
    "parse_config",
]
