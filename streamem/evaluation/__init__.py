"""streamem.evaluation."""
