"""NonLocalBlock: every route of its dispatcher against reference.py (the paper's Eq. 1-6 with
the explicit N x M weights), mmcv parity, initialisation, memory, precision, arguments."""
import os
import sys

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_plugin_layer
from mmcv.cnn.bricks.non_local import NonLocal1d, NonLocal2d, NonLocal3d
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict
from torch.utils._python_dispatch import TorchDispatchMode

from nlnet.ops import non_local
from nlnet.models.layers import NonLocalBlock
from nlnet.ops.reference import reference_forward

MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
MMCV_CLASSES = {1: NonLocal1d, 2: NonLocal2d, 3: NonLocal3d}
MMCV_POOL_KERNELS = {1: (2, ), 2: (2, 2), 3: (1, 2, 2)}
BN_TYPES = {1: 'BN1d', 2: 'BN2d', 3: 'BN3d'}
# (dim, spatial size, scope, pool kernel): odd sizes so that pooling floors.
GRIDS = [
    (1, (11, ), 'spacetime', (2, )),
    (2, (5, 7), 'spacetime', (2, 2)),
    (3, (3, 5, 7), 'spacetime', (1, 2, 2)),
    (3, (3, 5, 7), 'space', (1, 2, 2)),
    (3, (5, 3, 3), 'time', (2, 1, 1)),
]
# (sub_sample, pool_position)
SAMPLINGS = [(False, 'before'), (True, 'before'), (True, 'after')]


@pytest.fixture(autouse=True)
def _one_thread():
    """These inputs are tiny: a second intra-op thread only adds synchronisation,
    which costs seconds on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Helpers -------------------------------------------------------------------------------------


def _randomise(module, std=0.5):
    """Move every parameter (BN's affine included) and running statistic off its initial
    value: a fresh block is the identity, and the branch must not be swamped by x."""
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, std)
        for name, buffer in module.named_buffers():
            if 'running_mean' in name:
                buffer.normal_(0, std)
            elif 'running_var' in name:
                buffer.uniform_(0.5, 2)
    return module


def _value_and_grads(fn, x, params, grad_out):
    x = x.detach().requires_grad_()
    out = fn(x)
    return [out] + list(torch.autograd.grad(out, [x] + params, grad_out))


def _block(channels, dim, **kwargs):
    return NonLocalBlock(channels, dim=dim, **kwargs).double().train()


# Every route against reference.py (Eq. 1-6) ----------------------------------------------

# The softmax modes' three routes (all run on CPU); the other modes have one each.
ROUTES = [(mode, impl) for mode in MODES[:2] for impl in ('chunked', 'native', 'stored')] + \
    [(mode, 'auto') for mode in MODES[2:]]


def _assert_matches_reference(block, x):
    """block(x) equals reference_forward(block, x), and so do the gradients w.r.t. x and
    every parameter, for one random upstream gradient (float64, relative tolerance)."""
    params = list(block.parameters())
    grad_out = torch.randn_like(x)
    got = _value_and_grads(block, x, params, grad_out)
    want = _value_and_grads(lambda t: reference_forward(block, t), x, params, grad_out)
    names = ['output', 'x'] + [name for name, _ in block.named_parameters()]
    for name, g, w in zip(names, got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10, msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('sub_sample,pool_position', SAMPLINGS)
@pytest.mark.parametrize('dim,size,scope,pool_kernel', GRIDS)
@pytest.mark.parametrize('mode,impl', ROUTES)
def test_every_route_matches_the_reference(mode, impl, dim, size, scope, pool_kernel,
                                           sub_sample, pool_position, training):
    torch.manual_seed(0)
    block = _randomise(_block(6, dim, mode=mode, scope=scope, sub_sample=sub_sample,
                              pool_kernel=pool_kernel, pool_position=pool_position, impl=impl))
    block.train(training)
    _assert_matches_reference(block, torch.randn(2, 6, *size, dtype=torch.float64))


def test_auto_takes_the_chunked_backward_on_cpu_and_native_elsewhere():
    x = torch.randn(1, 8, 3, 3)
    # Without sub-sampling the embedded Gaussian's chunked route projects theta/phi/g itself.
    assert NonLocalBlock(8).route(x) == 'projected'
    assert NonLocalBlock(8, sub_sample=True).route(x) == 'chunked'
    assert NonLocalBlock(8).route(x.to('meta')) == 'native'
    assert NonLocalBlock(8, impl='native').route(x) == 'native'
    assert NonLocalBlock(8, impl='chunked').route(x.to('meta')) == 'projected'
    assert NonLocalBlock(8, impl='chunked', sub_sample=True).route(x.to('meta')) == 'chunked'
    assert NonLocalBlock(8, impl='stored').route(x.to('meta')) == 'stored'
    assert NonLocalBlock(8, impl='reference').route(x) == 'reference'


@pytest.mark.parametrize('dim,size,kwargs,stored', [
    # Keys per query up to 16 x C = 128 keep the plain Gaussian's weights on CPU.
    (2, (8, 16), {}, True),
    (2, (8, 17), {}, False),
    (2, (16, 32), dict(sub_sample=True), True),
    (2, (16, 34), dict(sub_sample=True), False),
    # Restricted scopes count the keys of one frame (space) or one position (time).
    (3, (2, 8, 16), dict(scope='space'), True),
    (3, (2, 8, 17), dict(scope='space'), False),
    (3, (129, 1, 1), dict(scope='time'), False),
    (3, (256, 1, 1), dict(scope='time', sub_sample=True, pool_kernel=(2, 1, 1)), True),
])
def test_auto_keeps_the_plain_gaussian_weights_where_they_are_small(dim, size, kwargs, stored):
    x = torch.empty(1, 8, *size)
    want = 'stored' if stored else 'chunked'
    assert NonLocalBlock(8, dim=dim, mode='gaussian', **kwargs).route(x) == want
    # Never the embedded Gaussian's, nor off the CPU.
    embedded = 'chunked' if kwargs.get('sub_sample') else 'projected'
    assert NonLocalBlock(8, dim=dim, **kwargs).route(x) == embedded
    assert NonLocalBlock(8, dim=dim, mode='gaussian', **kwargs).route(x.to('meta')) == 'native'


def _table_routes():
    """The route names of non_local.py's docstring table, in its order."""
    lines = non_local.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith('====')]
    return [line.split()[0] for line in lines[rules[1] + 1:rules[2]] if line[:1].strip()]


