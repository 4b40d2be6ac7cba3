"""Official Caffe2 checkpoints -> nlnet models and mmengine checkpoints (one step each)."""
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from ..checkpoint_errors import CorruptCheckpointError
from .caffe2_blobs import (Caffe2ConversionError, caffe2_to_model_state_dict,
                           caffe2_to_state_dict, caffe2_to_torchvision_resnet)
from .caffe2_pickle import load_caffe2_blobs, read_caffe2_blobs_if_official

__all__ = ['build_recognizer', 'convert_official_video_model', 'convert_official_imagenet_model',
           'configs_fitting', 'official_checkpoint']


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
    model = build_recognizer(config)
    state_dict, dropped = caffe2_to_model_state_dict(blobs, model.state_dict(), pkl)
    model.load_state_dict(state_dict, strict=True)
    logger.info(f'{pkl}: {len(state_dict)} tensors loaded strictly into the model of {config}; '
                f'{len(dropped)} optimiser-state blobs dropped: {dropped}')
    return model, dropped


def configs_fitting(pkl, configs):
    """The configs among ``configs`` whose models the official checkpoint ``pkl`` fits
    exactly, and for the others the reason (models built on the meta device)."""
    blobs = load_caffe2_blobs(pkl)
    fitting, reasons = [], {}
    for config in configs:
        try:
            caffe2_to_model_state_dict(blobs, build_recognizer(config, 'meta').state_dict(), pkl)
        except Caffe2ConversionError as error:
            reasons[config] = str(error)
        else:
            fitting.append(config)
    return fitting, reasons


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
    imagenet = np.ndim(blobs.get('conv1_w')) == 4
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
