"""The text-format path of a source: raw lines to records, from the config.

:func:`from_config` builds the :class:`LineDecoder` of ``source.format`` (``regex`` with
``source.pattern``, or a preset), with ``source.types`` applied and, with
``fields.template``, a :class:`~streamem.parsing.templates.TemplateMiner` that adds the
``template`` id and ``template_text`` fields. :func:`check_config` holds the config rules of
these keys; :func:`evidence` picks the template fields an anomaly record carries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamem.errors import ConfigError
from streamem.parsing.formats import (
    PRESETS,
    TYPES,
    LineError,
    LogfmtFormat,
    Record,
    TextFormat,
    regex_format,
)

if TYPE_CHECKING:
    from streamem.config.sections import Config
    from streamem.parsing.templates import TemplateMiner

__all__ = ["TEXT_FORMATS", "LineDecoder", "check_config", "evidence", "from_config"]

#: the ``source.format`` values read by this package (``jsonl`` and ``csv`` are not)
TEXT_FORMATS = ("regex", *PRESETS)


class LineDecoder:
    """Map raw lines to records (or ``(reason, detail)`` for a line that cannot be used).

    Parameters
    ----------
    format
        The line format.
    templates
        The template miner, or None.
    max_event_bytes
        Longer lines are ``too_large`` (never matched).

    Examples
    --------
    >>> from streamem.parsing.formats import PRESETS
    >>> dec = LineDecoder(PRESETS["logfmt"], max_event_bytes=20)
    >>> dec([b"a=1 b=2", b"a=" + b"x" * 30])
    [{'a': '1', 'b': '2'}, ('too_large', '32 bytes > max_event_bytes=20')]
    """

    def __init__(self, format: TextFormat | LogfmtFormat, *,
                 templates: TemplateMiner | None = None,
                 max_event_bytes: int = 1_048_576) -> None:
        self.format = format
        self.templates = templates
        self.max_event_bytes = max_event_bytes

    @property
    def timestamp(self) -> str | None:
        """The format's timestamp field (the default of ``fields.timestamp``)."""
        return self.format.timestamp

    def __call__(self, payloads: Sequence[bytes]) -> list[Record | LineError]:
        """Records or rejections, one per payload, in order."""
        limit = self.max_event_bytes
        if payloads and max(map(len, payloads)) > limit:
            fits = [p for p in payloads if len(p) <= limit]
            done = iter(self.format.parse(fits))
            out: list[Record | LineError] = [
                next(done) if len(p) <= limit else
                ("too_large", f"{len(p)} bytes > max_event_bytes={limit}") for p in payloads]
        else:
            out = self.format.parse(payloads)
        if self.templates is not None:
            self.templates.annotate(out)
        return out

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint keeps (the template miner's state; {} without one)."""
        return {} if self.templates is None else {"templates": self.templates.to_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`to_state` (a state without templates leaves the miner new)."""
        if self.templates is not None and state.get("templates") is not None:
            from streamem.parsing.templates import TemplateMiner

            field = self.templates.field  # the configured one, should it have changed
            self.templates = TemplateMiner.from_state(state["templates"])
            self.templates.field = field


def _format_of(cfg: Config) -> TextFormat | LogfmtFormat:
    s = cfg.source
    fmt = regex_format(s.pattern or "") if s.format == "regex" else PRESETS[s.format]
    return fmt.with_types(s.types or {})


def from_config(cfg: Config) -> LineDecoder | None:
    """The decoder of ``cfg.source.format``, or None for ``jsonl`` and ``csv``."""
    if cfg.source.format not in TEXT_FORMATS:
        return None
    miner = None
    if cfg.fields.template:
        from streamem.parsing.templates import TemplateMiner

        miner = TemplateMiner(cfg.fields.template)
    return LineDecoder(_format_of(cfg), templates=miner,
                       max_event_bytes=cfg.source.max_event_bytes)


def evidence(record: Record) -> dict[str, Any]:
    """The template fields of ``record`` for its anomaly record (none if it has none).

    Examples
    --------
    >>> evidence({"template": 3, "template_text": "user <*> logged in", "a": 1}), evidence({})
    ({'template': 3, 'template_text': 'user <*> logged in'}, {})
    """
    out = dict(record.get("$bucket", ()))  # a bucket's bounds, key, samples (runtime.aggregation)
    if "template_text" not in record:
        return out
    return {**out, "template": record.get("template"), "template_text": record["template_text"]}


def check_config(cfg: Config) -> None:
    """The rules of ``source.format``, ``source.pattern``, ``source.types`` and
    ``fields.template``.

    Raises
    ------
    ConfigError
        The first rule broken, with the YAML path and the fix.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> parse_config({"source": {"type": "stdin", "format": "regex", "pattern": "(x"},
    ...               "fields": {"features": ["a"]}})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: source.pattern: does not compile (missing ), ...
    """
    s, text = cfg.source, cfg.source.format in TEXT_FORMATS
    if s.format == "regex":
        if not s.pattern:
            raise ConfigError("source.pattern", "required for source.format regex; give a "
                              r"regular expression with named groups, e.g. '(?P<level>\w+) "
                              r"(?P<message>.*)'")
        try:
            groups = re.compile(s.pattern).groupindex
        except re.error as exc:
            raise ConfigError("source.pattern", f"does not compile ({exc}); check the "
                              "brackets and escapes (YAML: single-quote the pattern)") from None
        if not groups:
            raise ConfigError("source.pattern", "has no named group; name each field as "
                              "(?P<name>...)")
    elif s.pattern is not None:
        raise ConfigError("source.pattern", f"only read with source.format regex, not "
                          f"{s.format!r}; remove it or set format: regex")
    if s.types and not text:
        raise ConfigError("source.types", f"only for text formats ({', '.join(TEXT_FORMATS)})"
                          f"; {s.format} values carry their own types")
    fmt = _format_of(cfg) if text else None
    known = list(fmt.fields) if fmt is not None else []
    for name, kind in (s.types or {}).items():
        if kind not in TYPES:
            raise ConfigError(f"source.types.{name}", f"{kind!r} is not a type; use one of "
                              f"{', '.join(TYPES)}")
        if known and name not in known:
            raise ConfigError(f"source.types.{name}", f"not a field of the {s.format} format;"
                              f" its fields are {', '.join(known)}")
    t = cfg.fields.template
    if t:
        if not text:
            raise ConfigError("fields.template", "needs a text source.format (one of "
                              f"{', '.join(TEXT_FORMATS)}); templates of {s.format} "
                              "records are not mined yet")
        if known and t not in known:
            raise ConfigError("fields.template", f"{t!r} is not a field of the {s.format} "
                              f"format; use one of {', '.join(known)}")
        if cfg.model.scope != "global":
            raise ConfigError("fields.template", "needs model.scope global (one template "
                              "miner per daemon, checkpointed with the global state)")
