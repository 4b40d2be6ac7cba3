"""``NonLocal1d``, ``NonLocal2d``, ``NonLocal3d``: mmcv's bricks' names, arguments and defaults.

Code written for ``mmcv.cnn.NonLocal2d`` ports by changing the import. As there, the
block has no norm after W_z unless ``norm_cfg`` asks for one, sub-samples (``sub_sample``)
after the phi/g convolutions by 2 (1D), 2 x 2 (2D) or 1 x 2 x 2 (3D), and starts as the
identity (``zeros_init``). ``norm_cfg`` takes the torch norms mmcv users pass (``BN``,
``BN1d/2d/3d``, ``SyncBN``, ``GN``, ``IN``, ``LN``); a norm from an OpenMMLab registry
needs :class:`nlnet.models.layers.NonLocalBlock`. Further :class:`NonLocalBlock`
arguments (``impl``, ``scope``, ``pool_position``, ...) pass through.
"""
import functools

import torch.nn as nn

from .non_local import NonLocalBlock

_NORMS = {'BN': None, 'BN1d': nn.BatchNorm1d, 'BN2d': nn.BatchNorm2d, 'BN3d': nn.BatchNorm3d,
          'SyncBN': nn.SyncBatchNorm, 'GN': nn.GroupNorm, 'IN': None, 'LN': nn.LayerNorm}
_BY_DIM = {'BN': (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
           'IN': (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)}


def norm_layer_from_cfg(norm_cfg, dim):
    """``norm_cfg`` (mmcv's dict, torch norms only) as :class:`NonLocalBlock`'s ``norm_layer``.

    ``requires_grad=False`` freezes the norm's parameters, as mmcv's
    ``build_norm_layer`` does; other keys are the norm class's arguments.
    """
    if norm_cfg is None:
        return None
    if not isinstance(norm_cfg, dict) or norm_cfg.get('type') not in _NORMS:
        raise ValueError(f'norm_cfg must be None or a dict with type in {tuple(_NORMS)} '
                         '(other norms need the OpenMMLab stack: '
                         f'nlnet.models.layers.NonLocalBlock), got {norm_cfg!r}')
    options = dict(norm_cfg)
    kind = options.pop('type')
    requires_grad = options.pop('requires_grad', True)
    norm_class = _BY_DIM[kind][dim - 1] if kind in _BY_DIM else _NORMS[kind]
    if kind == 'GN':
        if 'num_groups' not in options:
            raise ValueError(f"norm_cfg of type 'GN' needs num_groups, got {norm_cfg!r}")
        num_groups = options.pop('num_groups')
        build = functools.partial(nn.GroupNorm, num_groups, **options)
    else:
        build = functools.partial(norm_class, **options)

    def norm_layer(channels):
        norm = build(channels)
        for param in norm.parameters():
            param.requires_grad = requires_grad
        return norm

    return norm_layer


def _check_conv_cfg(conv_cfg, dim):
    allowed = (None, dict(type='Conv'), dict(type=f'Conv{dim}d'))
    if conv_cfg not in allowed:
        raise ValueError(f'conv_cfg must be one of {allowed} (the block convolves with '
                         f'nn.Conv{dim}d), got {conv_cfg!r}')


class _NonLocalNd(NonLocalBlock):
    """mmcv's ``_NonLocalNd`` arguments on :class:`NonLocalBlock` (see the module docstring).

    Args:
        in_channels (int): C, channels of the input and output.
        reduction (int): C' = C // reduction (default 2).
        use_scale (bool): scale embedded-Gaussian logits by 1/sqrt(C') (default True).
        conv_cfg (dict | None): accepted for mmcv code; only plain convolutions.
        norm_cfg (dict | None): the norm after W_z (default None: none).
        mode (str): ``gaussian``, ``embedded_gaussian`` (default),
            ``dot_product`` or ``concatenation``.
        sub_sample (bool): max-pool phi and g after their convolutions.
        zeros_init (bool): start as the identity (default True).
        std (float): std of the Gaussian init (default 0.01).
        **kwargs: further :class:`NonLocalBlock` arguments.

    Shape:
        input and output: (N, C, *S) with ``dim`` entries in S.
    """
    dim = None

    def __init__(self, in_channels, reduction=2, use_scale=True, conv_cfg=None, norm_cfg=None,
                 mode='embedded_gaussian', sub_sample=False, zeros_init=True, std=0.01,
                 **kwargs):
        _check_conv_cfg(conv_cfg, self.dim)
        kwargs.setdefault('pool_position', 'after')
        super().__init__(in_channels, dim=self.dim, mode=mode, reduction=reduction,
                         use_scale=use_scale, sub_sample=sub_sample,
                         norm_layer=norm_layer_from_cfg(norm_cfg, self.dim), init_std=std,
                         zero_init=zeros_init, **kwargs)


class NonLocal1d(_NonLocalNd):
    """mmcv's ``NonLocal1d``: (N, C, L) -> (N, C, L); see :class:`_NonLocalNd`."""
    dim = 1


class NonLocal2d(_NonLocalNd):
    """mmcv's ``NonLocal2d``: (N, C, H, W) -> (N, C, H, W); see :class:`_NonLocalNd`."""
    dim = 2


class NonLocal3d(_NonLocalNd):
    """mmcv's ``NonLocal3d``: (N, C, T, H, W) -> (N, C, T, H, W); see :class:`_NonLocalNd`."""
    dim = 3
