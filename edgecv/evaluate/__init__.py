"""Metrics per task (numpy only, shared with export fidelity), plots, and run evaluation."""
