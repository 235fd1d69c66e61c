"""streamem.sinks."""
