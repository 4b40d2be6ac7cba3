"""Blob names of the official Caffe2 video ResNets mapped onto nlnet's state-dict keys.

The official builder (facebookresearch/video-nonlocal-net, ``lib/models/resnet_video.py``,
``resnet_helper.py``, ``nonlocal_helper.py``) names its parameters

===========================================  ==========================================
Caffe2 blob                                  nlnet key (``backbone.`` prefix)
===========================================  ==========================================
``conv1_w``                                  ``conv1.conv.weight``
``res_conv1_bn_{s,b,rm,riv}``                ``conv1.bn.{weight,bias,running_mean,running_var}``
``res{S}_{i}_branch{2a,2b,2c}_w``            ``layer{S-1}.{i}.conv{1,2,3}.conv.weight``
``res{S}_{i}_branch1_w``                     ``layer{S-1}.{i}.downsample.conv.weight``
``res{S}_{i}_branch*_bn_*``                  ``....bn.*`` of the same conv
``nonlocal_conv{S}_{i}_{theta,phi,g,out}_*`` ``layer{S-1}.{i}.non_local_block.*.conv.*``
                                             (theta, phi, g; out -> ``conv_out``)
``nonlocal_conv{S}_{i}_bn_*``                ``layer{S-1}.{i}.non_local_block.conv_out.bn.*``
``pred_{w,b}``                               ``cls_head.fc_cls.{weight,bias}``
===========================================  ==========================================

Frozen-BN ("affine") models hold only ``_bn_s`` / ``_bn_b`` (Caffe2's ``AffineNd``), which
map onto :class:`~nlnet.models.layers.channel_affine.ChannelAffine`'s weight and bias.
The official W_z convolution has a bias also where a BatchNorm follows it; nlnet's has
none there (the BN's shift makes it redundant), so ``nonlocal_conv*_out_b`` is folded
into that BN's running mean (``rm - b``, formed in float64 and rounded once to the
state dict's dtype): in eval mode the same outputs up to that one rounding.
Optimiser state (``*_momentum``, ``model_iter``, ``lr``) is dropped and listed.
"""
import re

import numpy as np
import torch

from .caffe2_pickle import TRAINING_STATE_BLOBS

__all__ = ['Caffe2ConversionError', 'caffe2_to_state_dict', 'caffe2_to_model_state_dict',
           'caffe2_to_torchvision_resnet', 'blob_name_of_key']

_CONV_PARAMS = {'w': 'weight', 'b': 'bias'}
_NORM_PARAMS = {'s': 'weight', 'b': 'bias', 'rm': 'running_mean', 'riv': 'running_var'}
_BRANCHES = {'2a': 'conv1', '2b': 'conv2', '2c': 'conv3', '1': 'downsample'}
_NON_LOCAL_CONVS = {'theta': 'theta', 'phi': 'phi', 'g': 'g', 'out': 'conv_out'}
_CONV_SUFFIXES, _NORM_SUFFIXES, _BRANCH_NAMES, _NON_LOCAL_NAMES = (
    {key: blob for blob, key in names.items()}
    for names in (_CONV_PARAMS, _NORM_PARAMS, _BRANCHES, _NON_LOCAL_CONVS))

_STEM_CONV = re.compile(r'conv1_w')
_STEM_NORM = re.compile(r'res_conv1_bn_(?P<p>s|b|rm|riv)')
_BLOCK = re.compile(r'res(?P<stage>[2-5])_(?P<block>\d+)_branch(?P<branch>2a|2b|2c|1)'
                    r'(?P<bn>_bn)?_(?P<p>w|s|b|rm|riv)')
_NON_LOCAL = re.compile(r'nonlocal_conv(?P<stage>[2-5])_(?P<block>\d+)_'
                        r'(?P<conv>theta|phi|g|out|bn)_(?P<p>w|s|b|rm|riv)')
_PRED = re.compile(r'pred_(?P<p>w|b)')


class Caffe2ConversionError(ValueError):
    """The blobs of an official checkpoint do not fit the model (named in the message)."""


def _param(params, match, blob):
    try:
        return params[match['p']]
    except KeyError:
        raise Caffe2ConversionError(f'blob {blob}: suffix _{match["p"]} does not belong to '
                                    f'this layer (allowed: {sorted(params)})') from None


