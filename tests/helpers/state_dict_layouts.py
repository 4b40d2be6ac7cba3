"""State-dict layouts ({key: shape}) of shipped models and non-local blocks, old and new alike.

``python tests/helpers/state_dict_layouts.py OUT_DIR`` writes ``layouts.json`` (the
layout of each model in :data:`LAYOUT_CONFIGS`) and ``blocks.pth`` (non-local blocks of
each mode, dimension and sub-sampling: weights, an input and the block's output).
``tests/data/pre_ops/`` holds what this wrote at commit a52cc4f, before the block moved
to :mod:`nlnet.ops`, so that tests can hold today's models to checkpoints saved then.
"""
import json
import os
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LAYOUT_CONFIGS = [
    'configs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py',
    'configs/recognition/nl-c2d/nl-c2d_r50-in1k-pre-1block-concatenation_8xb32-8x8x1-100e_kinetics400-rgb.py',
    'configs/recognition/nl-c2d/nl-c2d_r50-in1k-pre-5blocks-space_8xb32-8x8x1-100e_kinetics400-rgb.py',
    'configs/recognition/nl-i3d/nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py',
    'configs/recognition/nl-i3d/nl-i3d_r50-in1k-pre-mmaction-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py',
    'configs/recognition/official/i3d_r50-official-affine_8xb2-128x1x1-400k_kinetics400-rgb.py',
    'configs/segmentation/nonlocal_net/nonlocal_r50-d8_4xb4-160k_ade20k-512x512.py',
    'configs/detection/mask-rcnn_r50-nl_fpn_1x_coco.py',
    'configs/detection/mask-rcnn_r50_nl-fpn_1x_coco.py',
]
BLOCK_CASES = [dict(mode=mode, dim=dim, sub_sample=sub_sample)
               for mode in ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
               for dim in (1, 2, 3) for sub_sample in (False, True)]
_SCOPES = {'configs/recognition': 'mmaction', 'configs/segmentation': 'mmseg',
           'configs/demo': 'mmaction', 'configs/detection': 'mmdet'}


def build_model(config):
    """The model of the shipped ``config`` (a path relative to the repository), untrained."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope
    scope = next(s for prefix, s in _SCOPES.items() if config.startswith(prefix))
    cfg = Config.fromfile(osp.join(REPO, config))
    DefaultScope._instance_dict.clear()
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = cfg.model
    for part in ('backbone', ):  # no pretrained download
        if part in model and 'pretrained' in model[part]:
            model[part]['pretrained'] = None
    model.pop('init_cfg', None)
    if 'backbone' in model:
        model['backbone'].pop('init_cfg', None)
    return registry.build(model)


def layout(module):
    """``{key: shape}`` of ``module``'s state dict."""
    return {key: list(value.shape) for key, value in module.state_dict().items()}


def block_case_name(case):
    return '{mode}-{dim}d-{sub}'.format(sub='sub' if case['sub_sample'] else 'full', **case)


def make_blocks(block_class):
    """{case name: dict(kwargs, state_dict, input, output)} of eval-mode blocks with random
    weights and BatchNorm statistics."""
    blocks = {}
    for case in BLOCK_CASES:
        torch.manual_seed(0)
        block = block_class(8, **case).double()
        with torch.no_grad():
            for value in block.state_dict().values():
                if value.is_floating_point():
                    value.copy_(torch.rand_like(value) + 0.5)
        block.eval()
        x = torch.randn(2, 8, *[4, 6, 5][3 - case['dim']:], dtype=torch.float64)
        with torch.no_grad():
            out = block(x)
        blocks[block_case_name(case)] = dict(kwargs=case, state_dict=block.state_dict(),
                                             input=x, output=out)
    return blocks


def main(out_dir):
    try:
        import nlnet.openmmlab  # noqa: F401
    except ImportError:  # before nlnet.openmmlab existed, import nlnet registered
        import nlnet  # noqa: F401
    from nlnet.models.layers import NonLocalBlock
    os.makedirs(out_dir, exist_ok=True)
    layouts = {config: layout(build_model(config)) for config in LAYOUT_CONFIGS}
    with open(osp.join(out_dir, 'layouts.json'), 'w') as handle:
        json.dump(layouts, handle, indent=0, sort_keys=True)
    torch.save(make_blocks(NonLocalBlock), osp.join(out_dir, 'blocks.pth'))


if __name__ == '__main__':
    main(sys.argv[1])
