"""nlnet's datasets and transforms; importing this module registers them in mmaction."""
from .charades import CharadesDataset
from .readable_acc_metric import ReadableAccMetric, ReadableVideosOnly
from .robust_video_dataset import BrokenVideoError, RobustVideoDataset
from .transforms import ClipHueRotation

__all__ = ['CharadesDataset', 'RobustVideoDataset', 'BrokenVideoError', 'ReadableAccMetric',
           'ReadableVideosOnly', 'ClipHueRotation']
