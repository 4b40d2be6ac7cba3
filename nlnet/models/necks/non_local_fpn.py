"""An FPN whose chosen output levels pass through a non-local block.

Drop-in for mmdet's ``FPN`` (same arguments and convolution keys:
``lateral_convs.*``, ``fpn_convs.*``); the blocks are ``nl_blocks.<level>.*``, so
an FPN checkpoint loads with only them missing, and as each starts as the
identity the neck's outputs equal the FPN's until they are trained.
"""
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from mmengine.model import ModuleDict

from ..layers import build_non_local_block, checked_non_local_cfg

_DERIVED_NON_LOCAL_ARGS = ('in_channels', 'dim', 'sub_sample')


@MODELS.register_module()
class NonLocalFPN(FPN):
    """FPN + a :class:`NonLocalBlock` on each chosen output level.

    Args:
        non_local (Sequence[int]): indices into the neck's ``num_outs`` outputs
            (0 is the finest, P2 in Mask R-CNN) whose feature map passes through
            its own non-local block. Default (1, 2, 3): P3-P5; adding P2 (level 0)
            more than doubles Mask R-CNN's FLOPs at 800x1333 even with 2x2
            sub-sampling (see configs/detection/README.md).
        non_local_cfg (dict | None): :class:`NonLocalBlock` options shared by the
            levels, other than ``in_channels``, ``dim`` and ``sub_sample`` (e.g.
            ``mode``, ``reduction``, ``pool_kernel``, ``norm_cfg``).
        sub_sample_levels (Sequence[int]): levels of ``non_local`` whose block
            max-pools keys and values (by ``non_local_cfg``'s ``pool_kernel``,
            default 2x2), which divides the attention cost by 4 on the large fine
            maps. Default (1,): P3, the finest of the default levels.
        **kwargs: mmdet :class:`FPN` arguments (in_channels, out_channels,
            num_outs, start_level, add_extra_convs, ...).

    Shape:
        as FPN: a tuple of ``num_outs`` maps (N, out_channels, H_l, W_l).
    """

    def __init__(self, non_local=(1, 2, 3), non_local_cfg=None, sub_sample_levels=(1, ),
                 **kwargs):
        super().__init__(**kwargs)
        non_local_cfg = checked_non_local_cfg(non_local_cfg, 'NonLocalFPN',
                                              _DERIVED_NON_LOCAL_ARGS)
        self.non_local = self._check_levels('non_local', non_local, range(self.num_outs))
        self.sub_sample_levels = self._check_levels('sub_sample_levels', sub_sample_levels,
                                                    self.non_local)
        # mmengine's ModuleDict has init_weights, so FPN.init_weights re-applies each
        # block's own init after its Xavier init_cfg has reached the blocks' convolutions.
        self.nl_blocks = ModuleDict({
            str(level): build_non_local_block(
                non_local_cfg, in_channels=self.out_channels, dim=2,
                sub_sample=level in self.sub_sample_levels)
            for level in self.non_local
        })

    @staticmethod
    def _check_levels(name, levels, allowed):
        levels = tuple(levels)
        allowed = tuple(allowed)
        for level in levels:
            if not isinstance(level, int) or level not in allowed:
                raise ValueError(f'{name}: level {level!r} is not one of {allowed}')
        if len(set(levels)) != len(levels):
            raise ValueError(f'{name} repeats a level: {levels}')
        return tuple(sorted(levels))

    def forward(self, inputs):
        """Backbone maps -> the FPN's outputs, the ``non_local`` levels through their block."""
        outs = super().forward(inputs)
        return tuple(self.nl_blocks[str(level)](out) if str(level) in self.nl_blocks else out
                     for level, out in enumerate(outs))
