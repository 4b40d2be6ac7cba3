"""Decode heads; importing this module registers them."""
from .nl_head import NonLocalHead  # noqa: F401