def _key_of_blob(blob):
    """nlnet key of a Caffe2 parameter blob (None if the name is not an official one)."""
    if _STEM_CONV.fullmatch(blob):
        return 'backbone.conv1.conv.weight'
    if m := _STEM_NORM.fullmatch(blob):
        return f'backbone.conv1.bn.{_NORM_PARAMS[m["p"]]}'
    if m := _BLOCK.fullmatch(blob):
        module = f'backbone.layer{int(m["stage"]) - 1}.{int(m["block"])}.{_BRANCHES[m["branch"]]}'
        if m['bn']:
            return f'{module}.bn.{_param(_NORM_PARAMS, m, blob)}'
        return f'{module}.conv.{_param({"w": "weight"}, m, blob)}'
    if m := _NON_LOCAL.fullmatch(blob):
        module = f'backbone.layer{int(m["stage"]) - 1}.{int(m["block"])}.non_local_block'
        if m['conv'] == 'bn':
            return f'{module}.conv_out.bn.{_param(_NORM_PARAMS, m, blob)}'
        return f'{module}.{_NON_LOCAL_CONVS[m["conv"]]}.conv.{_param(_CONV_PARAMS, m, blob)}'
    if m := _PRED.fullmatch(blob):
        return f'cls_head.fc_cls.{_CONV_PARAMS[m["p"]]}'
    return None


_KEY = re.compile(
    r'backbone\.(?:conv1\.(?P<stem>conv|bn)'
    r'|layer(?P<layer>[1-4])\.(?P<block>\d+)\.'
    r'(?:(?P<branch>conv[123]|downsample)\.(?P<kind>conv|bn)'
    r'|non_local_block\.(?P<nl>theta|phi|g|conv_out)\.(?P<nl_kind>conv|bn)))'
    r'\.(?P<param>\w+)'
    r'|cls_head\.fc_cls\.(?P<pred>weight|bias)')


def blob_name_of_key(key):
    """The official blob name that holds nlnet's ``key`` (None for keys Caffe2 has no
    blob for, such as ``num_batches_tracked``)."""
    m = _KEY.fullmatch(key)
    if m is None or m['param'] == 'num_batches_tracked':
        return None
    if m['pred']:
        return f'pred_{_CONV_SUFFIXES[m["pred"]]}'
    norm = _NORM_SUFFIXES.get(m['param'])
    if m['stem']:
        return 'conv1_w' if m['stem'] == 'conv' else f'res_conv1_bn_{norm}'
    stage_block = f'{int(m["layer"]) + 1}_{m["block"]}'
    if m['branch']:
        branch = _BRANCH_NAMES[m['branch']]
        if m['kind'] == 'conv':
            return f'res{stage_block}_branch{branch}_w'
        return f'res{stage_block}_branch{branch}_bn_{norm}'
    if m['nl_kind'] == 'bn':
        return f'nonlocal_conv{stage_block}_bn_{norm}'
    return (f'nonlocal_conv{stage_block}_{_NON_LOCAL_NAMES[m["nl"]]}_'
            f'{_CONV_SUFFIXES.get(m["param"])}')


def _split_blobs(blobs, source):
    """(parameter blobs, dropped names): optimiser state dropped, unknown names refused."""
    params, dropped, unknown = {}, [], []
    for name, value in blobs.items():
        if name in TRAINING_STATE_BLOBS or name.endswith('_momentum'):
            dropped.append(name)
        elif _key_of_blob(name) is None:
            unknown.append(name)
        else:
            params[name] = value
    if unknown:
        raise Caffe2ConversionError(
            f'{source}: blobs that are not parameters of the official video ResNet: '
            f'{sorted(unknown)}')
    return params, sorted(dropped)


def _fold_out_bias(params):
    """Fold each non-local W_z bias into the running mean of the BN after it (see module
    docstring); the bias stays where no BN follows (affine models)."""
    params = dict(params)
    for name in [n for n in params if n.endswith('_out_b')]:
        mean = name[:-len('out_b')] + 'bn_rm'
        if mean in params:
            params[mean] = np.asarray(params[mean], dtype=np.float64) - params.pop(name)
    return params


def caffe2_to_state_dict(blobs, source='blobs', dtype=torch.float32):
    """Official Caffe2 blobs -> nlnet state dict (``backbone.`` / ``cls_head.`` keys), by name.

    Args:
        blobs (dict[str, ndarray]): from :func:`~.caffe2_pickle.load_caffe2_blobs`.
        source (str): named in errors (the file).
        dtype (torch.dtype | None): dtype of the tensors; None keeps the blobs' (float32,
            float64 where an out bias was folded).

    Returns:
        tuple[dict[str, Tensor], list[str]]: the state dict (``pred_w`` as a 2-dim
        ``fc_cls.weight`` also where a test net saved it as a 1x1x1 convolution, and
        ``num_batches_tracked`` = 0 beside every running mean), and the dropped
        optimiser-state blob names.

    Raises:
        Caffe2ConversionError: a blob name that is no official parameter name.
    """
    params, dropped = _split_blobs(blobs, source)
    state_dict = {}
    for name, value in _fold_out_bias(params).items():
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        tensor = tensor if dtype is None else tensor.to(dtype)
        key = _key_of_blob(name)
        if key == 'cls_head.fc_cls.weight':
            tensor = tensor.reshape(tensor.shape[0], -1)
        state_dict[key] = tensor
        if key.endswith('.running_mean'):
            state_dict[key[:-len('running_mean')] + 'num_batches_tracked'] = torch.tensor(0)
    return state_dict, dropped


