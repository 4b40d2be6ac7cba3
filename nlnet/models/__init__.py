"""nlnet's models; importing this module registers them."""
from . import backbones, heads, layers, necks  # noqa: F401
