"""A measured route choice for ``NonLocalBlock(impl='auto')``, opt-in like cudnn.benchmark.

Off (the default), ``impl='auto'`` takes its route by fixed rules (the table in
:mod:`.non_local`): the same choice on every machine, tuned on one. Which route is
fastest depends on the CPU or GPU, its GEMM and attention kernels, the thread count
and the sizes, so a rule that wins on one machine can lose on another.

>>> import nlnet.ops
>>> nlnet.ops.set_autotune(True, memory_budget=2**30)

With autotune on, the first call of a block at a new :class:`RouteKey` (mode, input
sizes, sub-sampling, scope, dtype, device, grad mode, ...) times every route that is
exact for it and whose N x M tensors fit ``memory_budget``, once to warm up and then
``TIMED_RUNS`` times (the fastest run counts; a route whose warm-up takes twice the best
time so far stops there), forward and, where autograd records, backward; the fastest route is cached for the process and :meth:`NonLocalBlock.route`
returns it for that key. The trials leave no trace: buffers (BatchNorm's running
statistics) are restored and no gradient is accumulated. A block being traced by
``torch.compile`` or ``torch.onnx.export``, or on the ``meta`` device, takes the rules.
"""
import math
import time
from typing import NamedTuple

import torch

TIMED_RUNS = 2
GIVE_UP_FACTOR = 2


class RouteKey(NamedTuple):
    """What a tuned route is cached under: everything the routes' speed depends on."""
    mode: str
    shape: tuple  # the input's (batch, channels, *grid)
    inter_channels: int
    sub_sample: bool
    pool_kernel: tuple
    pool_position: str
    scope: str
    dtype: torch.dtype
    device: torch.device
    grad: bool  # whether autograd records the call (the backward is timed too)
    autocast: object  # autocast's dtype on the device, or None


class Decision(NamedTuple):
    """The route taken at a key, and the best time (s) of each route timed there."""
    route: str
    seconds: dict


class _Settings:
    enabled = False
    memory_budget = None


_settings = _Settings()
_decisions = {}


def set_autotune(enabled, memory_budget=None):
    """Turn the measured route choice on or off; either way the cached choices are dropped.

    Args:
        enabled (bool): time the exact routes at each new key (True) or take the fixed
            rules (False, the default).
        memory_budget (int | None): bytes the N x M tensors of a timed route may take
            (routes ``stored`` and ``reference`` form them; every other route keeps
            O(N + M)); None: 16 times the block's input, the bound the rules put on
            ``stored``.
    """
    if not isinstance(enabled, bool):
        raise ValueError(f'enabled must be True or False, got {enabled!r}')
    if memory_budget is not None and (not isinstance(memory_budget, int)
                                      or isinstance(memory_budget, bool) or memory_budget < 0):
        raise ValueError(f'memory_budget must be None or an integer number of bytes >= 0, '
                         f'got {memory_budget!r}')
    _settings.enabled = enabled
    _settings.memory_budget = memory_budget
    _decisions.clear()


def autotune_enabled():
    """Whether :func:`set_autotune` turned the measured choice on."""
    return _settings.enabled


def decisions():
    """A copy of the cached choices, {:class:`RouteKey`: :class:`Decision`}."""
    return dict(_decisions)


def applies(x):
    """Whether a call on x takes a measured route: autotune on, x on a real device, and no
    tracer (``torch.compile``, ``torch.onnx.export``, ``torch.jit``) running the block."""
    return (_settings.enabled and x.device.type != 'meta' and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def tuned_route(key, candidates, run, module, default_budget):
    """The route cached at ``key``, or the fastest of ``candidates`` that fit the budget.

    Args:
        key (RouteKey): the call's key.
        candidates (dict[str, int]): every exact route and the bytes of the N x M
            tensors it forms (0 for those that form none).
        run (callable): ``run(route)`` calls the route once as the block would
            (forward, and backward where ``key.grad``).
        module (nn.Module): the block; its buffers are restored after the trials.
        default_budget (int): the budget in bytes where :func:`set_autotune` gave none.

    Returns:
        str: the chosen route.
    """
    decision = _decisions.get(key)
    if decision is not None:
        return decision.route
    budget = default_budget if _settings.memory_budget is None else _settings.memory_budget
    fitting = [route for route, nbytes in candidates.items() if nbytes <= budget]
    if not fitting:
        raise ValueError(f'no route fits memory_budget={budget} bytes: {candidates}')
    saved = [buffer.clone() for buffer in module.buffers()]
    seconds = {}
    try:
        for route in fitting:
            seconds[route] = _best_time(run, route, key.device, min(seconds.values(), default=None))
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)
    route = min(seconds, key=seconds.get)
    _decisions[key] = Decision(route, seconds)
    return route


def _best_time(run, route, device, best_so_far):
    """The fastest of ``TIMED_RUNS`` calls after one to warm up (inf where memory ran out).
    A route whose warm-up already takes ``GIVE_UP_FACTOR`` times ``best_so_far`` is not
    timed further (the warm-up's time counts): it cannot win, and slow routes at large
    sizes take seconds a call."""
    best = math.inf
    try:
        for attempt in range(TIMED_RUNS + 1):
            _synchronize(device)
            start = time.perf_counter()
            run(route)
            _synchronize(device)
            elapsed = time.perf_counter() - start
            if attempt:
                best = min(best, elapsed)
            elif best_so_far is not None and elapsed > GIVE_UP_FACTOR * best_so_far:
                return elapsed
    except torch.OutOfMemoryError:
        return math.inf
    return best


def _synchronize(device):
    if device.type != 'cpu':
        torch.accelerator.synchronize(device)
