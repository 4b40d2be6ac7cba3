"""A convolution with an optional normalisation and activation, under mmcv ``ConvModule``'s keys.

The block's inner layers were mmcv ``ConvModule`` s; this plain torch module keeps
their state-dict keys (``conv.*`` and ``<norm name>.*``) so that nlnet, MMAction2 and
MMSeg checkpoints load unchanged, without importing mmcv.
"""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm


def norm_key(norm):
    """The attribute name (state-dict key) mmcv's ``build_norm_layer`` gives ``norm``: its
    class's ``_abbr_``, else ``bn``, ``in``, ``gn`` or ``ln`` by kind, else ``norm_layer``."""
    abbr = getattr(type(norm), '_abbr_', None)
    if abbr is not None:
        return abbr
    for kind, key in ((_InstanceNorm, 'in'), (_BatchNorm, 'bn'), (nn.GroupNorm, 'gn'),
                      (nn.LayerNorm, 'ln')):
        if isinstance(norm, kind):
            return key
    name = type(norm).__name__.lower()
    for part, key in (('batch', 'bn'), ('group', 'gn'), ('layer', 'ln'), ('instance', 'in')):
        if part in name:
            return key
    return 'norm_layer'


class ConvNorm(nn.Module):
    """``activation(norm(conv(x)))``, each part optional but the convolution.

    Args:
        conv (nn.Module): the convolution, kept as ``self.conv``.
        norm (nn.Module | None): the normalisation after it, kept under
            :func:`norm_key` (``self.bn`` for a BatchNorm), as mmcv does.
        activation (nn.Module | None): the activation last (no parameters), as
            ``self.activate``.

    Shape:
        input (N, C_in, *S); output (N, C_out, *S') as ``conv`` gives.
    """

    def __init__(self, conv, norm=None, activation=None):
        super().__init__()
        self.conv = conv
        self.norm_name = None if norm is None else norm_key(norm)
        if norm is not None:
            self.add_module(self.norm_name, norm)
        self.activate = activation

    @property
    def with_norm(self):
        return self.norm_name is not None

    @property
    def norm(self):
        """The normalisation module, or None."""
        return getattr(self, self.norm_name) if self.with_norm else None

    def forward(self, x):
        x = self.conv(x)
        if self.with_norm:
            x = self.norm(x)
        return x if self.activate is None else self.activate(x)