# One configuration per route, run on CPU for training, and the function of its kernel
# (the table's third column) that no other route calls.
ROUTE_CASES = [
    ('reference', dict(impl='reference'), (6, 7), 'reference_forward'),
    ('projected', {}, (6, 7), '_ProjectedSoftmaxAttention.forward'),
    ('chunked', dict(sub_sample=True), (6, 7), '_SoftmaxAttention.forward'),
    ('chunked', dict(mode='gaussian'), (8, 17), '_SoftmaxAttention.forward'),
    ('stored', dict(mode='gaussian'), (6, 7), '_StoredSoftmaxAttention.forward'),
    ('stored', dict(impl='stored'), (6, 7), '_StoredSoftmaxAttention.forward'),
    ('native', dict(impl='native'), (6, 7), 'fused_softmax_attention'),
    ('folded', dict(mode='dot_product'), (6, 7), 'folded_dot_product'),
    ('associative', dict(mode='dot_product', sub_sample=True, pool_position='after'), (6, 7),
     'dot_product_attention'),
    ('separable', dict(mode='concatenation'), (6, 7), 'concatenation_attention'),
]


def test_every_route_of_the_table_has_a_configuration_and_a_dispatch():
    routes = _table_routes()
    assert routes == ['reference', 'projected', 'chunked', 'stored', 'native', 'folded',
                      'associative', 'separable', 'exported']
    assert set(NonLocalBlock._ROUTES) == set(routes)
    # 'exported' runs only while torch.onnx.export traces: tests/test_ops/test_onnx_export.py.
    assert {case[0] for case in ROUTE_CASES} == set(routes) - {'exported'}


@pytest.mark.parametrize('route,kwargs,size,kernel', ROUTE_CASES)
def test_route_names_the_kernel_forward_runs(route, kwargs, size, kernel):
    block = NonLocalBlock(8, dim=2, **kwargs).train()
    x = torch.randn(2, 8, *size, requires_grad=True)
    assert block.route(x) == route
    layers = os.path.dirname(non_local.__file__)
    called = set()

    def profile(frame, event, arg):
        if event == 'call' and frame.f_code.co_filename.startswith(layers):
            called.add(frame.f_code.co_qualname)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        block(x)
    finally:
        sys.setprofile(previous)
    kernels = {case[3] for case in ROUTE_CASES}
    assert called & kernels == {kernel}, sorted(called)


@pytest.mark.parametrize('impl', ['auto', 'native'])
@pytest.mark.parametrize('norm_cfg', [dict(type='GN', num_groups=2), None])
def test_other_norms_match_the_reference(impl, norm_cfg):
    torch.manual_seed(0)
    block = _randomise(_block(6, 2, norm_cfg=norm_cfg, impl=impl))
    _assert_matches_reference(block, torch.randn(2, 6, 4, 5, dtype=torch.float64))


