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
        block_inputs (dict[str, Tensor]): module path -> the block's input x.
    """
    path: str
    image: np.ndarray
    mask: np.ndarray
    input_size: tuple
    block_inputs: dict

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
    init_default_scope(cfg.get('default_scope'))
    pipeline = [transform for transform in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if 'LoadAnnotations' not in str(transform['type'])]
    data = pseudo_collate([Compose(pipeline)(dict(img_path=str(path)))])
    samples, block_inputs = test_step_with_block_inputs(model, data)
    sample = samples[0]
    return ImageSegmentation(
        path=str(path), image=image, mask=sample.pred_sem_seg.data[0].cpu().numpy(),
        input_size=tuple(int(s) for s in sample.metainfo['img_shape'][:2]),
        block_inputs=block_inputs)
