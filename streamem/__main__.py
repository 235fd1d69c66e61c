"""``python -m streamem``."""

from streamem.cli import run

run()
