"""Official Caffe2 checkpoints -> nlnet models and mmengine checkpoints (one step each)."""
import os.path as osp
import re

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from ..checkpoint_errors import CorruptCheckpointError
from .caffe2_blobs import (Caffe2ConversionError, caffe2_to_model_state_dict,
                           caffe2_to_state_dict, caffe2_to_torchvision_resnet)
from .caffe2_pickle import load_caffe2_blobs, read_caffe2_blobs_if_official

__all__ = ['build_recognizer', 'convert_official_video_model', 'convert_official_imagenet_model',
           'configs_fitting', 'choose_config', 'config_named_by', 'ConfigChoiceError',
           'is_imagenet_model', 'official_checkpoint']

# The released video models' file names: <arch>_<baseline|nonlocal>_<frames>x<interval>_...,
# e.g. i3d_nonlocal_32x2_IN_pretrain_400k.pkl, c2d_baseline_8x8_IN_pretrain_400k.pkl.
OFFICIAL_MODEL_NAME = re.compile(
    r'(?P<arch>c2d|i3d)_(?P<kind>baseline|nonlocal)_(?P<frames>\d+)x(?P<interval>\d+)_')


class ConfigChoiceError(ValueError):
    """No config, or no single config, can be chosen for an official pickle; the message says
    which fit and what to pass."""


def is_imagenet_model(blobs):
    """Whether official blobs are an ImageNet ResNet (2-D ``conv1_w``, 4 dims), not a video model."""
    return np.ndim(blobs.get('conv1_w')) == 4


def _imagenet_hint(blobs, pkl):
    shape = tuple(np.shape(blobs['conv1_w']))
    return (f'{pkl} is an official ImageNet ResNet (conv1_w of shape {shape}: 2-D kernels), '
            'not a video model: convert it with --imagenet (for model.backbone.pretrained)')


def build_recognizer(config, device=None):
    """The recognizer of ``config`` (path or Config), built by mmaction's registry;
    ``device='meta'`` builds it without memory, for shape checks.

    nlnet's models are registered by then: importing this module runs ``nlnet/__init__``
    first, which registers them, and a call comes after that import has finished.
    """
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    with torch.device(device or 'cpu'):
        return MODELS.build(cfg.model)


def convert_official_video_model(pkl, config, logger=None):
    """Load an official video checkpoint into the model of ``config``, strictly.

    Returns:
        tuple[nn.Module, list[str]]: the model with the checkpoint's weights, and the
        dropped optimiser-state blob names.

    Raises:
        Caffe2ConversionError: a blob missing, left over or of the wrong shape (named).
    """
    logger = logger or MMLogger.get_current_instance()
    blobs = load_caffe2_blobs(pkl)
    if is_imagenet_model(blobs):
        raise Caffe2ConversionError(_imagenet_hint(blobs, pkl))
    model = build_recognizer(config)
    state_dict, dropped = caffe2_to_model_state_dict(blobs, model.state_dict(), pkl)
    model.load_state_dict(state_dict, strict=True)
    logger.info(f'{pkl}: {len(state_dict)} tensors loaded strictly into the model of {config}; '
                f'{len(dropped)} optimiser-state blobs dropped: {dropped}')
    return model, dropped


def configs_fitting(pkl, configs, blobs=None):
    """The configs among ``configs`` whose models the official checkpoint ``pkl`` fits
    exactly, and for the others the reason (models built on the meta device).

    ``blobs``: those of ``pkl`` where already read."""
    blobs = load_caffe2_blobs(pkl) if blobs is None else blobs
    fitting, reasons = [], {}
    for config in configs:
        try:
            caffe2_to_model_state_dict(blobs, build_recognizer(config, 'meta').state_dict(), pkl)
        except Caffe2ConversionError as error:
            reasons[config] = str(error)
        else:
            fitting.append(config)
    return fitting, reasons


def config_named_by(pkl, configs):
    """The config among ``configs`` (official config files) that an official model's file
    name names, or None: ``i3d_nonlocal_32x2_...pkl`` -> ``nl-i3d_r50-official*-32x2x1-*``."""
    match = OFFICIAL_MODEL_NAME.match(osp.basename(pkl))
    if match is None:
        return None
    model = ('nl-' if match['kind'] == 'nonlocal' else '') + match['arch']
    sampling = f'-{match["frames"]}x{match["interval"]}x1-'
    named = [config for config in configs if osp.basename(config).startswith(
        f'{model}_r50-official') and sampling in osp.basename(config)]
    return named[0] if len(named) == 1 else None


