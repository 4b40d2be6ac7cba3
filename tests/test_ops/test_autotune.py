"""nlnet.ops.set_autotune: the measured route choice of impl='auto' is off by default, times only
exact routes that fit the memory budget, caches one route per key, and leaves no trace."""
import sys

import pytest
import torch

from nlnet.ops import NonLocalBlock, autotune, reference_forward, set_autotune

# The routes that form N x M tensors, which a memory budget can exclude.
QUADRATIC_ROUTES = {'stored', 'reference'}


@pytest.fixture(autouse=True)
def _autotune_off_after():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    set_autotune(False)
    torch.set_num_threads(threads)


def _randomised(block):
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0, 0.5)
    return block


def _trials_of(block, x):
    """The routes ``block.route(x)`` ran to time them (none where the key is cached)."""
    ran = []

    def profile(frame, event, arg):
        if event == 'call' and frame.f_code.co_name == '_trial':
            ran.append(frame.f_locals['route'])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        route = block.route(x)
    finally:
        sys.setprofile(previous)
    return route, ran


def test_off_by_default_the_rules_choose():
    assert not autotune.autotune_enabled()
    block = NonLocalBlock(8, mode='gaussian')
    x = torch.randn(2, 8, 6, 7)
    route, trials = _trials_of(block, x)
    assert route == block.rule_route(x) == 'stored'
    assert trials == [] and autotune.decisions() == {}


# (mode, sub_sample, pool_position, dim, size, scope, pool_kernel)
CONFIGS = [
    ('gaussian', False, 'before', 2, (5, 7), 'spacetime', None),
    ('embedded_gaussian', False, 'before', 2, (5, 7), 'spacetime', None),
    ('embedded_gaussian', True, 'after', 3, (3, 5, 7), 'space', (1, 2, 2)),
    ('gaussian', True, 'before', 3, (5, 3, 3), 'time', (2, 1, 1)),
    ('dot_product', False, 'before', 1, (11, ), 'spacetime', None),
    ('dot_product', True, 'after', 2, (5, 7), 'spacetime', None),
    ('concatenation', True, 'before', 2, (5, 7), 'spacetime', None),
]


@pytest.mark.parametrize('mode,sub_sample,pool_position,dim,size,scope,pool_kernel', CONFIGS)
def test_autotuned_route_matches_the_reference_and_trials_leave_no_trace(
        mode, sub_sample, pool_position, dim, size, scope, pool_kernel):
    torch.manual_seed(0)
    kwargs = dict(dim=dim, mode=mode, sub_sample=sub_sample, pool_position=pool_position,
                  scope=scope, pool_kernel=pool_kernel)
    block = _randomised(NonLocalBlock(6, **kwargs)).double().train()
    twin = _randomised(NonLocalBlock(6, **kwargs)).double().train()
    twin.load_state_dict(block.state_dict())
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    set_autotune(True, memory_budget=2**30)  # every exact route is timed

    x_tuned, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = block(x_tuned)
    decision = autotune.decisions()[block._autotune_key(x_tuned)]
    assert set(decision.seconds) == set(block._exact_routes(x))
    assert decision.route == block.route(x_tuned) == min(decision.seconds,
                                                          key=decision.seconds.get)
    want = reference_forward(twin, x_ref)
    grad_out = torch.randn_like(want)
    out.backward(grad_out)
    want.backward(grad_out)
    torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(x_tuned.grad, x_ref.grad, rtol=1e-9, atol=1e-10)
    # One forward's gradients and running statistics: the trials added none of theirs.
    for (name, got), wanted in zip(block.named_parameters(), twin.parameters()):
        torch.testing.assert_close(got.grad, wanted.grad, rtol=1e-9, atol=1e-10, msg=name)
    for (name, got), wanted in zip(block.named_buffers(), twin.buffers()):
        torch.testing.assert_close(got, wanted, rtol=1e-9, atol=1e-10, msg=name)


