"""Verification: run a source and a converted model on the same inputs and compare."""
