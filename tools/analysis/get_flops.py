"""FLOPs and parameters of the model a config builds, printed as a table.

    python tools/analysis/get_flops.py CONFIG [--shape T H W | N C T H W] [--nl-flops explicit]

Convention (MMAction2's, which reproduces its model-zoo tables): FLOPs of the
backbone features of ONE view (one clip of the test pipeline: ``clip_len``
frames at the test crop size, e.g. 1x3x8x224x224 for the C2D configs and
1x3x32x256x256 for I3D), one multiply-add counted as one FLOP, by mmengine's
counter; parameters of the whole recognizer (classifier included).
``--shape`` overrides the view.

mmengine's counter does not see most of what nlnet's non-local blocks run
(fused attention, the associative dot product, the separable concatenation,
1x1 convolutions as batched GEMMs). Two ways to count them:

- ``--nl-flops explicit`` (default): every block is traced through
  :func:`explicit_non_local`, the same function with its N x M pairwise matrix
  formed explicitly by its own 1x1 convolutions and matmuls, which is how the
  paper writes it and how MMAction2 (mmcv) computes and counts it;
- ``--nl-flops executed``: nlnet's own forward, with handles for the fused
  attention and batched GEMMs it uses. Dot product and concatenation then cost
  less at large N x M (and may cost more at tiny ones).
"""
import argparse
import math
import os.path as osp
from collections import Counter

import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from nlnet.models.layers import NonLocalBlock

NL_FLOPS = ('explicit', 'executed')
_CROP_TRANSFORMS = ('ThreeCrop', 'TenCrop', 'CenterCrop')
_MAX_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='FLOPs and parameters of a config\'s model')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+',
        help='one view: T H W, or N C T H W (default: from the test pipeline); '
        'H alone or H W keep T from the config')
    parser.add_argument(
        '--nl-flops', choices=NL_FLOPS, default='explicit',
        help='count non-local blocks as the paper/MMAction2 (explicit) or as nlnet runs '
        'them (executed)')
    parser.add_argument('--max-depth', type=int, default=2, help='module depth of the table')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def view_shape(cfg, shape=None):
    """(N, C, T, H, W) of one test view, from ``shape`` and the config's test pipeline."""
    pipeline = cfg.test_dataloader.dataset.pipeline
    sample = next((t for t in pipeline if 'SampleFrames' in t['type']), None)
    crop = next((t for t in pipeline if t['type'] in _CROP_TRANSFORMS), None)
    clip_len = sample['clip_len'] if sample else 1
    size = crop['crop_size'] if crop else 224
    height, width = (size, size) if isinstance(size, int) else tuple(size)[::-1]
    shape = list(shape or [])
    if len(shape) == 5:
        return tuple(shape)
    if len(shape) == 3:
        return (1, 3, *shape)
    if len(shape) == 2:
        return (1, 3, clip_len, *shape)
    if len(shape) == 1:
        return (1, 3, clip_len, shape[0], shape[0])
    if shape:
        raise ValueError(f'--shape: expected 1, 2, 3 or 5 integers, got {shape}')
    return (1, 3, clip_len, height, width)


def model_inputs(cfg, shape):
    """The recognizer's input tensor for one batch of ``shape`` = (N, C, T, H, W)."""
    n, c, t, h, w = shape
    if cfg.model.data_preprocessor.get('format_shape') == 'NCHW':
        return torch.randn(1, n * t, c, h, w)
    return torch.randn(1, n, c, t, h, w)


# ----------------------------------------------------------------- non-local blocks


def _sequences(feat, scope):
    """(N, D, *S) -> (B, L, D) sequences of the positions each query may attend to."""
    n, d = feat.shape[:2]
    if scope == 'spacetime':
        return feat.flatten(2).transpose(1, 2)
    t, h, w = feat.shape[2:]
    if scope == 'space':
        return feat.permute(0, 2, 3, 4, 1).reshape(n * t, h * w, d)
    return feat.permute(0, 3, 4, 2, 1).reshape(n * h * w, t, d)


def _feature_map(seq, scope, like):
    """Inverse of :func:`_sequences` on the grid of ``like`` (N, C, *S)."""
    n, _, *grid = like.shape
    d = seq.shape[-1]
    if scope == 'spacetime':
        return seq.transpose(1, 2).reshape(n, d, *grid)
    t, h, w = grid
    if scope == 'space':
        return seq.reshape(n, t, h, w, d).permute(0, 4, 1, 2, 3)
    return seq.reshape(n, h, w, t, d).permute(0, 4, 3, 1, 2)


