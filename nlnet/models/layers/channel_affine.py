"""Per-channel affine map: BatchNorm frozen into y = x * weight + bias.

The official Caffe2 code fine-tunes its long-clip models (128x1, 32x4) with every
BatchNorm replaced by such a layer (``AffineNd``, blobs ``*_bn_s`` / ``*_bn_b``).
Registered as ``ChannelAffine`` for ``norm_cfg``; its abbreviation is ``bn`` so that a
ConvModule keeps the ``<conv>.bn.weight`` / ``.bias`` keys of a BatchNorm.
"""
import torch
import torch.nn as nn
from mmengine.registry import MODELS


@MODELS.register_module()
class ChannelAffine(nn.Module):
    """y = x * weight + bias with one weight and bias per channel (axis 1).

    Args:
        num_features (int): C, channels of the input.
        eps (float | None): accepted because ``build_norm_layer`` passes a BN's
            ``eps`` to every norm layer; an affine map has no variance to guard, so
            it is not used.

    Shape:
        input and output: (N, C, *S).
    """
    _abbr_ = 'bn'

    def __init__(self, num_features, eps=None):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f'num_features must be an integer >= 1, got {num_features!r}')
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f'ChannelAffine({self.num_features}) expects (N, '
                             f'{self.num_features}, ...), got shape {tuple(x.shape)}')
        shape = (1, -1) + (1, ) * (x.dim() - 2)
        return torch.addcmul(self.bias.view(shape), x, self.weight.view(shape))

    def extra_repr(self):
        return f'{self.num_features}'
