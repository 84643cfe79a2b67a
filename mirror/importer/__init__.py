"""Targets on the high side: where verified content is loaded."""