def test_one_timing_per_key_cached_for_the_process():
    set_autotune(True)
    block = NonLocalBlock(8, sub_sample=True)
    x = torch.randn(2, 8, 12, 16)
    route, trials = _trials_of(block, x)
    # The reference's 3 x 2 x 192 x 48 float32 values are beyond 16 times the input's.
    assert set(trials) == set(block._exact_routes(x)) - {'reference'}
    # A warm-up run each, then TIMED_RUNS more unless the warm-up was already far too slow.
    assert all(1 <= trials.count(r) <= autotune.TIMED_RUNS + 1 for r in set(trials))
    assert _trials_of(block, x) == (route, [])
    assert _trials_of(NonLocalBlock(8, sub_sample=True), x.clone()) == (route, [])
    assert _trials_of(block, torch.randn(3, 8, 12, 16))[1]  # a new key
    set_autotune(True)  # drops the cache
    assert _trials_of(block, x)[1]


def test_memory_budget_excludes_the_routes_that_form_n_by_m_tensors():
    block = NonLocalBlock(8, mode='gaussian', sub_sample=True)
    x = torch.randn(2, 8, 6, 8)
    key = block._autotune_key(x)
    candidates = block._exact_routes(x)
    assert QUADRATIC_ROUTES <= set(candidates)
    # stored keeps 2 x 48 x 12 float32 weights, reference 3 x that many values.
    assert candidates['stored'] == 2 * 48 * 12 * 4
    assert candidates['reference'] == 3 * 2 * 48 * 12 * 4
    for budget, want in [(0, set(candidates) - QUADRATIC_ROUTES),
                         (candidates['stored'], set(candidates) - {'reference'}),
                         (None, set(candidates)),  # 16 x the input's 3 KiB
                         (candidates['reference'], set(candidates))]:
        set_autotune(True, memory_budget=budget)
        route = block.route(x)
        assert set(autotune.decisions()[key].seconds) == want, budget
        assert route in want
    # Without autograd nothing keeps the weights: stored runs the fused kernel.
    with torch.no_grad():
        assert block._exact_routes(x)['stored'] == 0


def _key(block_kwargs=None, shape=(2, 8, 2, 4, 4), dtype=torch.float32, device='cpu',
         context=None):
    block = NonLocalBlock(8, dim=3, **(block_kwargs or {}))
    x = torch.empty(shape, dtype=dtype, device=device)
    with context or torch.enable_grad():
        return block._autotune_key(x)


def test_the_cache_key_changes_with_each_of_its_fields():
    base = _key()
    variants = {
        'mode': [_key(dict(mode='gaussian'))],
        'shape': [_key(shape=(1, 8, 2, 4, 4)), _key(shape=(2, 8, 2, 4, 6))],  # batch, grid
        'inter_channels': [_key(dict(reduction=4))],
        'sub_sample': [_key(dict(sub_sample=True))],
        'pool_kernel': [_key(dict(pool_kernel=(2, 2, 2)))],
        'pool_position': [_key(dict(pool_position='after'))],
        'scope': [_key(dict(scope='space'))],
        'dtype': [_key(dtype=torch.float64)],
        'device': [_key(device='meta')],
        'grad': [_key(context=torch.no_grad())],
        'autocast': [_key(context=torch.autocast('cpu', dtype=torch.bfloat16))],
    }
    assert set(variants) == set(autotune.RouteKey._fields)
    for field, keys in variants.items():
        for key in keys:
            assert key != base
            assert [f for f in key._fields if getattr(key, f) != getattr(base, f)] == [field]
    # Channels: the input's and the bottleneck's.
    channels = NonLocalBlock(16, dim=3)._autotune_key(torch.empty(2, 16, 2, 4, 4))
    assert {f for f in base._fields if getattr(channels, f) != getattr(base, f)} == {
        'shape', 'inter_channels'}


def test_meta_inputs_and_forced_impls_take_the_rules():
    set_autotune(True)
    x = torch.randn(2, 8, 6, 7)
    assert _trials_of(NonLocalBlock(8, mode='gaussian'), x.to('meta')) == ('native', [])
    assert _trials_of(NonLocalBlock(8, impl='native'), x) == ('native', [])
    assert _trials_of(NonLocalBlock(8, impl='reference'), x) == ('reference', [])
    assert autotune.decisions() == {}


@pytest.mark.parametrize('kwargs,message', [
    (dict(enabled=1), 'enabled must be True or False'),
    (dict(enabled=True, memory_budget=-1), 'memory_budget must be None or an integer'),
    (dict(enabled=True, memory_budget=1.5), 'memory_budget must be None or an integer'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        set_autotune(**kwargs)
