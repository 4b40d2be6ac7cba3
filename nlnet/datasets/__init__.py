"""nlnet's datasets and transforms; importing this module registers them in mmaction."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .charades import CharadesDataset
from .robust_video_dataset import BrokenVideoError, RobustVideoDataset
from .transforms import ClipHueRotation

__all__ = ['CharadesDataset', 'RobustVideoDataset', 'BrokenVideoError', 'ClipHueRotation']
