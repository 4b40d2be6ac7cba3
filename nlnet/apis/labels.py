"""Class names and the top-k labels of a video.

The Kinetics-400 and Charades label maps ship in ``nlnet/apis/label_maps``
(sources in its README). A config picks its map by its dataset: Charades'
``CharadesDataset`` takes the 157 Charades classes, a config reading
``kinetics400`` data the 400 Kinetics names; any other map is given by file.
"""
import os.path as osp
from typing import NamedTuple

import numpy as np
import torch

__all__ = ['LABEL_MAP_DIR', 'KINETICS400_LABEL_MAP', 'CHARADES_LABEL_MAP', 'Label',
           'load_label_map', 'default_label_map', 'label_names', 'video_scores',
           'scores_are_independent', 'top_labels', 'predict_labels']

LABEL_MAP_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'label_maps')
KINETICS400_LABEL_MAP = osp.join(LABEL_MAP_DIR, 'label_map_k400.txt')
CHARADES_LABEL_MAP = osp.join(LABEL_MAP_DIR, 'Charades_v1_classes.txt')


class Label(NamedTuple):
    """One predicted class: its index, name and score (softmax or sigmoid probability)."""
    index: int
    name: str
    score: float


def load_label_map(path):
    """Class names, line i naming class i (trailing blank lines ignored).

    Raises:
        ValueError: the file does not exist or names no class.
    """
    if not osp.isfile(path):
        raise ValueError(f'label map {path!r} does not exist')
    with open(path, encoding='utf-8') as handle:
        names = [line.strip() for line in handle.read().rstrip().splitlines()]
    if not names or not names[0]:
        raise ValueError(f'label map {path!r} names no class (one name per line expected)')
    return names


def default_label_map(cfg):
    """The shipped label map for ``cfg``'s test dataset, or None when none fits."""
    dataset = cfg.test_dataloader.dataset
    if dataset.get('type') == 'CharadesDataset':
        return CHARADES_LABEL_MAP
    where = ' '.join(str(dataset.get(key, '')) for key in ('ann_file', 'data_root'))
    where += ' ' + ' '.join(str(v) for v in (dataset.get('data_prefix') or {}).values())
    if 'kinetics400' in where.replace('-', '').replace('_', ''):
        return KINETICS400_LABEL_MAP
    return None


def label_names(cfg, num_classes, label_map=None):
    """Names of the model's ``num_classes`` classes: from ``label_map`` (a file), else the
    config's shipped map (:func:`default_label_map`) when it has as many names, else
    ``'class <i>'``.

    Raises:
        ValueError: ``label_map`` names another number of classes than the model has.
    """
    if label_map is None:
        default = default_label_map(cfg)
        names = load_label_map(default) if default else []
        return names if len(names) == num_classes else [
            f'class {index}' for index in range(num_classes)]
    names = load_label_map(label_map)
    if len(names) != num_classes:
        raise ValueError(f'label map {label_map!r} names {len(names)} classes, but the model of '
                         f'{cfg.filename or "the config"} has {num_classes}; pass a matching '
                         '--label-map')
    return names


@torch.no_grad()
def video_scores(model, video):
    """The recognizer's class scores for one video, as ``tools/test.py --dump`` stores them.

    Args:
        model (nn.Module): a recognizer (:func:`~nlnet.apis.load_model`).
        video (VideoInput): from :func:`~nlnet.apis.read_video`.

    Returns:
        np.ndarray: (num_classes,) float32, the test views combined by the head.
    """
    sample = model.test_step(video.data)[0]
    return sample.pred_score.detach().cpu().numpy()


def scores_are_independent(model):
    """Whether the head scores each class on its own (sigmoid, multi-label: Charades)
    rather than as a softmax distribution."""
    return type(model.cls_head).__name__ == 'MultiLabelI3DHead'


def top_labels(scores, names, k=5):
    """The ``k`` highest scores as :class:`Label`, highest first (ties: lower index first)."""
    scores = np.asarray(scores)
    order = sorted(range(len(scores)), key=lambda index: (-float(scores[index]), index))
    return [Label(index, names[index], float(scores[index])) for index in order[:k]]


def predict_labels(model, video, names, top_k=5):
    """:func:`top_labels` of :func:`video_scores`."""
    return top_labels(video_scores(model, video), names, top_k)
