"""Text logs: line formats (regex and presets) to typed records, and message templates.

:mod:`streamem.parsing.formats` holds the formats (``regex``, ``nginx``, ``apache``,
``apache_error``, ``syslog``, ``logfmt``), :mod:`streamem.parsing.times` their timestamps,
:mod:`streamem.parsing.templates` the Drain3 template miner (imported only when
``fields.template`` is set), and :mod:`streamem.parsing.decoder` the wiring from the config.
:mod:`streamem.parsing.eventmeta` checks the keys, ids and timestamps taken from any event, and
:mod:`streamem.parsing.expr` is the safe filter language of ``rules[]`` and ``aggregate`` ``where``.
"""

from __future__ import annotations

from streamem.parsing.decoder import TEXT_FORMATS, LineDecoder, check_config, evidence, from_config
from streamem.parsing.formats import PRESETS, TYPES, LogfmtFormat, TextFormat, regex_format

__all__ = [
    "PRESETS",
    "TEXT_FORMATS",
    "TYPES",
    "LineDecoder",
    "LogfmtFormat",
    "TextFormat",
    "check_config",
    "evidence",
    "from_config",
    "regex_format",
]