def explicit_non_local(block, x):
    """``block(x)`` computed as the paper writes it (and mmcv does): 1x1 convolutions by
    the block's ConvModules, max-pooling of phi/g (before or after their convolution),
    the (B, N, M) pairwise matrix, then z = x + BN(W_z y).

    Args:
        block (NonLocalBlock): any mode, scope, pooling.
        x (Tensor): (N, C, *S).
    """
    def pool(feat):
        return _MAX_POOLS[block.dim](feat, block.pool_kernel) if block.sub_sample else feat

    before = block.pool_position == 'before'
    source = pool(x) if before else x
    value = block.g(source) if before else pool(block.g(source))
    if block.mode == 'gaussian':
        query, key = x, pool(x)
    else:
        query = block.theta(x)
        key = block.phi(source) if before else pool(block.phi(source))
    query, key, value = (_sequences(f, block.scope) for f in (query, key, value))
    num_keys = key.shape[1]
    if block.mode == 'concatenation':
        pairs = torch.cat([
            query.transpose(1, 2).unsqueeze(-1).expand(-1, -1, -1, num_keys),
            key.transpose(1, 2).unsqueeze(-2).expand(-1, -1, query.shape[1], -1)], dim=1)
        weights = block.concat_project(pairs).squeeze(1) / num_keys
    else:
        logits = torch.matmul(query, key.transpose(1, 2))
        if block.mode == 'dot_product':
            weights = logits / num_keys
        else:
            scale = block.inter_channels**-0.5 if (
                block.mode == 'embedded_gaussian' and block.use_scale) else 1.0
            weights = (logits * scale).softmax(dim=-1)
    y = torch.matmul(weights, value)
    return x + block.conv_out(_feature_map(y, block.scope, x))


def sdpa_flop_jit(inputs, outputs):
    """``aten::scaled_dot_product_attention``: q.k^T and the weighted sum of v."""
    query, key, value = (get_shape(v) for v in inputs[:3])
    return math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])


def baddbmm_flop_jit(inputs, outputs):
    """``aten::baddbmm(bias, a, b)``: the batched product a @ b."""
    first, second = get_shape(inputs[1]), get_shape(inputs[2])
    return math.prod(first) * second[-1]


# ------------------------------------------------------------------------- analysis


def analyse(model, inputs, nl_flops='explicit'):
    """FLOPs per module (one multiply-add = 1) and parameters of ``model`` on ``inputs``.

    A recognizer (a model with ``extract_feat``) is run up to its backbone/neck
    features, as MMAction2 counts; any other module by its forward.

    Returns:
        dict: ``flops`` (Counter module name -> FLOPs, '' is the total),
        ``params`` (Counter module name -> parameters) and ``non_local``
        (list of (name, input shape, FLOPs) of every non-local block).
    """
    if nl_flops not in NL_FLOPS:
        raise ValueError(f'nl_flops must be one of {NL_FLOPS}, got {nl_flops!r}')
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, NonLocalBlock)}
    names = {m: name for name, m in blocks.items()}
    shapes = {}

    def record_shape(module, args):
        shapes[names[module]] = tuple(args[0].shape)

    hooks = [m.register_forward_pre_hook(record_shape) for m in blocks.values()]
    if nl_flops == 'explicit':
        for block in blocks.values():
            block.forward = lambda x, block=block: explicit_non_local(block, x)
    model.eval()
    if hasattr(model, 'extract_feat'):
        model.forward = lambda x: model.extract_feat(x)[0]
    try:
        analyzer = FlopAnalyzer(model, (inputs, ))
        analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit,
                               'aten::baddbmm', baddbmm_flop_jit)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        with torch.no_grad():
            flops = Counter({name: int(count) for name, count in analyzer.by_module().items()})
    finally:
        for hook in hooks:
            hook.remove()
        for module in [model, *blocks.values()]:
            vars(module).pop('forward', None)
    non_local = [(name, shapes[name], flops[name]) for name in blocks]
    return dict(flops=flops, params=parameter_count(model), non_local=non_local)


def _size(value):
    for unit, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if value >= scale:
            return f'{value / scale:.3g}{unit}'
    return str(value)


def format_table(result, max_depth=2):
    """Markdown table: the model, its modules down to ``max_depth``, every non-local block."""
    nl_names = {name for name, _, _ in result['non_local']}
    names = [''] + sorted(
        {n for n in result['params'] if n and n.count('.') < max_depth} | nl_names,
        key=lambda n: [int(p) if p.isdigit() else p for p in n.split('.')])
    rows = ['| module | #params | FLOPs |', '|:---|---:|---:|']
    for name in names:
        rows.append(f'| {name or "model"} | {_size(result["params"].get(name, 0))} | '
                    f'{_size(result["flops"].get(name, 0))} |')
    return '\n'.join(rows)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    shape = view_shape(cfg, args.shape)
    result = analyse(model, model_inputs(cfg, shape), args.nl_flops)
    print(f'config: {osp.basename(args.config)}')
    print(f'one view (N, C, T, H, W): {shape}; FLOPs of the backbone features, one multiply-add = '
          f'1 FLOP; non-local blocks: {args.nl_flops}')
    print(format_table(result, args.max_depth))
    print(f'\nFLOPs: {_size(result["flops"][""])}  params: {_size(result["params"][""])}')
    return result


if __name__ == '__main__':
    main()
