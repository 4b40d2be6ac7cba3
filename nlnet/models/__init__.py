"""nlnet's models; importing this module registers them."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from . import backbones, heads, layers, necks  # noqa: F401