def _shape(value):
    return tuple(value.shape)


def caffe2_to_model_state_dict(blobs, model_state, source='blobs'):
    """Official blobs -> a state dict that loads strictly into a model of ``model_state``.

    Args:
        blobs (dict[str, ndarray]): the official checkpoint's blobs.
        model_state (dict[str, Tensor]): the target model's ``state_dict()``
            (meta tensors are enough: only keys, shapes and dtypes are read).
        source (str): named in errors.

    Returns:
        tuple[dict[str, Tensor], list[str]]: as :func:`caffe2_to_state_dict`, in the
        model's dtypes.

    Raises:
        Caffe2ConversionError: naming every model key without its blob, every blob
            that fits no model key, and every blob whose shape differs from its key's.
    """
    state_dict, dropped = caffe2_to_state_dict(blobs, source, dtype=None)
    # A missing num_batches_tracked follows from its missing running mean, named instead.
    missing = [f'{blob_name_of_key(k)} (for {k})' for k in model_state
               if k not in state_dict and blob_name_of_key(k) is not None]
    unexpected = [f'{blob_name_of_key(k)} (would be {k})' for k in state_dict
                  if k not in model_state and not k.endswith('num_batches_tracked')]
    mismatched = [f'{blob_name_of_key(k)}: shape {_shape(v)} in {source}, {k} needs '
                  f'{_shape(model_state[k])}' for k, v in state_dict.items()
                  if k in model_state and _shape(v) != _shape(model_state[k])]
    problems = [f'{title}: {items}' for title, items in (
        ('blobs missing from the file', missing), ('blobs the model has no place for',
                                                    unexpected),
        ('blobs of the wrong shape', mismatched)) if items]
    if problems:
        raise Caffe2ConversionError(f'{source} does not fit the model: ' + '; '.join(problems))
    return {k: state_dict[k].to(model_state[k].dtype) for k in model_state}, dropped


_TORCHVISION_KEYS = [
    (re.compile(r'backbone\.conv1\.conv\.'), 'conv1.'),
    (re.compile(r'backbone\.conv1\.bn\.'), 'bn1.'),
    (re.compile(r'backbone\.(layer\d\.\d+)\.conv(\d)\.conv\.'), r'\1.conv\2.'),
    (re.compile(r'backbone\.(layer\d\.\d+)\.conv(\d)\.bn\.'), r'\1.bn\2.'),
    (re.compile(r'backbone\.(layer\d\.\d+)\.downsample\.conv\.'), r'\1.downsample.0.'),
    (re.compile(r'backbone\.(layer\d\.\d+)\.downsample\.bn\.'), r'\1.downsample.1.'),
    (re.compile(r'cls_head\.fc_cls\.'), 'fc.'),
]


def _torchvision_key(key):
    for pattern, replacement in _TORCHVISION_KEYS:
        if pattern.match(key):
            return pattern.sub(replacement, key, count=1)
    raise AssertionError(f'no torchvision key for {key}')  # _split_blobs admits no other


def caffe2_to_torchvision_resnet(blobs, source='blobs'):
    """An official Caffe2 ImageNet ResNet (``pretrained_model.tar.gz``) -> torchvision's
    2D ResNet layout, which ``VideoResNet(pretrained=...)`` inflates.

    Caffe2 ImageNet checkpoints saved with BN frozen into affine layers have no
    ``_rm``/``_riv``; their running statistics become 0 and 1, as the official loader
    leaves a SpatialBN's statistics at their initial values when a file lacks them.

    Returns:
        tuple[dict[str, Tensor], list[str]]: the state dict and the dropped blob names.

    Raises:
        Caffe2ConversionError: unknown blob names, or blobs of a video network
            (3D kernels, non-local blocks).
    """
    state_dict, dropped = caffe2_to_state_dict(blobs, source)
    video = [blob_name_of_key(k) for k, v in state_dict.items() if blob_name_of_key(k) and (
        'non_local_block' in k or (k.endswith('conv.weight') and v.dim() == 5))]
    if video:
        raise Caffe2ConversionError(f'{source} is a video network, not a 2D ImageNet ResNet '
                                    f'(3D kernels or non-local blobs: {sorted(video)[:5]})')
    converted = {_torchvision_key(k): v for k, v in state_dict.items()}
    for key in state_dict:
        if key.endswith('.bn.weight') and key.replace('weight', 'running_mean') not in state_dict:
            prefix = _torchvision_key(key)[:-len('weight')]
            converted[prefix + 'running_mean'] = torch.zeros_like(state_dict[key])
            converted[prefix + 'running_var'] = torch.ones_like(state_dict[key])
            converted[prefix + 'num_batches_tracked'] = torch.tensor(0)
    return converted, dropped