def test_reference_impl_is_the_forward():
    torch.manual_seed(0)
    block = _randomise(_block(6, 3, scope='space', sub_sample=True, impl='reference'))
    x = torch.randn(2, 6, 3, 4, 4, dtype=torch.float64)
    assert torch.equal(block(x), reference_forward(block, x))


@pytest.mark.parametrize('channels,size,sub_sample,pool_position,folds', [
    (4, (6, 7), False, 'before', True),
    (4, (6, 7), True, 'before', True),
    (4, (6, 7), True, 'after', False),  # mmcv's pooled phi/g must be formed
    (16, (2, 3), False, 'before', False),  # too few positions for folding to pay
])
def test_dot_product_folded_or_not_matches_the_reference(channels, size, sub_sample, pool_position,
                                                 folds):
    torch.manual_seed(0)
    block = _randomise(_block(channels, 2, mode='dot_product', sub_sample=sub_sample,
                              pool_position=pool_position))
    x = torch.randn(2, channels, *size, dtype=torch.float64)
    assert block.route(x) == ('folded' if folds else 'associative')
    _assert_matches_reference(block, x)


@pytest.mark.parametrize('use_scale', [True, False])
def test_embedded_gaussian_scale_option(use_scale):
    torch.manual_seed(0)
    block = _randomise(_block(8, 2, use_scale=use_scale, reduction=4))
    x = torch.randn(1, 8, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(block(x), reference_forward(block, x), rtol=1e-10, atol=1e-10)


# mmcv parity and checkpoints ----------------------------------------------------------------


def _mmcv_name(name, mode, sub_sample):
    """mmcv nests sub-sampled g/phi as Sequential(conv, pool):
    'g.conv.weight' -> 'g.0.conv.weight'."""
    if sub_sample and (name.startswith('g.') or (name.startswith('phi.') and mode != 'gaussian')):
        head, rest = name.split('.', 1)
        return f'{head}.0.{rest}'
    return name


@pytest.mark.parametrize('impl', ['auto', 'reference'])
@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('dim', [1, 2, 3])
@pytest.mark.parametrize('mode,use_scale', [(m, True) for m in MODES]
                         + [('embedded_gaussian', False)])
def test_parity_with_mmcv(mode, use_scale, dim, sub_sample, impl):
    # impl='reference': reference.py itself against mmcv's independent code.
    torch.manual_seed(0)
    norm_cfg = dict(type=BN_TYPES[dim])
    ref = _randomise(MMCV_CLASSES[dim](8, mode=mode, use_scale=use_scale, sub_sample=sub_sample,
                                       norm_cfg=norm_cfg)).double()
    ours = _block(8, dim, mode=mode, use_scale=use_scale, sub_sample=sub_sample,
                  pool_position='after', norm_cfg=norm_cfg, impl=impl)
    assert ours.pool_kernel == MMCV_POOL_KERNELS[dim]
    # mmcv's sub-sampled 'g.0.conv.*' / 'phi.0.conv.*' keys load through the mapping.
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 8, *[5, 6, 7][3 - dim:], dtype=torch.float64)
    ours_params = dict(ours.named_parameters())
    names = list(ours_params)
    ref_params = dict(ref.named_parameters())
    assert sorted(_mmcv_name(n, mode, sub_sample) for n in names) == sorted(ref_params)
    grad_out = torch.randn_like(x)
    if mode == 'concatenation':
        # mmcv divides its in-place ReLU's output in place, so its concatenation
        # cannot be back-propagated; our gradients are checked against Eq. 5 above.
        with pytest.raises(RuntimeError, match='inplace operation'):
            _value_and_grads(ref, x, list(ref_params.values()), grad_out)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-9, atol=1e-10)
        return
    got = _value_and_grads(ours, x, [ours_params[n] for n in names], grad_out)
    want = _value_and_grads(
        ref, x, [ref_params[_mmcv_name(n, mode, sub_sample)] for n in names], grad_out)
    for name, g, w in zip(['output', 'x'] + names, got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10, msg=lambda m: f'{name}: {m}')
    for key, value in ref.state_dict().items():  # running BN statistics updated alike
        if 'running' in key:
            torch.testing.assert_close(ours.state_dict()[key], value)


