"""Tools on exported artifacts: bench (and, to come, inspect and explain)."""
