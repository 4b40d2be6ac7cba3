"""Helpers shared by several test modules (data generators, tiny configs, hooks)."""
