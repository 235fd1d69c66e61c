"""streamem.state."""
