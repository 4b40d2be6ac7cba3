"""ImageNet initialisation of the video ResNets (paper Sec. 4): 2D kernels inflated to t x k x k.

Each of the t planes of an inflated kernel is the 2D kernel divided by t, so a
video whose frames are all the same image gives the 2D network's features.
Accepted state-dict layouts are torchvision's (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``, ``fc.*``) and
mmpretrain/MMCls' (the same under ``backbone.``, wrapped in ``state_dict``).
"""
import os
import os.path as osp
import re
from urllib.parse import urlparse

import torch
from mmcv.cnn import ConvModule
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import get_torchvision_models

from ..layers import NonLocalBlock

_BLOCK_CONV = re.compile(r'(layer\d+\.\d+)\.(conv(\d+)|downsample)')


def resolve_pretrained(source):
    """Local path of ``source``: a path, an http(s) URL or ``torchvision://<arch>``.

    URLs are downloaded once into torch hub's checkpoint directory (``$TORCH_HOME``)
    and read from there afterwards.

    Raises:
        FileNotFoundError: a local path that does not exist.
        RuntimeError: a URL that can not be downloaded (no network); the
            message says where to put the file by hand.
    """
    if source.startswith('torchvision://'):
        arch = source[len('torchvision://'):]
        urls = get_torchvision_models()
        if arch not in urls:
            raise ValueError(f'pretrained: {source!r} names no torchvision model; allowed '
                             f'archs include {sorted(a for a in urls if "resnet" in a)}')
        source = urls[arch]
    if source.startswith(('http://', 'https://')):
        cached = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(source).path))
        if not osp.isfile(cached):
            os.makedirs(osp.dirname(cached), exist_ok=True)
            try:
                torch.hub.download_url_to_file(source, cached, progress=False)
            except (OSError, ValueError) as error:
                raise RuntimeError(
                    f'pretrained: could not download {source} ({error}). Without network '
                    f'access, download the file elsewhere and put it at {cached} (torch hub '
                    'checkpoint directory, set by $TORCH_HOME), or copy it anywhere and set '
                    'model.backbone.pretrained to its local path in the config.') from error
        return cached
    path = osp.expanduser(source)
    if not osp.isfile(path):
        raise FileNotFoundError(f'pretrained: {source} does not exist; give the path or URL '
                                'of a 2D ResNet state dict (torchvision or mmpretrain layout)')
    return path


def load_2d_state_dict(source):
    """The 2D ResNet state dict at ``source`` (see :func:`resolve_pretrained`), in
    torchvision's key layout."""
    checkpoint = CheckpointLoader.load_checkpoint(resolve_pretrained(source), map_location='cpu')
    return to_torchvision_layout(checkpoint, source)


def to_torchvision_layout(checkpoint, source='state dict'):
    """Unwrap ``state_dict``/``model`` and strip mmpretrain's ``backbone.`` prefix."""
    state_dict = checkpoint
    for wrapper in ('state_dict', 'model'):
        if isinstance(state_dict.get(wrapper), dict):
            state_dict = state_dict[wrapper]
    if 'conv1.weight' in state_dict:
        return dict(state_dict)
    if 'backbone.conv1.weight' in state_dict:
        return {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    raise ValueError(f'pretrained: {source} is not a 2D ResNet state dict in torchvision or '
                     f'mmpretrain layout (no conv1.weight or backbone.conv1.weight); its first '
                     f'keys are {list(state_dict)[:5]}')


def _names_2d(name):
    """2D (conv, bn) names of the backbone ConvModule ``name``."""
    if name == 'conv1':
        return 'conv1', 'bn1'
    match = _BLOCK_CONV.fullmatch(name)
    if match is None:
        return None
    block, conv, index = match.groups()
    if conv == 'downsample':
        return f'{block}.downsample.0', f'{block}.downsample.1'
    return f'{block}.conv{index}', f'{block}.bn{index}'


def _backbone_conv_modules(backbone):
    """(name, ConvModule) of the ResNet itself, leaving out the non-local blocks."""
    skip = [f'{name}.' for name, m in backbone.named_modules() if isinstance(m, NonLocalBlock)]
    return [(name, m) for name, m in backbone.named_modules()
            if isinstance(m, ConvModule) and not any(name.startswith(s) for s in skip)]


@torch.no_grad()
def inflate_2d_resnet(backbone, state_dict_2d, source='state dict'):
    """Copy a 2D ResNet into ``backbone`` (a :class:`VideoResNet`), inflating kernels.

    A (O, I, k, k) kernel becomes (O, I, t, k, k) with every t-plane equal to the
    2D kernel / t; BN parameters and statistics are copied. Non-local blocks are
    left alone.

    Args:
        backbone (nn.Module): the video ResNet.
        state_dict_2d (dict): torchvision-layout state dict (see
            :func:`to_torchvision_layout`).
        source (str): where the state dict came from, for error messages.

    Returns:
        set[str]: 2D keys not used (the classifier ``fc.*``).

    Raises:
        KeyError: 2D weights of a backbone layer are missing.
        ValueError: a 2D kernel does not match the backbone's shape.
    """
    used, missing = set(), []
    for name, module in _backbone_conv_modules(backbone):
        names = _names_2d(name)
        if names is None:
            raise KeyError(f'pretrained: no 2D counterpart for backbone layer {name}')
        conv_2d, norm_2d = names
        weight = module.conv.weight
        key = f'{conv_2d}.weight'
        if key not in state_dict_2d:
            missing.append(key)
            continue
        kernel = state_dict_2d[key]
        if tuple(kernel.shape) != tuple(weight.shape[:2] + weight.shape[3:]):
            raise ValueError(f'pretrained: {source}: {key} has shape {tuple(kernel.shape)}, the '
                             f'backbone needs {tuple(weight.shape)} (t x k x k of it); is the '
                             'depth right?')
        t = weight.shape[2]
        weight.copy_(kernel.unsqueeze(2).expand_as(weight) / t)
        used.add(key)
        for param_name, tensor in list(module.norm.named_parameters()) + list(
                module.norm.named_buffers()):
            key = f'{norm_2d}.{param_name}'
            if key in state_dict_2d:
                tensor.copy_(state_dict_2d[key])
                used.add(key)
            elif param_name != 'num_batches_tracked':
                missing.append(key)
    if missing:
        raise KeyError(f'pretrained: {source} lacks {len(missing)} backbone weights, e.g. '
                       f'{missing[:5]}; is it a 2D ResNet of depth {getattr(backbone, "depth", "?")}?')
    return set(state_dict_2d) - used
