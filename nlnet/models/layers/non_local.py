"""The non-local block in the OpenMMLab registries, its norm given as an mmcv ``norm_cfg``.

The block itself is :class:`nlnet.ops.NonLocalBlock` (torch alone); this subclass only
builds the norm after W_z from a config dict with mmcv's ``build_norm_layer``, so any
registered norm (``SyncBN``, ``GN``, nlnet's ``ChannelAffine``, ...) can be named in a
config, and registers the block as ``NonLocalBlock``.
"""
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS

from nlnet.ops import NonLocalBlock as _Block


def norm_layer_from_cfg(norm_cfg, dim):
    """``norm_cfg`` as :class:`nlnet.ops.NonLocalBlock`'s ``norm_layer`` (None for None);
    type ``BN`` is BatchNorm1d/2d/3d by ``dim``."""
    if norm_cfg is None:
        return None
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise ValueError(f"norm_cfg must be None or a dict with a 'type', got {norm_cfg!r}")
    if norm_cfg['type'] == 'BN':
        norm_cfg = dict(norm_cfg, type=f'BN{dim}d')
    return lambda channels: build_norm_layer(norm_cfg, channels)[1]


@MODELS.register_module()
class NonLocalBlock(_Block):
    """:class:`nlnet.ops.NonLocalBlock` with ``norm_cfg`` in place of ``norm_layer``.

    Args:
        in_channels (int): C, channels of the input and output.
        dim (int): 1, 2 or 3 spatial/temporal dimensions of the input.
        norm_cfg (dict | None): normalisation after W_z: ``dict(type='BN')``
            (default) picks BatchNorm1d/2d/3d by ``dim``; any norm registered
            for mmcv's ``build_norm_layer``; None for none.
        **kwargs: the other arguments of :class:`nlnet.ops.NonLocalBlock`.

    Shape:
        input and output: (N, C, *S) with len(S) == dim.
    """

    # mmcv's plugin name for its NonLocal2d, so that as an mmdet/mmcv plugin the block
    # sits under the same state-dict keys (``layer3.0.nonlocal_block.*``) as there.
    _abbr_ = 'nonlocal_block'

    def __init__(self, in_channels, dim=2, norm_cfg=dict(type='BN'), **kwargs):
        if 'norm_layer' in kwargs:
            raise TypeError('NonLocalBlock of the OpenMMLab registry takes norm_cfg, not '
                            'norm_layer (that is nlnet.ops.NonLocalBlock)')
        super().__init__(in_channels, dim=dim, norm_layer=norm_layer_from_cfg(norm_cfg, dim),
                         **kwargs)
