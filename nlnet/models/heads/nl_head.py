"""NonLocalNet decode head for semantic segmentation, built on nlnet's :class:`NonLocalBlock`.

A drop-in replacement for MMSeg's ``NLHead`` (``mmseg/models/decode_heads/nl_head.py``):
same constructor arguments and the same state-dict layout (``convs.0``, ``nl_block.*``,
``convs.1``, ``conv_cat``, ``conv_seg``), so MMSeg's NonLocalNet checkpoints load
as they are and give the same logits. It differs in memory, not in results: the
pairwise matrix of the non-local block is never stored (see
:mod:`nlnet.models.layers.kernels`), and the input/output concatenation before
``conv_cat`` is never materialised.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

from ..layers.non_local import MODES, POOL_POSITIONS, NonLocalBlock


@MODELS.register_module()
class NonLocalHead(FCNHead):
    """Non-local head: conv3x3 -> non-local block -> conv3x3 -> concat(input) conv3x3 -> classifier.

    Args:
        reduction (int): bottleneck factor of the non-local block,
            C' = channels // reduction. Default: 2.
        use_scale (bool): scale embedded-Gaussian logits by 1/sqrt(C').
            Default: True.
        mode (str): pairwise function: ``embedded_gaussian`` (default),
            ``dot_product``, ``gaussian`` or ``concatenation``.
        sub_sample (bool): max-pool the keys/values 2x2 (paper, Sec. 3.3).
            MMSeg's NLHead does not sub-sample. Default: False.
        pool_position (str): with ``sub_sample``, ``before`` pools the input of
            phi/g (official code; cheaper) or ``after`` pools their outputs
            (mmcv's ``NonLocal2d``). Default: 'before'.
        **kwargs: arguments of :class:`mmseg.models.decode_heads.BaseDecodeHead`
            (in_channels, channels, num_classes, in_index, dropout_ratio,
            norm_cfg, align_corners, loss_decode, ...). ``conv_cfg`` applies to
            the 3x3 convolutions; the block's 1x1 embeddings are plain Conv2d,
            as with mmcv's default.

    Shape:
        inputs[in_index]: (N, in_channels, H, W) -> logits (N, num_classes, H, W).
    """

    def __init__(self,
                 reduction=2,
                 use_scale=True,
                 mode='embedded_gaussian',
                 sub_sample=False,
                 pool_position='before',
                 **kwargs):
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if pool_position not in POOL_POSITIONS:
            raise ValueError(f'pool_position must be one of {POOL_POSITIONS}, got {pool_position!r}')
        if kwargs.get('num_convs', 2) != 2:
            raise ValueError(f"num_convs must be 2 (conv, non-local, conv), got {kwargs['num_convs']}")
        kwargs['num_convs'] = 2
        super().__init__(**kwargs)
        self.reduction = reduction
        self.use_scale = use_scale
        self.mode = mode
        self.nl_block = NonLocalBlock(
            self.channels,
            dim=2,
            mode=mode,
            reduction=reduction,
            use_scale=use_scale,
            sub_sample=sub_sample,
            pool_position=pool_position,
            norm_cfg=self.norm_cfg)

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
