"""FLOPs and parameters of a module by mmengine's counter, with the ops nlnet's blocks run.

One multiply-add counts as one FLOP, as in every OpenMMLab ``get_flops.py``.
mmengine's :class:`~mmengine.analysis.FlopAnalyzer` has no handle for the fused
attention (``aten::scaled_dot_product_attention`` and the kernels it dispatches
to) nor for ``aten::baddbmm``; this module adds them, and counts non-local
blocks either as the paper writes them or as nlnet runs them:

- ``explicit``: every :class:`NonLocalBlock` is traced through
  :func:`nlnet.ops.reference.reference_forward`, which forms the
  N x M pairwise matrix (Eq. 1-6); this is how mmcv's ``NonLocal2d/3d``
  compute it, so MMAction2's and MMSeg's tools count the same;
- ``executed``: the block's own forward (fused attention, the folded dot
  product, batched GEMMs), which costs less at large N x M.

Every tool and benchmark of nlnet counts through :func:`count_flops`.
"""
import math
from collections import Counter
from contextlib import ExitStack, contextmanager

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape

from nlnet.ops import NonLocalBlock
from nlnet.ops.reference import reference_forward

NL_FLOPS = ('explicit', 'executed')
ATTENTION_OPS = ('aten::scaled_dot_product_attention',
                 'aten::_scaled_dot_product_flash_attention',
                 'aten::_scaled_dot_product_flash_attention_for_cpu',
                 'aten::_scaled_dot_product_efficient_attention',
                 'aten::_scaled_dot_product_cudnn_attention')


def attention_flops(query_shape, key_shape, value_shape):
    """Multiply-adds of softmax attention: q k^T (N M D) and the weighted sum of v (N M Dv).

    Args:
        query_shape (Sequence[int]): (..., N, D).
        key_shape (Sequence[int]): (..., M, D).
        value_shape (Sequence[int]): (..., M, Dv).
    """
    return math.prod(query_shape[:-1]) * key_shape[-2] * (query_shape[-1] + value_shape[-1])


def sdpa_flop_jit(inputs, outputs):
    """Handle of the fused attention ops: their first three inputs are q, k, v."""
    return attention_flops(*(get_shape(value) for value in inputs[:3]))


def baddbmm_flop_jit(inputs, outputs):
    """``aten::baddbmm(bias, a, b)``: the batched product a @ b, (B, N, K) x (B, K, M)."""
    first, second = get_shape(inputs[1]), get_shape(inputs[2])
    return math.prod(first) * second[-1]


FLOP_HANDLES = {**{op: sdpa_flop_jit for op in ATTENTION_OPS}, 'aten::baddbmm': baddbmm_flop_jit}


def flop_analyzer(model, inputs):
    """mmengine's :class:`FlopAnalyzer` of ``model(*inputs)`` with nlnet's handles, quiet."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(**FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


@contextmanager
def patched_forward(module, forward):
    """Run ``forward`` as ``module``'s forward inside the block (an instance attribute, removed
    on exit), so that the module names the tracer reports stay the module's own."""
    module.forward = forward
    try:
        yield module
    finally:
        vars(module).pop('forward', None)


def count_flops(model, inputs, nl_flops='explicit', forward=None):
    """FLOPs per module and parameters of ``model`` on ``inputs``, in eval mode, no grad.

    Args:
        model (nn.Module): any module; its non-local blocks are counted as ``nl_flops``.
        inputs (Tensor | tuple): the arguments of ``forward``.
        nl_flops (str): ``explicit`` or ``executed`` (module docstring).
        forward (callable, optional): what to trace instead of ``model.forward``
            (for instance a recognizer's ``extract_feat``); module names stay ``model``'s.

    Returns:
        dict: ``flops`` (Counter module name -> FLOPs; '' is the total), ``params``
        (Counter module name -> parameters) and ``non_local`` (list of
        (name, input shape, FLOPs) of every non-local block that ran).
    """
    if nl_flops not in NL_FLOPS:
        raise ValueError(f'nl_flops must be one of {NL_FLOPS}, got {nl_flops!r}')
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, NonLocalBlock)}
    names = {m: name for name, m in blocks.items()}
    shapes = {}

    def record_shape(module, args):
        shapes[names[module]] = tuple(args[0].shape)

    model.eval()
    with ExitStack() as stack:
        for block in blocks.values():
            stack.callback(block.register_forward_pre_hook(record_shape).remove)
            if nl_flops == 'explicit':
                stack.enter_context(patched_forward(
                    block, lambda x, block=block: reference_forward(block, x)))
        if forward is not None:
            stack.enter_context(patched_forward(model, forward))
        with torch.no_grad():
            by_module = flop_analyzer(model, inputs).by_module()
    flops = Counter({name: int(value) for name, value in by_module.items()})
    non_local = [(name, shapes[name], flops[name]) for name in blocks if name in shapes]
    return dict(flops=flops, params=parameter_count(model), non_local=non_local)


def format_size(value):
    """3 significant digits with a K/M/G/T suffix, as mmengine prints sizes."""
    for unit, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if value >= scale:
            return f'{value / scale:.3g}{unit}'
    return str(value)


def module_rows(result, max_depth=2, names=None):
    """Module names to list, in module order: the model (''), its modules down to
    ``max_depth`` (or exactly ``names``), and every non-local block."""
    order = {name: index for index, name in enumerate(result['params'])}
    if names is None:
        names = {n for n in order if n and n.count('.') < max_depth}
    names = set(names) | {name for name, _, _ in result['non_local']}
    return [''] + sorted(names - {''}, key=order.__getitem__)


def format_table(result, rows):
    """Markdown table of parameters and FLOPs of the modules ``rows`` ('' is the model)."""
    lines = ['| module | #params | FLOPs |', '|:---|---:|---:|']
    for name in rows:
        lines.append(f'| {name or "model"} | {format_size(result["params"].get(name, 0))} | '
                     f'{format_size(result["flops"].get(name, 0))} |')
    return '\n'.join(lines)