def test_mmcv_checkpoint_loads_nested_through_mmengine():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Identity(), _randomise(NonLocal3d(8, sub_sample=True,
                                                             norm_cfg=dict(type='BN3d'))))
    ours = nn.Sequential(nn.Identity(), NonLocalBlock(8, dim=3, sub_sample=True,
                                                      pool_position='after'))
    state = ref.state_dict()
    assert '1.g.0.conv.weight' in state and '1.phi.0.conv.weight' in state
    mmengine_load_state_dict(ours, state, strict=True)
    ours.eval(), ref.eval()
    x = torch.randn(1, 8, 2, 6, 6)
    torch.testing.assert_close(ours(x), ref(x))


# Initialisation -----------------------------------------------------------------------------


@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), dict(type='GN', num_groups=2), None])
@pytest.mark.parametrize('mode', MODES)
def test_identity_at_initialisation(mode, norm_cfg):
    torch.manual_seed(0)
    for dim, size, scope, pool_kernel in GRIDS:
        block = NonLocalBlock(8, dim=dim, mode=mode, scope=scope, sub_sample=True,
                              pool_kernel=pool_kernel, norm_cfg=norm_cfg)
        x = torch.randn(2, 8, *size)
        assert torch.equal(block(x), x)
        assert torch.equal(block.eval()(x), x)


def test_init_weights_restores_identity_after_parent_init():
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=3)
    nn.init.ones_(block.conv_out.norm.weight)  # what a from-scratch parent init does
    x = torch.randn(1, 8, 2, 3, 3)
    assert not torch.equal(block(x), x)
    block.init_weights()
    assert torch.equal(block(x), x)
    for name in ('g', 'theta', 'phi'):  # theta/phi/g ~ N(0, 0.01^2), as the official code
        weight = getattr(block, name).conv.weight
        assert 0.002 < weight.std().item() < 0.02


@pytest.mark.parametrize('init_std', [0.01, 0.05])
def test_init_std_and_zero_init(init_std):
    torch.manual_seed(0)
    block = NonLocalBlock(64, dim=2, init_std=init_std)
    for name in ('g', 'theta', 'phi', 'conv_out'):  # 2048 weights each: std within 10%
        conv = getattr(block, name).conv
        assert abs(conv.weight.std().item() / init_std - 1) < 0.1, name
        assert conv.bias is None or not conv.bias.any(), name
    assert torch.equal(block.conv_out.norm.weight, torch.zeros(64))
    kept = NonLocalBlock(64, dim=2, zero_init=False)
    assert torch.equal(kept.conv_out.norm.weight, torch.ones(64))
    x = torch.randn(1, 64, 3, 4)
    assert not torch.equal(kept(x), x)


# No affinity-sized tensor on the training path ---------------------------------------------


class _RecordOutputs(TorchDispatchMode):
    """Records the largest tensor every aten op (forward and backward) produces, and the ops."""

    def __init__(self):
        super().__init__()
        self.largest = (0, None)
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.add(func.overloadpacket.__name__)
        for t in (out if isinstance(out, (tuple, list)) else (out, )):
            if isinstance(t, torch.Tensor) and t.numel() > self.largest[0]:
                self.largest = (t.numel(), str(func))
        return out


@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('mode,impl,dtype', [
    (mode, impl, dtype) for mode, impl in ROUTES for dtype in (torch.float32, torch.float64)
    # The native route: once, it is PyTorch's; the stored route keeps the weights by design.
    if impl != 'stored' and (impl != 'native' or dtype == torch.float32)])
def test_training_path_never_holds_the_affinity_matrix(mode, impl, dtype, sub_sample):
    # A grid large enough that the softmax modes' backward blocks (bounded in size,
    # not in proportion to N x M) are far below a sixteenth of the affinity matrix.
    torch.manual_seed(0)
    block = _randomise(NonLocalBlock(16, dim=2, mode=mode, sub_sample=sub_sample, impl=impl), 0.1)
    block = block.to(dtype)
    x = torch.randn(1, 16, 112, 112, dtype=dtype, requires_grad=True)
    num_queries = 112 * 112
    affinity = num_queries * (num_queries // 4 if sub_sample else num_queries)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    recorder = _RecordOutputs()
    with recorder, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x).square().sum().backward()
    assert saved and max(saved) < affinity / 16, (max(saved), affinity)
    assert recorder.largest[0] < affinity / 16, (recorder.largest, affinity)
    for param in block.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()
    # The softmax modes run through F.scaled_dot_product_attention's fused kernel.
    fused = any(op.startswith('_scaled_dot_product_flash_attention') for op in recorder.ops)
    assert fused == (mode in ('gaussian', 'embedded_gaussian')), sorted(recorder.ops)


