"""The paper's video ResNets (Sec. 4, Table 1) behind one class: C2D, I3D, NL-C2D, NL-I3D.

C2D applies 2D kernels frame by frame (3D kernels with temporal size 1); I3D
inflates the kernels of chosen residual blocks to t x k x k; the non-local
variants put a :class:`NonLocalBlock` after chosen residual blocks, outside the
residual branch (after the addition and its ReLU), as the official code does.

State-dict keys are MMAction2's ``ResNet3d`` keys (``conv1.conv``, ``conv1.bn``,
``layer1.0.conv1.conv``, ``layer1.0.downsample.conv``,
``layer2.1.non_local_block.g.conv``, ...), so MMAction2's I3D and NL-I3D
checkpoints load as they are. MMAction2's ``C2D`` and TSN-style 2D ``ResNet``
store the same keys with 2D (4-dim) kernels; :meth:`VideoResNet._load_from_state_dict`
gives them the temporal axis of size 1 on load, so those checkpoints load
directly too and no converter is needed.
"""
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.logging import MMLogger
from mmengine.model import BaseModule, Sequential, constant_init, kaiming_init
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmaction.registry import MODELS
from ..layers import NonLocalBlock, checked_non_local_cfg
# Registers norm_cfg type 'ChannelAffine' (the official frozen-BN models' AffineNd).
from ..layers.channel_affine import ChannelAffine  # noqa: F401
from .inflate import inflate_2d_resnet, load_2d_state_dict

NON_LOCAL_PLACEMENTS = ('res4_1', '5blocks', '10blocks', 'res2', 'res3', 'res4', 'res5')
INFLATE_PRESETS = ('i3d', )
INFLATE_STYLES = ('3x1x1', '3x3x3')
# The official code sub-samples phi and g by 2x2 spatial max-pooling in every block.
NON_LOCAL_DEFAULTS = dict(sub_sample=True)
_DERIVED_NON_LOCAL_ARGS = ('in_channels', 'dim')


