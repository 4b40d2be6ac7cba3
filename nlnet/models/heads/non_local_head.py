"""NonLocalNet decode head for semantic segmentation, built on nlnet's :class:`NonLocalBlock`.

A drop-in replacement for MMSeg's ``NLHead`` (``mmseg/models/decode_heads/nl_head.py``):
the same state-dict layout (``convs.0``, ``nl_block.*``, ``convs.1``, ``conv_cat``,
``conv_seg``), so MMSeg's NonLocalNet checkpoints load as they are and give the
same logits. Its block options are one ``non_local_cfg`` dict, as in nlnet's other
models: NLHead's ``reduction=2, use_scale=True, mode='embedded_gaussian'`` are
``non_local_cfg=dict(reduction=2, use_scale=True, mode='embedded_gaussian')``. It
differs in memory, not in results: the pairwise matrix of the non-local block is
never stored (see :mod:`nlnet.ops.kernels`), and the input/output
concatenation before ``conv_cat`` is never materialised.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

from ..layers import build_non_local_block, checked_non_local_cfg

# Block options that MMSeg's NLHead (reduction, use_scale, mode) and this head
# before non_local_cfg (sub_sample, pool_position) took as keyword arguments.
FLAT_BLOCK_ARGS = ('reduction', 'use_scale', 'mode', 'sub_sample', 'pool_position')
_DERIVED_NON_LOCAL_ARGS = ('in_channels', 'dim')


@MODELS.register_module()
class NonLocalHead(FCNHead):
    """Non-local head: conv3x3 -> non-local block -> conv3x3 -> concat(input) conv3x3 -> classifier.

    Args:
        non_local_cfg (dict | None): :class:`NonLocalBlock` options other than
            ``in_channels`` and ``dim`` (``mode``, ``reduction``, ``use_scale``,
            ``sub_sample``, ``pool_position``, ...); ``norm_cfg`` defaults to the
            head's. Default: the block's defaults, which are MMSeg's NLHead
            defaults (embedded Gaussian, reduction 2, scaled logits) without
            sub-sampling. Giving one of ``FLAT_BLOCK_ARGS`` to the head itself is
            an error that says to pass it here.
        **kwargs: arguments of :class:`mmseg.models.decode_heads.BaseDecodeHead`
            (in_channels, channels, num_classes, in_index, dropout_ratio,
            norm_cfg, align_corners, loss_decode, ...). ``conv_cfg`` applies to
            the 3x3 convolutions; the block's 1x1 embeddings are plain Conv2d,
            as with mmcv's default.

    Shape:
        inputs[in_index]: (N, in_channels, H, W) -> logits (N, num_classes, H, W).
    """

    def __init__(self, non_local_cfg=None, **kwargs):
        for key in FLAT_BLOCK_ARGS:
            if key in kwargs:
                raise ValueError(f'NonLocalHead: pass {key} inside '
                                 f'non_local_cfg=dict({key}=...), got {key}={kwargs[key]!r}')
        if kwargs.get('num_convs', 2) != 2:
            raise ValueError(f"num_convs must be 2 (conv, non-local, conv), got {kwargs['num_convs']}")
        non_local_cfg = checked_non_local_cfg(non_local_cfg, 'NonLocalHead',
                                              _DERIVED_NON_LOCAL_ARGS)
        kwargs['num_convs'] = 2
        super().__init__(**kwargs)
        self.nl_block = build_non_local_block({'norm_cfg': self.norm_cfg, **non_local_cfg},
                                              in_channels=self.channels, dim=2)

    def forward(self, inputs):
        """list of multi-level features -> (N, num_classes, H, W) logits."""
        x = self._transform_inputs(inputs)
        output = self.convs[0](x)
        output = self.nl_block(output)
        output = self.convs[1](output)
        if self.concat_input:
            output = self._conv_cat(x, output)
        return self.cls_seg(output)

    def _conv_cat(self, x, output):
        """``conv_cat(cat([x, output], 1))`` without storing the concatenation.

        A convolution over a channel concatenation is the sum of convolutions
        over the parts with the matching slices of its weight. Both parts are
        already kept for backward by ``convs[0]`` and ``convs[1]``, so this saves
        the (N, in_channels + channels, H, W) tensor and its gradient.
        """
        module = self.conv_cat
        conv = module.conv
        if not self._can_split(module):
            return module(torch.cat([x, output], dim=1))
        split = x.shape[1]
        weight = conv.weight
        out = F.conv2d(x, weight[:, :split], None, conv.stride, conv.padding, conv.dilation)
        out = out + F.conv2d(output, weight[:, split:], conv.bias, conv.stride, conv.padding,
                             conv.dilation)
        if module.with_norm:
            out = module.norm(out)
        if module.with_activation:
            out = module.activate(out)
        return out

    @staticmethod
    def _can_split(module):
        """The split form holds for a plain zero-padded, ungrouped Conv2d run as conv -> norm -> act."""
        conv = module.conv
        return (type(conv) is nn.Conv2d and conv.groups == 1 and conv.padding_mode == 'zeros'
                and tuple(module.order) == ('conv', 'norm', 'act'))