# Precision ----------------------------------------------------------------------------------


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('sub_sample', [True, False])
@pytest.mark.parametrize('mode', MODES)
def test_autocast_gives_no_inf_or_nan_where_fp32_does_not(mode, sub_sample, dtype):
    torch.manual_seed(0)
    block = NonLocalBlock(16, dim=3, mode=mode, sub_sample=sub_sample)
    with torch.no_grad():
        block.conv_out.norm.weight.fill_(1.0)
        for name in ('theta', 'phi'):
            if hasattr(block, name):
                getattr(block, name).conv.weight.normal_(0, 1.0)
        x = 60 * torch.randn(2, 16, 4, 6, 6)
        # The stress: products theta(x_i).phi(x_j), which an explicit N x M form
        # would hold, exceed float16's range.
        query = x if mode == 'gaussian' else block.theta(x)
        key = block.pool(x) if mode == 'gaussian' else block.phi(block.pool(x))
        products = query.flatten(2).transpose(1, 2) @ key.flatten(2)
        assert products.abs().max() > torch.finfo(torch.float16).max

    def run(autocast):
        inp = x.clone().requires_grad_()
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            out = block(inp)
        grads = torch.autograd.grad(out.float().square().mean(), [inp] + list(block.parameters()))
        return out.float(), grads

    out32, grads32 = run(False)
    assert torch.isfinite(out32).all() and all(torch.isfinite(g).all() for g in grads32)
    out_half, grads_half = run(True)
    assert torch.isfinite(out_half).all()
    assert all(torch.isfinite(g).all() for g in grads_half)
    torch.testing.assert_close(out_half, out32, rtol=0.05, atol=0.05 * out32.abs().max().item())


# Arguments, registry, plugins ---------------------------------------------------------------


@pytest.mark.parametrize('kwargs,message', [
    (dict(mode='softmax'), "mode must be one of ('gaussian', 'embedded_gaussian', "
     "'dot_product', 'concatenation'), got 'softmax'"),
    (dict(dim=4), 'dim must be one of (1, 2, 3), got 4'),
    (dict(dim=2, scope='space'), "scope must be 'spacetime' for dim=2"),
    (dict(dim=1, scope='time'), "scope must be 'spacetime' for dim=1"),
    (dict(dim=3, scope='frames'), "scope must be one of ('spacetime', 'space', 'time')"),
    (dict(reduction=0), 'reduction must be an integer >= 1, got 0'),
    (dict(reduction=1.5), 'reduction must be an integer >= 1, got 1.5'),
    (dict(reduction=16), 'reduction must be <= in_channels'),
    (dict(pool_position='middle'), "pool_position must be one of ('before', 'after')"),
    (dict(impl='fast'),
     "impl must be one of ('auto', 'chunked', 'native', 'stored', 'reference'), got 'fast'"),
    (dict(dim=3, pool_kernel=(2, 2)), 'pool_kernel must be None, an integer >= 1 or 3 integers'),
    (dict(dim=2, pool_kernel=0), 'pool_kernel must be None, an integer >= 1 or 2 integers'),
    (dict(dim=2, pool_kernel=(2.0, 2)), 'pool_kernel must be None'),
    (dict(dim=3, scope='time', sub_sample=True), "pool_kernel must not pool space"),
    (dict(dim=3, scope='space', sub_sample=True, pool_kernel=(2, 2, 2)),
     'pool_kernel must not pool time'),
])
def test_bad_arguments_fail_in_init(kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        NonLocalBlock(8, **kwargs)
    assert message in str(info.value)


def test_int_pool_kernel_and_bad_input_shape():
    assert NonLocalBlock(8, dim=3, pool_kernel=2).pool_kernel == (2, 2, 2)
    with pytest.raises(ValueError, match=r'expects \(N, 8, 2 dims\), got shape \(1, 8, 4\)'):
        NonLocalBlock(8, dim=2)(torch.randn(1, 8, 4))


def test_registry_and_plugin_builds():
    block = MODELS.build(dict(type='NonLocalBlock', in_channels=8, dim=3))
    assert isinstance(block, NonLocalBlock) and block.dim == 3
    name, layer = build_plugin_layer(dict(type='NonLocalBlock', dim=2), in_channels=16)
    # mmcv's NonLocal2d plugin name: mmdet checkpoints with it load unchanged.
    assert name == NonLocal2d._abbr_ == 'nonlocal_block' and isinstance(layer, NonLocalBlock)
    assert build_plugin_layer(dict(type='NonLocalBlock'), postfix=2, in_channels=8)[0] == \
        'nonlocal_block2'
    assert layer.in_channels == 16
    x = torch.randn(1, 16, 5, 5)
    assert torch.equal(layer(x), x)