def _evenly_spaced(num_blocks, count):
    """Indices of ``count`` blocks among ``num_blocks``, as the official code spaces them.

    The official code puts a block after every residual block ``i`` with
    ``i % mod == mod - 1``; ``mod = num_blocks // count`` reproduces its
    ResNet-50 (mod 2 in res3/res4) and ResNet-101 (mod 2 in res3, 7 in res4)
    choices.
    """
    mod = max(num_blocks // count, 1)
    return [i for i in range(num_blocks) if i % mod == mod - 1][:count]


def _flags_from_indices(stage_blocks, indices_per_stage):
    return tuple(
        tuple(int(i in indices) for i in range(n))
        for n, indices in zip(stage_blocks, indices_per_stage))


def non_local_flags(placement, stage_blocks):
    """Per-block 0/1 flags (one tuple per stage) of a non-local placement.

    Args:
        placement (None | str | Sequence[Sequence[int]]): ``None`` (no block);
            ``'res4_1'`` (paper's 1-block model: one block right before the last
            residual block of res4); ``'5blocks'`` (2 in res3 and 3 in res4, after
            every other residual block: 0-based blocks 1, 3 of res3 and 1, 3, 5 of
            res4 for ResNet-50, as MMAction2's ``non_local=((0, 0, 0), (0, 1, 0, 1),
            (0, 1, 0, 1, 0, 1), (0, 0, 0))``); ``'10blocks'`` (4 in res3, 6 in res4:
            every block of both stages for ResNet-50); ``'res2'`` .. ``'res5'`` (one
            block right before the last residual block of that stage, paper Table
            2b); or explicit per-stage flags like MMAction2's ``non_local``.
        stage_blocks (Sequence[int]): residual blocks per stage (res2..res5).

    Returns:
        tuple[tuple[int]]: one 0/1 flag per residual block, per stage.
    """
    allowed = (f'None, {", ".join(repr(p) for p in NON_LOCAL_PLACEMENTS)} or per-stage 0/1 '
               f'flags with {tuple(stage_blocks)} entries')
    if placement is None:
        return tuple((0, ) * n for n in stage_blocks)
    if isinstance(placement, str):
        if placement not in NON_LOCAL_PLACEMENTS:
            raise ValueError(f'non_local: {placement!r} is not a placement; allowed: {allowed}')
        n2, n3, n4, n5 = stage_blocks
        if placement == '5blocks':
            indices = ([], _evenly_spaced(n3, 2), _evenly_spaced(n4, 3), [])
        elif placement == '10blocks':
            indices = ([], _evenly_spaced(n3, 4), _evenly_spaced(n4, 6), [])
        else:
            stage = 2 if placement == 'res4_1' else int(placement[3]) - 2
            indices = [[] for _ in stage_blocks]
            indices[stage] = [max(stage_blocks[stage] - 2, 0)]
        return _flags_from_indices(stage_blocks, indices)
    return _explicit_flags('non_local', placement, stage_blocks, allowed)


def inflate_flags(inflate, stage_blocks):
    """Per-block 0/1 inflation flags.

    Args:
        inflate (None | str | Sequence): ``None`` or ``0`` (C2D: no block
            inflated); ``'i3d'`` (the official I3D: every block of res2, blocks
            0, 2, 4, ... of res3 and res4, blocks 1, 3, ... of res5, i.e.
            ``((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))`` for
            ResNet-50); or per-stage flags, each stage a tuple of 0/1 per block
            or one 0/1 for the whole stage.
        stage_blocks (Sequence[int]): residual blocks per stage.
    """
    allowed = (f'None, 0, {", ".join(repr(p) for p in INFLATE_PRESETS)} or per-stage 0/1 flags '
               f'with {tuple(stage_blocks)} entries')
    if inflate is None or (isinstance(inflate, int) and inflate == 0):
        return tuple((0, ) * n for n in stage_blocks)
    if isinstance(inflate, str):
        if inflate not in INFLATE_PRESETS:
            raise ValueError(f'inflate: {inflate!r} is not a preset; allowed: {allowed}')
        starts = (0, 0, 0, 1)
        return tuple(
            tuple(int(stage == 0 or i % 2 == start) for i in range(n))
            for stage, (n, start) in enumerate(zip(stage_blocks, starts)))
    return _explicit_flags('inflate', inflate, stage_blocks, allowed)


def _explicit_flags(name, flags, stage_blocks, allowed):
    if not isinstance(flags, (tuple, list)) or len(flags) != len(stage_blocks):
        raise ValueError(f'{name}: expected one entry per stage ({len(stage_blocks)} stages), '
                         f'got {flags!r}; allowed: {allowed}')
    normalised = []
    for stage, (stage_flags, n) in enumerate(zip(flags, stage_blocks)):
        if isinstance(stage_flags, int):
            stage_flags = (stage_flags, ) * n
        if (not isinstance(stage_flags, (tuple, list)) or len(stage_flags) != n
                or any(f not in (0, 1) for f in stage_flags)):
            raise ValueError(f'{name}: stage {stage} (res{stage + 2}) needs {n} flags of 0/1, '
                             f'got {stage_flags!r}; allowed: {allowed}')
        normalised.append(tuple(int(f) for f in stage_flags))
    return tuple(normalised)


class _ResidualBlock(nn.Module):
    """x -> ReLU(F(x) + shortcut(x)) -> optional non-local block.

    With ``non_local_group_frames`` = n the non-local block runs on each run of n
    consecutive frames on its own (the official code's ``add_nonlocal_group``, used
    in res3 of its frozen-BN long-clip models to save memory).

    ``with_cp`` recomputes the whole block, non-local block included, in the
    backward pass instead of storing its activations. In training mode the
    recomputation updates BN running statistics a second time (as MMAction2's
    ``with_cp`` does); the 128-frame configs freeze BN, where it does not matter.
    """

    branch = ()  # names of the residual branch's ConvModules, in order

    def __init__(self, downsample, non_local_cfg, out_channels, act_cfg, with_cp,
                 non_local_group_frames=None):
        super().__init__()
        self.downsample = downsample
        self.relu = build_activation_layer(act_cfg)
        self.with_cp = with_cp
        self.non_local_group_frames = non_local_group_frames
        if non_local_cfg is not None:
            self.non_local_block = NonLocalBlock(out_channels, dim=3, **non_local_cfg)

    def _non_local(self, x):
        frames = self.non_local_group_frames
        if frames is None:
            return self.non_local_block(x)
        n, c, t, h, w = x.shape
        if t % frames:
            raise ValueError(f'non_local_group_frames={frames} must divide the {t} frames '
                             'reaching the non-local block')
        groups = t // frames
        grouped = x.reshape(n, c, groups, frames, h, w).transpose(1, 2)
        out = self.non_local_block(grouped.reshape(n * groups, c, frames, h, w))
        return out.reshape(n, groups, c, frames, h, w).transpose(1, 2).reshape(n, c, t, h, w)

    def _forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        for name in self.branch:
            out = getattr(self, name)(out)
        out = self.relu(out + identity)
        if hasattr(self, 'non_local_block'):
            out = self._non_local(out)
        return out

    def forward(self, x):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


def _conv(in_channels, out_channels, kernel, stride, norm_cfg, act_cfg):
    return ConvModule(
        in_channels, out_channels, kernel, stride=stride,
        padding=tuple((k - 1) // 2 for k in kernel), bias=False,
        conv_cfg=dict(type='Conv3d'), norm_cfg=norm_cfg, act_cfg=act_cfg)


class Bottleneck3d(_ResidualBlock):
    """1x1x1 -> 1x3x3 -> 1x1x1 bottleneck; an inflated block has a 3x1x1 first
    conv (``'3x1x1'``, the paper's I3D default) or a 3x3x3 middle conv
    (``'3x3x3'``). The spatial stride is on the 3x3 conv (torchvision style).

    Shape: (N, inplanes, T, H, W) -> (N, 4 * planes, T, H / s, W / s).
    """
    expansion = 4
    branch = ('conv1', 'conv2', 'conv3')

    def __init__(self, inplanes, planes, spatial_stride=1, downsample=None, inflate=False,
                 inflate_style='3x1x1', non_local_cfg=None, norm_cfg=dict(type='BN3d'),
                 act_cfg=dict(type='ReLU', inplace=True), with_cp=False,
                 non_local_group_frames=None):
        super().__init__(downsample, non_local_cfg, planes * self.expansion, act_cfg, with_cp,
                         non_local_group_frames)
        t1 = 3 if inflate and inflate_style == '3x1x1' else 1
        t2 = 3 if inflate and inflate_style == '3x3x3' else 1
        self.conv1 = _conv(inplanes, planes, (t1, 1, 1), 1, norm_cfg, act_cfg)
        self.conv2 = _conv(planes, planes, (t2, 3, 3), (1, spatial_stride, spatial_stride),
                           norm_cfg, act_cfg)
        self.conv3 = _conv(planes, planes * self.expansion, (1, 1, 1), 1, norm_cfg, None)


class BasicBlock3d(_ResidualBlock):
    """Two 3x3 convs (1x3x3, or 3x3x3 when inflated, as MMAction2's BasicBlock3d).

    Shape: (N, inplanes, T, H, W) -> (N, planes, T, H / s, W / s).
    """
    expansion = 1
    branch = ('conv1', 'conv2')

    def __init__(self, inplanes, planes, spatial_stride=1, downsample=None, inflate=False,
                 inflate_style='3x1x1', non_local_cfg=None, norm_cfg=dict(type='BN3d'),
                 act_cfg=dict(type='ReLU', inplace=True), with_cp=False,
                 non_local_group_frames=None):
        super().__init__(downsample, non_local_cfg, planes, act_cfg, with_cp,
                         non_local_group_frames)
        t = 3 if inflate else 1
        self.conv1 = _conv(inplanes, planes, (t, 3, 3), (1, spatial_stride, spatial_stride),
                           norm_cfg, act_cfg)
        self.conv2 = _conv(planes, planes, (t, 3, 3), 1, norm_cfg, None)


@MODELS.register_module()
class VideoResNet(BaseModule):
    """C2D / I3D ResNet with optional non-local blocks (paper Sec. 4).

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        base_channels (int): channels of conv1 (64).
        stage_blocks (Sequence[int] | None): residual blocks of res2..res5,
            overriding the depth's (e.g. ``(1, 1, 1, 1)`` for a tiny network).
        in_channels (int): input channels (3).
        pretrained (str | None): path or URL of a 2D ResNet state dict
            (torchvision or mmpretrain layout) inflated into this network by
            :meth:`init_weights`; ``None`` initialises from scratch.
        conv1_kernel (Sequence[int]): (t, k, k) of conv1; (1, 7, 7) for C2D,
            (5, 7, 7) for I3D.
        conv1_stride_t (int): temporal stride of conv1.
        pool1_kernel (Sequence[int]): max-pool after conv1 (1, 3, 3).
        pool1_stride_t (int): its temporal stride (spatial stride is 2).
        pool1_padding (Sequence[int]): its padding: (0, 1, 1) as torchvision and
            MMAction2's ResNet3d/TSN; (0, 0, 0) as the official code and
            MMAction2's ``C2D``.
        temporal_pool (bool): 2x1x1 max-pool (stride 2) after res2 (paper Table 1).
        inflate (None | str | Sequence): inflated blocks, see :func:`inflate_flags`.
        inflate_style (str): ``'3x1x1'`` (default) or ``'3x3x3'``.
        non_local (None | str | Sequence): placement, see :func:`non_local_flags`.
        non_local_group_frames (Sequence[int | None] | None): per stage (res2..res5),
            None (the non-local blocks see the whole clip) or n: they run on each
            run of n consecutive frames on its own, as the official frozen-BN
            long-clip models do in res3 (``(None, 4, None, None)``).
        non_local_cfg (dict | None): :class:`NonLocalBlock` options other than
            ``in_channels``/``dim``, merged into ``NON_LOCAL_DEFAULTS``
            (``sub_sample=True``), with the operator's paper defaults otherwise
            (embedded Gaussian, ``use_scale=True``, ``pool_position='before'``,
            zero-initialised last BN). MMAction2's NL-I3D configs correspond to
            ``use_scale=False, pool_position='after'``; its from-scratch init,
            which resets the blocks' BN gamma to 1, to ``zero_init=False``.
        norm_cfg (dict): norm layers of the ResNet (``BN3d``; ``ChannelAffine`` for
            the official frozen-BN models).
        act_cfg (dict): activation (in-place ReLU).
        norm_eval (bool): keep BN layers (non-local ones included) in eval
            mode during training (frozen statistics).
        with_cp (bool): gradient checkpointing of every residual block,
            non-local block included.
        zero_init_residual (bool): zero-init the last BN of every residual
            block when training from scratch.
        out_indices (Sequence[int]): stages to return (0 = res2 .. 3 = res5).

    Shape:
        input (N, in_channels, T, H, W); output of res5 (N, 2048, T', H / 32,
        W / 32) for depth >= 50 with T' = T / conv1_stride_t / pool1_stride_t
        (/ 2 with ``temporal_pool``); a tuple when several ``out_indices``.
    """

    arch_settings = {
        18: (BasicBlock3d, (2, 2, 2, 2)),
        34: (BasicBlock3d, (3, 4, 6, 3)),
        50: (Bottleneck3d, (3, 4, 6, 3)),
        101: (Bottleneck3d, (3, 4, 23, 3)),
        152: (Bottleneck3d, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth=50,
                 base_channels=64,
                 stage_blocks=None,
                 in_channels=3,
                 pretrained=None,
                 conv1_kernel=(1, 7, 7),
                 conv1_stride_t=1,
                 pool1_kernel=(1, 3, 3),
                 pool1_stride_t=1,
                 pool1_padding=(0, 1, 1),
                 temporal_pool=False,
                 inflate=None,
                 inflate_style='3x1x1',
                 non_local=None,
                 non_local_group_frames=None,
                 non_local_cfg=None,
                 norm_cfg=dict(type='BN3d', requires_grad=True),
                 act_cfg=dict(type='ReLU', inplace=True),
                 norm_eval=False,
                 with_cp=False,
                 zero_init_residual=False,
                 out_indices=(3, )):
        super().__init__()
        if depth not in self.arch_settings:
            raise ValueError(f'depth: {depth!r} is not supported; allowed: '
                             f'{tuple(self.arch_settings)}')
        self.block, default_blocks = self.arch_settings[depth]
        stage_blocks = tuple(default_blocks if stage_blocks is None else stage_blocks)
        if len(stage_blocks) != 4 or any(not isinstance(n, int) or n < 1 for n in stage_blocks):
            raise ValueError(f'stage_blocks: expected 4 positive integers (res2..res5), got '
                             f'{stage_blocks!r}')
        _check_kernel('conv1_kernel', conv1_kernel)
        _check_kernel('pool1_kernel', pool1_kernel)
        if inflate_style not in INFLATE_STYLES:
            raise ValueError(f'inflate_style: {inflate_style!r} is not allowed; allowed: '
                             f'{INFLATE_STYLES}')
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'pretrained: expected a path, URL or None, got {pretrained!r}')
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'out_indices: stage indices must be in 0..3 (res2..res5), got '
                             f'{out_indices!r}')
        non_local_cfg = dict(NON_LOCAL_DEFAULTS, **checked_non_local_cfg(
            non_local_cfg, 'VideoResNet', _DERIVED_NON_LOCAL_ARGS))

        self.depth = depth
        self.stage_blocks = stage_blocks
        self.pretrained = pretrained
        self.temporal_pool = temporal_pool
        self.inflate = inflate_flags(inflate, stage_blocks)
        self.non_local = non_local_flags(non_local, stage_blocks)
        self.non_local_group_frames = _group_frames(non_local_group_frames)
        self.non_local_cfg = non_local_cfg
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.out_indices = out_indices

        self.conv1 = _conv(in_channels, base_channels, tuple(conv1_kernel),
                           (conv1_stride_t, 2, 2), norm_cfg, act_cfg)
        self.maxpool = nn.MaxPool3d(tuple(pool1_kernel), stride=(pool1_stride_t, 2, 2),
                                    padding=tuple(pool1_padding))
        if temporal_pool:
            self.pool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))

        self.res_layers = []
        inplanes = base_channels
        for stage, num_blocks in enumerate(stage_blocks):
            planes = base_channels * 2**stage
            layer = self._make_layer(stage, inplanes, planes, inflate_style, norm_cfg, act_cfg,
                                     with_cp)
            inplanes = planes * self.block.expansion
            self.add_module(f'layer{stage + 1}', layer)
            self.res_layers.append(f'layer{stage + 1}')
        self.feat_dim = inplanes

    def _make_layer(self, stage, inplanes, planes, inflate_style, norm_cfg, act_cfg, with_cp):
        stride = 1 if stage == 0 else 2
        out_channels = planes * self.block.expansion
        blocks = []
        for i in range(self.stage_blocks[stage]):
            downsample = None
            if i == 0 and (stride != 1 or inplanes != out_channels):
                downsample = _conv(inplanes, out_channels, (1, 1, 1), (1, stride, stride),
                                   norm_cfg, None)
            block_non_local_cfg = self.non_local_cfg if self.non_local[stage][i] else None
            try:
                blocks.append(self.block(
                    inplanes if i == 0 else out_channels, planes,
                    spatial_stride=stride if i == 0 else 1, downsample=downsample,
                    inflate=bool(self.inflate[stage][i]), inflate_style=inflate_style,
                    non_local_cfg=block_non_local_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                    with_cp=with_cp, non_local_group_frames=self.non_local_group_frames[stage]))
            except (TypeError, ValueError) as error:
                if block_non_local_cfg is None:
                    raise
                raise type(error)(f'non_local_cfg: {error}') from error
        return Sequential(*blocks)

    def non_local_blocks(self):
        """(name, NonLocalBlock) pairs in forward order."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, NonLocalBlock)]

    def init_weights(self):
        """Kaiming/unit-BN init, then the 2D ImageNet weights when ``pretrained``
        is set; every non-local block is re-initialised last, so that it starts
        as the identity in both cases."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                kaiming_init(m)
            elif isinstance(m, _BatchNorm):
                constant_init(m, 1)
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, _ResidualBlock):
                    constant_init(getattr(m, m.branch[-1]).norm, 0)
        if self.pretrained:
            logger = MMLogger.get_current_instance()
            logger.info(f'inflating 2D ImageNet weights from {self.pretrained}')
            unused = inflate_2d_resnet(self, load_2d_state_dict(self.pretrained), self.pretrained)
            if unused:
                logger.info(f'2D weights not used by the backbone: {sorted(unused)}')
        for _, block in self.non_local_blocks():
            block.init_weights()

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        outs = []
        for stage, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if stage == 0 and self.temporal_pool:
                x = self.pool2(x)
            if stage in self.out_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def train(self, mode=True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Give 2D kernels (MMAction2 ``C2D``/TSN ``ResNet`` checkpoints) a
        temporal axis of size 1 where this network has 1 x k x k kernels."""
        for name, m in self.named_modules():
            key = f'{prefix}{name}.weight'
            if (isinstance(m, nn.Conv3d) and m.kernel_size[0] == 1 and key in state_dict
                    and state_dict[key].dim() == 4):
                state_dict[key] = state_dict[key].unsqueeze(2)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _group_frames(frames):
    """``non_local_group_frames`` as 4 entries of None or a positive integer."""
    if frames is None:
        return (None, ) * 4
    if (not isinstance(frames, (tuple, list)) or len(frames) != 4
            or any(f is not None and (not isinstance(f, int) or f < 1) for f in frames)):
        raise ValueError('non_local_group_frames: expected None or 4 entries (res2..res5) of '
                         f'None or a positive integer, got {frames!r}')
    return tuple(frames)


def _check_kernel(name, kernel):
    if (not isinstance(kernel, (tuple, list)) or len(kernel) != 3
            or any(not isinstance(k, int) or k < 1 for k in kernel)):
        raise ValueError(f'{name}: expected (t, h, w) positive integers, got {kernel!r}')
