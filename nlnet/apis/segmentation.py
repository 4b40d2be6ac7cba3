"""A user's image through a segmentation config's test pipeline: the mask and the
non-local blocks' inputs, from one ``test_step``.

MMSeg's ``inference_model`` reads the top-level ``cfg.test_pipeline`` (and edits
it in place); ``tools/test.py`` runs ``test_dataloader.dataset.pipeline``. This
runs the latter, without ``LoadAnnotations``, so the mask is the one testing
gives for the same image.
"""
import copy
import os.path as osp
from dataclasses import dataclass

import cv2
import numpy as np
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from nlnet.visualization import non_local_blocks

from .attention_maps import test_step_with_block_inputs

__all__ = ['ImageSegmentation', 'read_image', 'segment_image']


@dataclass
class ImageSegmentation:
    """One image's segmentation.

    Attributes:
        path (str): the file.
        image (np.ndarray): (H, W, 3) uint8 RGB, the file as read.
        mask (np.ndarray): (H, W) int64 class per pixel (``pred_sem_seg``).
        input_size (tuple[int]): (h, w), the image as the model saw it (resized).
        block_inputs (dict[str, Tensor]): module path -> the block's input x over the
            whole input; empty when the segmentor ran in several sliding windows.
        windows (int): the windows the segmentor ran the blocks on (``test_cfg.mode``
            ``'slide'`` on an image larger than its crop), 1 for whole-image inference.
    """
    path: str
    image: np.ndarray
    mask: np.ndarray
    input_size: tuple
    block_inputs: dict
    windows: int = 1

    @property
    def note(self):
        """Why there is no attention to draw, or None."""
        if self.block_inputs or self.windows <= 1:
            return None
        return (f'note: the segmentor ran on {self.windows} sliding windows of {self.path} '
                "(test_cfg.mode='slide'), each with its own attention; no attention is drawn "
                "over the whole image (a config with test_cfg.mode='whole' has it)")

    def to_input(self, query):
        """An image pixel ``(y, x)`` in the model input's coordinates."""
        scale_y = self.input_size[0] / self.image.shape[0]
        scale_x = self.input_size[1] / self.image.shape[1]
        return [float(query[0]) * scale_y, float(query[1]) * scale_x]

    def to_image(self, point):
        """A model input position ``(y, x)`` in image pixels."""
        return [float(point[0]) * self.image.shape[0] / self.input_size[0],
                float(point[1]) * self.image.shape[1] / self.input_size[1]]


def read_image(path):
    """(H, W, 3) uint8 RGB of ``path``.

    Raises:
        ValueError: the file is missing, empty or no image OpenCV decodes.
    """
    path = str(path)
    if not osp.isfile(path):
        raise ValueError(f'image {path!r} does not exist')
    if osp.getsize(path) == 0:
        raise ValueError(f'image {path!r} is empty (0 bytes)')
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'image {path!r} cannot be read: not an image format OpenCV decodes')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def segment_image(model, path):
    """Segment ``path`` with ``model`` (:func:`~nlnet.apis.load_model` of a segmentation
    config) through its config's test pipeline.

    Returns:
        ImageSegmentation
    """
    image = read_image(path)
    cfg = model.cfg
    if cfg.model.get('type') == 'SegTTAModel':
        raise ValueError(f'{cfg.filename}: a test-time augmentation config (SegTTAModel: several '
                         'scales and flips); the image demo segments at the single scale of '
                         'its base config: pass that one')
    init_default_scope(cfg.get('default_scope'))
    pipeline = [transform for transform in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if 'LoadAnnotations' not in str(transform['type'])]
    data = pseudo_collate([Compose(pipeline)(dict(img_path=str(path)))])
    calls = []
    counters = [block.register_forward_pre_hook(lambda *args: calls.append(1))
                for block in list(non_local_blocks(model).values())[:1]]
    try:
        samples, block_inputs = test_step_with_block_inputs(model, data)
    finally:
        for counter in counters:
            counter.remove()
    sample = samples[0]
    windows = max(1, len(calls))
    return ImageSegmentation(
        path=str(path), image=image, mask=sample.pred_sem_seg.data[0].cpu().numpy(),
        input_size=tuple(int(s) for s in sample.metainfo['img_shape'][:2]),
        block_inputs=block_inputs if windows == 1 else {}, windows=windows)
