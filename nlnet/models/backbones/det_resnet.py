"""mmdet's ResNet with non-local blocks between residual blocks (paper Sec. 5, Table 5).

mmdet's ``plugins`` put a module inside the residual branch of every block of a
stage; the paper inserts one block *between* two residual blocks (res4, right
before its last block), which :class:`NonLocalResNet` expresses. Residual layers keep
mmdet's keys (``layer3.5.conv1.weight``), and the non-local block after residual
block ``layer3.4`` is ``non_local_blocks.layer3.4.*``, so a pretrained mmdet
ResNet or Mask R-CNN state dict loads with only the new blocks missing.
"""
from mmdet.models.backbones.resnet import ResNet
from mmdet.registry import MODELS
from mmengine.model import ModuleDict

from ..layers import build_non_local_block, checked_non_local_cfg

PAPER_POSITIONS = ((2, -2), )
_DERIVED_NON_LOCAL_ARGS = ('in_channels', 'dim')
_PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


@MODELS.register_module()
class NonLocalResNet(ResNet):
    """mmdet ResNet whose chosen residual blocks are followed by a non-local block.

    Args:
        non_local (Sequence[tuple[int, int]]): ``(stage, block)`` pairs;
            a :class:`NonLocalBlock` follows residual block ``block`` of stage
            ``stage``. Stages are 0-based (2 is res4, mmdet's ``layer3``); block
            indices are 0-based, negative ones count from the stage's end.
            Default ``((2, -2),)``: the paper's one block in res4, right before
            its last residual block. ``()`` gives a plain ResNet.
        non_local_cfg (dict | None): :class:`NonLocalBlock` options other than
            ``in_channels`` and ``dim`` (default: the operator's defaults,
            embedded Gaussian, no sub-sampling).
        **kwargs: mmdet :class:`ResNet` arguments (depth, frozen_stages,
            norm_eval, plugins, init_cfg, ...). A bad ``plugins`` entry fails
            naming ``plugins[i].position`` or ``plugins[i].stages``.

    Shape:
        input (N, 3, H, W); outputs as mmdet's ResNet. A non-local block keeps
        the shape of the residual block output it follows.

    With ``norm_eval=True`` (mmdet's detection default) the blocks' BN layers use
    their initial running statistics like the backbone's: each stays an affine
    map whose zero-initialised scale keeps a new block the identity.
    """

    def __init__(self, non_local=PAPER_POSITIONS, non_local_cfg=None, **kwargs):
        _check_plugins(kwargs.get('plugins'), kwargs.get('num_stages', 4))
        super().__init__(**kwargs)
        non_local_cfg = checked_non_local_cfg(non_local_cfg, 'NonLocalResNet',
                                              _DERIVED_NON_LOCAL_ARGS)
        self.non_local = self._normalise_positions(non_local)
        # mmengine's ModuleDict has init_weights, so ResNet.init_weights re-applies each
        # block's own init after its Kaiming / BN-to-1 init_cfg has reached the blocks.
        self.non_local_blocks = ModuleDict()
        for stage, block in self.non_local:
            layer_name = self.res_layers[stage]
            if layer_name not in self.non_local_blocks:
                self.non_local_blocks[layer_name] = ModuleDict()
            self.non_local_blocks[layer_name][str(block)] = build_non_local_block(
                non_local_cfg, in_channels=self._stage_out_channels(stage), dim=2)
        self._freeze_stages()

    def _stage_out_channels(self, stage):
        return self.base_channels * 2**stage * self.block.expansion

    def _normalise_positions(self, positions):
        """Validate ``(stage, block)`` pairs; return them sorted, block indices >= 0."""
        if positions is None:
            return ()
        normalised = []
        for position in positions:
            if (not isinstance(position, (tuple, list)) or len(position) != 2
                    or not all(isinstance(i, int) for i in position)):
                raise ValueError('non_local entries must be (stage, block) integer '
                                 f'pairs, got {position!r}')
            stage, block = position
            if not 0 <= stage < self.num_stages:
                raise ValueError(f'non_local: stage {stage} of {position!r} is out '
                                 f'of range; this ResNet has stages 0..{self.num_stages - 1}')
            num_blocks = self.stage_blocks[stage]
            if not -num_blocks <= block < num_blocks:
                raise ValueError(f'non_local: block {block} of {position!r} is out '
                                 f'of range; stage {stage} ({self.res_layers[stage]}) has '
                                 f'{num_blocks} blocks, indices {-num_blocks}..{num_blocks - 1}')
            pair = (stage, block % num_blocks)
            if pair in normalised:
                raise ValueError(f'non_local: {position!r} repeats position {pair}')
            normalised.append(pair)
        return tuple(sorted(normalised))

    def _freeze_stages(self):
        super()._freeze_stages()
        if not hasattr(self, 'non_local_blocks'):
            return
        for layer_name in self.res_layers[:max(self.frozen_stages, 0)]:
            if layer_name not in self.non_local_blocks:
                continue
            blocks = self.non_local_blocks[layer_name]
            blocks.eval()
            for param in blocks.parameters():
                param.requires_grad = False

    def forward(self, x):
        """(N, 3, H, W) -> tuple of the ``out_indices`` stage outputs."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for stage, layer_name in enumerate(self.res_layers):
            non_local = (self.non_local_blocks[layer_name]
                         if layer_name in self.non_local_blocks else {})
            for index, block in enumerate(getattr(self, layer_name)):
                x = block(x)
                if str(index) in non_local:
                    x = non_local[str(index)](x)
            if stage in self.out_indices:
                outs.append(x)
        return tuple(outs)


def _check_plugins(plugins, num_stages):
    """Name the bad key of an mmdet ``plugins`` entry (mmdet only asserts)."""
    for i, plugin in enumerate(plugins or ()):
        if not isinstance(plugin, dict) or 'cfg' not in plugin:
            raise ValueError(f'plugins[{i}] must be a dict with a cfg key, got {plugin!r}')
        if plugin.get('position') not in _PLUGIN_POSITIONS:
            raise ValueError(f'plugins[{i}].position must be one of {_PLUGIN_POSITIONS}, '
                             f'got {plugin.get("position")!r}')
        stages = plugin.get('stages')
        if stages is not None and len(stages) != num_stages:
            raise ValueError(f'plugins[{i}].stages must have num_stages={num_stages} '
                             f'entries, got {stages!r}')
