"""streamem.sources."""