def choose_config(pkl, configs):
    """The config among ``configs`` that an official video pickle is converted with, and why.

    The official models of a family share their parameters (8x8 and 32x2, 32x4 and 128x1)
    and differ in clip sampling and temporal strides, which the weights do not show:
    among the configs the weights fit, the official file name decides
    (:func:`config_named_by`); a single fitting config is taken as it is.

    Returns:
        tuple[str, str]: the config and the reason it was chosen.

    Raises:
        ConfigChoiceError: an ImageNet model (the message names --imagenet), no config
            fits (with each config's reason), or several fit and the file name names none
            of them (they are listed).
    """
    blobs = load_caffe2_blobs(pkl)
    if is_imagenet_model(blobs):
        raise ConfigChoiceError(_imagenet_hint(blobs, pkl))
    fitting, reasons = configs_fitting(pkl, configs, blobs)
    if not fitting:
        raise ConfigChoiceError(
            f'{pkl} fits none of the configs; pass --config:\n' +
            '\n'.join(f'  {osp.basename(path)}: {reason}' for path, reason in reasons.items()))
    named = config_named_by(pkl, configs)
    names = [osp.basename(path) for path in fitting]
    if named in fitting:
        return named, f'named by the file name {osp.basename(pkl)}'
    if named is not None:
        raise ConfigChoiceError(
            f'{pkl}: the file name names {osp.basename(named)}, which the weights do not fit '
            f'({reasons[named]}); they fit {names}: pass --config')
    if len(fitting) == 1:
        return fitting[0], 'the only config the weights fit'
    raise ConfigChoiceError(
        f'{pkl} fits {len(fitting)} configs, which differ in clip sampling and temporal strides '
        f'that the weights do not show: {names}. The file name is no official model name '
        '(<c2d|i3d>_<baseline|nonlocal>_<frames>x<interval>_...): pass --config')


def convert_official_imagenet_model(pkl, logger=None):
    """An official Caffe2 ImageNet ResNet-50/101 as a torchvision-layout state dict
    (what ``VideoResNet(pretrained=...)`` inflates), and the dropped blob names."""
    logger = logger or MMLogger.get_current_instance()
    state_dict, dropped = caffe2_to_torchvision_resnet(load_caffe2_blobs(pkl), pkl)
    logger.info(f'{pkl}: {len(state_dict)} tensors in torchvision ResNet layout; '
                f'{len(dropped)} optimiser-state blobs dropped: {dropped}')
    return state_dict, dropped


def official_checkpoint(filename, logger=None):
    """An official Caffe2 pickle as the checkpoint dict mmengine loads, or None when
    ``filename`` is not one (decided by content: a pickled dict of numpy blobs).

    A video model (5-dim ``conv1_w``) gets nlnet's recognizer keys, which the runner then
    loads (strictly in ``tools/test.py``); an ImageNet ResNet (4-dim ``conv1_w``) gets
    torchvision's layout, which ``VideoResNet(pretrained=...)`` inflates.

    Raises:
        UnsafeCaffe2PickleError: the pickle names a global other than numpy's.
        CorruptCheckpointError: it holds blobs that are no official parameter names.
    """
    blobs = read_caffe2_blobs_if_official(filename)
    if blobs is None:
        return None
    imagenet = is_imagenet_model(blobs)
    try:
        state_dict, dropped = (caffe2_to_torchvision_resnet if imagenet else
                               caffe2_to_state_dict)(blobs, filename)
    except Caffe2ConversionError as error:
        raise CorruptCheckpointError(str(error)) from error
    kind = 'ImageNet ResNet, in torchvision layout' if imagenet else 'video model'
    (logger or MMLogger.get_current_instance()).info(
        f'{filename} is an official Caffe2 checkpoint ({kind}): converted on the fly, '
        f'{len(state_dict)} tensors, {len(dropped)} optimiser-state blobs dropped')
    return dict(state_dict=state_dict, meta=dict(converted_from='caffe2', dropped_blobs=dropped))
