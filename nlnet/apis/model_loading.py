"""A config's model with its checkpoint loaded strictly, ready for inference.

MMAction2's ``init_recognizer`` and MMSeg's ``init_model`` build the model and
load the checkpoint with ``strict=False``: a checkpoint of another network only
logs a warning and the demo then predicts with random weights. Here every
missing or unexpected key and every shape mismatch is an error naming the
checkpoint and the config. A raw official Caffe2 ``.pkl`` is converted on the
fly by the checkpoint loader that :mod:`nlnet.openmmlab` installs
(:func:`nlnet.converters.official_checkpoint`).
"""
import os.path as osp
import pickle

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from nlnet.analysis.complexity import config_task
from nlnet.checkpoint_errors import CorruptCheckpointError
from nlnet.utils.config_values import load_config
from nlnet.utils.preflight import PreflightError

__all__ = ['load_model', 'check_device']


def check_device(device):
    """``device`` as a :class:`torch.device`, refused when it is not available here.

    Raises:
        ValueError: an unknown device name, or CUDA asked for where there is none.
    """
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f'--device {device!r}: not a device name (cpu, cuda, cuda:1, ...)') \
            from error
    if parsed.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device!r}: CUDA is not available on this machine; use cpu')
    return parsed


def _read_config(config):
    if isinstance(config, Config):
        return config
    try:
        return load_config(str(config))
    except PreflightError as error:
        raise ValueError(str(error)) from error


def _without_pretrained_weights(model_cfg):
    """The checkpoint holds every weight: no ImageNet download at build or init time."""
    if 'pretrained' in model_cfg:
        model_cfg.pretrained = None
    backbone = model_cfg.get('backbone')
    if backbone is not None:
        if backbone.get('pretrained'):
            backbone.pretrained = None
        if backbone.get('init_cfg'):
            backbone.init_cfg = None
    return model_cfg


def load_model(config, checkpoint, device='cpu'):
    """Build ``config``'s model and load ``checkpoint`` into it strictly, in eval mode.

    Args:
        config (str | Config): an nlnet config (recognition or segmentation).
        checkpoint (str): an mmengine ``.pth`` of that model, or a raw official
            Caffe2 ``.pkl`` (video models).
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...

    Returns:
        nn.Module: the model on ``device``; ``model.cfg`` is the config (as
        ``init_recognizer`` and ``init_model`` set it, so MMAction2's and MMSeg's
        inference functions take the model too).

    Raises:
        ValueError: the config or checkpoint file does not exist, the checkpoint is
            unreadable, or it does not fit the model (the message names both files
            and the missing / unexpected keys or the mismatched shapes).
    """
    device = check_device(device)
    cfg = _read_config(config)
    name = cfg.filename or 'the config'
    init_default_scope(cfg.get('default_scope'))
    model_cfg = cfg.model.module if cfg.model.get('type') == 'SegTTAModel' else cfg.model
    model = MODELS.build(_without_pretrained_weights(model_cfg))
    if not osp.isfile(checkpoint):
        raise ValueError(f'checkpoint {checkpoint!r} does not exist')
    try:
        loaded = load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                                 revise_keys=[(r'^module\.', '')], logger='silent')
    except (CorruptCheckpointError, pickle.UnpicklingError) as error:
        # UnsafeCheckpointError (a refused global) is an UnpicklingError.
        raise ValueError(f'checkpoint {checkpoint!r} cannot be read: {error}') from error
    except (RuntimeError, KeyError, ValueError) as error:  # load_state_dict: a wrong network
        raise ValueError(f'checkpoint {checkpoint!r} does not fit the model of {name}: '
                         f'{error}') from error
    if config_task(cfg) == 'segmentation':
        model.dataset_meta = _segmentation_meta(cfg, loaded)
    model.cfg = cfg
    return model.to(device).eval()


def _segmentation_meta(cfg, checkpoint):
    """Class names and palette: the checkpoint's (MMSeg saves them), else the config's dataset."""
    meta = (checkpoint or {}).get('meta', {}).get('dataset_meta')
    if meta and 'palette' in meta:
        return meta
    from mmseg.registry import DATASETS
    dataset = DATASETS.get(cfg.test_dataloader.dataset.type)
    return dict(classes=dataset.METAINFO['classes'], palette=dataset.METAINFO['palette'])
