"""The non-local block of Wang et al., CVPR 2018 (paper Eq. 1-6), exact and memory-lean.

    z = BN(W_z y) + x,   y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)

Routes of :meth:`NonLocalBlock.forward`, named by :meth:`NonLocalBlock.route`. Each but
``reference`` and ``stored`` forms y (folded: W_z y) without an N x M tensor, and all
but ``reference`` end in one tail, z = norm(W_z y) + x.

===========  =============================  ==============================================
route        runs for                       kernel: why
===========  =============================  ==============================================
reference    ``impl='reference'``           :func:`.reference.reference_forward`: the
                                            paper's form, N x M weights formed (to check
                                            the others against and to count FLOPs).
projected    embedded Gaussian without      :func:`.kernels.softmax_attention.projected_
             sub-sampling, where            softmax_attention`: ``chunked``'s kernel with
             ``chunked`` would run          theta, phi and g projected inside it, which
                                            keeps x, not theta/phi/g, for backward.
chunked      Gaussian, embedded Gaussian    :func:`.kernels.softmax_attention.softmax_
             sub-sampled; ``impl=           attention` (``backward='chunked'``): SDPA, a
             'chunked'``, or ``'auto'`` on  backward that recomputes the weights as GEMMs
             CPU (the Gaussian: unless      and flushes subnormals (PyTorch's fused CPU
             ``stored``)                    backward is slower, and far slower on peaked
                                            Gaussian weights).
stored       ``impl='stored'``, or          :func:`.kernels.stored_weights.stored_softmax_
             ``'auto'`` on CPU for the      attention`: logits as one GEMM (no padding of
             Gaussian where each query's    g to x's width, which SDPA needs), softmax in
             keys number at most 16 x C     place, the weights kept for a backward of
             (the weights at most 16 x the  GEMMs, one for dx where the keys are the
             input's memory)                queries. Multiply-adds N M (2C + 3C'), or
                                            N M (3C + 3C') sub-sampled, against chunked's
                                            N M (5C + 2C') and mmcv's N M (3C + 3C'):
                                            fewer at any shape; the 16 C bound is on
                                            memory, beyond it chunked.
native       Gaussian, embedded Gaussian;   ``F.scaled_dot_product_attention`` forward and
             ``impl='native'``, or          backward by autograd: CUDA's flash / memory-
             ``'auto'`` on any non-CPU      efficient kernels, which keep no N x M matrix
             device                         either.
folded       dot product, ``spacetime``,    :func:`.kernels.dot_product.folded_dot_product`:
             not pooled after the convs,    theta, phi, g and W_z as one C x C map, fewer
             where :func:`.kernels.dot_     multiply-adds and no (N, C') embedding.
             product.folding_saves_work`
associative  other dot products             :func:`.kernels.dot_product.dot_product_
                                            attention`: K^T V first, O((N + M) D C').
separable    concatenation                  :func:`.kernels.concatenation.concatenation_
                                            attention`: ReLU(a_i + b_j) by sorted suffix
                                            sums, O((N + M) log M).
exported     any mode; ``impl`` not         :func:`.exported.exported_forward`: plain
             ``'reference'``, while         ops that ONNX expresses, one graph for every
             ``torch.onnx.export`` traces   input size (dynamic axes); the (embedded)
             the block                      Gaussian forms the N x M weights there.
===========  =============================  ==============================================

The tail's W_z and BatchNorm run as :func:`.kernels.output_norm.output_batch_norm`
(keeping y instead of W_z y) when the norm is a plain BatchNorm on batch statistics,
autograd records and one dtype is used without autocast; otherwise as W_z then the
norm module. Without autograd recording (inference) every kernel runs its plain
forward ops (SDPA, GEMMs), which tracers such as ``get_flops`` see. Dot product and
concatenation are not normalised by their weights, so under float16 autocast y can
leave float16's range where float32 holds it: those blocks then run in float32
(their ops are cheap).

The state-dict layout is mmcv's ``NonLocal1d/2d/3d`` (``g.conv``, ``theta.conv``,
``phi.conv``, ``conv_out.conv``, ``conv_out.<norm>``, ``concat_project.conv``), so
MMAction2 and MMSeg non-local checkpoints load as they are; the one difference
(mmcv nests sub-sampled convolutions in an ``nn.Sequential``) is mapped in
:func:`rename_mmcv_keys` when a block loads.
"""
import contextlib
import functools
import math

import torch
import torch.nn as nn

from . import autotune
from .conv_norm import ConvNorm
from .exported import exported_forward
from .kernels.common import autocast_dtype, records_grad
from .kernels.concatenation import concatenation_attention
from .kernels.dot_product import dot_product_attention, folded_dot_product, folding_saves_work
from .kernels.output_norm import output_batch_norm, sequence_conv
from .kernels.projection import fused_projection
from .kernels.softmax_attention import projected_softmax_attention, softmax_attention
from .kernels.stored_weights import stored_softmax_attention
from .reference import reference_forward

MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
SCOPES = ('spacetime', 'space', 'time')
POOL_POSITIONS = ('before', 'after')
IMPLS = ('auto', 'chunked', 'native', 'stored', 'reference')
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_MAX_POOLS = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DEFAULT_POOL_KERNELS = {1: (2, ), 2: (2, 2), 3: (1, 2, 2)}
# ``norm_layer``'s default: BatchNorm1d/2d/3d by the block's ``dim``.
BATCH_NORM = 'batch_norm'
# The plain Gaussian's weights are kept (route ``stored``) up to this many times the input.
_MAX_STORED_WEIGHTS = 16


def _choice(name, value, allowed):
    if not any(value == option and type(value) is type(option) for option in allowed):
        raise ValueError(f'{name} must be one of {allowed}, got {value!r}')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _pool_kernel(pool_kernel, dim):
    """Normalise ``pool_kernel`` (None, an int or ``dim`` ints >= 1) to a tuple."""
    if pool_kernel is None:
        return _DEFAULT_POOL_KERNELS[dim]
    kernel = (pool_kernel, ) * dim if _is_int(pool_kernel) else pool_kernel
    if (not isinstance(kernel, (tuple, list)) or len(kernel) != dim
            or not all(_is_int(k) and k >= 1 for k in kernel)):
        raise ValueError(f'pool_kernel must be None, an integer >= 1 or {dim} integers >= 1 '
                         f'for dim={dim}, got {pool_kernel!r}')
    return tuple(kernel)


def _add_residual(branch, x):
    """z = x + branch, written into ``branch`` (the block's fresh output, which no op keeps
    for backward) where it has the result's dtype: one activation-sized tensor less."""
    if torch.promote_types(branch.dtype, x.dtype) == branch.dtype:
        return branch.add_(x)
    return x + branch


def _norm_module(norm_layer, dim, channels):
    """The module ``norm_layer`` (see :class:`NonLocalBlock`) gives for ``channels``, or None."""
    if norm_layer is None:
        return None
    if norm_layer == BATCH_NORM:
        return _BATCH_NORMS[dim - 1](channels)
    if not callable(norm_layer):
        raise ValueError(f"norm_layer must be {BATCH_NORM!r}, None or a callable mapping the "
                         f'channel count to a module, got {norm_layer!r}')
    norm = norm_layer(channels)
    if not isinstance(norm, nn.Module):
        raise ValueError(f'norm_layer({channels}) must return an nn.Module, got {norm!r}')
    return norm


def _normal_init(conv, std):
    nn.init.normal_(conv.weight, 0, std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def rename_mmcv_keys(state_dict, prefix):
    """Rename, in place, the keys of a block under ``prefix`` from mmcv's sub-sampled layout
    (``g``/``phi`` as ``Sequential(conv, pool)``: ``g.0.conv.*``) to the block's (``g.conv.*``).

    Run by the block when it loads a state dict, and by checks that compare a checkpoint's
    keys with a model's before loading it.
    """
    for name in ('g', 'phi'):
        nested = f'{prefix}{name}.0.conv.'
        for key in [k for k in state_dict if k.startswith(nested)]:
            state_dict[f'{prefix}{name}.conv.' + key[len(nested):]] = state_dict.pop(key)


@contextlib.contextmanager
def _unnormalised_precision(x):
    """x, or x in float32 with autocast off under float16 autocast: the dot product's and
    concatenation's weights are not normalised, so y may leave float16's range."""
    device = x.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16:
        with torch.autocast(device, enabled=False):
            yield x.float()
    else:
        yield x


class NonLocalBlock(nn.Module):
    """Residual non-local block for 1D (N, C, L), 2D (N, C, H, W) or 3D (N, C, T, H, W) inputs.

    Args:
        in_channels (int): C, channels of the input and output.
        dim (int): 1, 2 or 3 spatial/temporal dimensions of the input.
        mode (str): pairwise function f: ``gaussian``, ``embedded_gaussian``
            (default), ``dot_product`` or ``concatenation``.
        reduction (int): bottleneck width C' = C // reduction (paper: 2).
        use_scale (bool): scale embedded-Gaussian logits by 1/sqrt(C'). The
            official Caffe2 code, PySlowFast and mmcv's default do (default:
            True); MMAction2's NL-I3D configs set it to False.
        sub_sample (bool): max-pool phi and g (paper: 2x2 spatial pooling).
        pool_kernel (int | tuple[int] | None): max-pool kernel (= stride) for
            sub-sampling, one entry per dimension (an int applies to all);
            default 2 (1D), (2, 2) (2D), (1, 2, 2) (3D). With ``scope='time'``
            it must not pool space, e.g. (2, 1, 1); with ``'space'`` not time.
        pool_position (str): ``before`` max-pools the input of the phi/g
            convolutions (official code, PySlowFast; default), ``after`` pools
            their outputs (mmcv, hence MMAction2 and MMSeg).
        scope (str): for 3D inputs, which positions each query attends to:
            ``spacetime`` (all, default), ``space`` (its own frame) or ``time``
            (the same spatial position in every frame). Must be ``spacetime``
            for 1D/2D inputs.
        norm_layer (str | callable | None): normalisation after W_z:
            ``'batch_norm'`` (default) is BatchNorm1d/2d/3d by ``dim``; a
            callable maps the channel count C to a module (e.g.
            ``functools.partial(nn.GroupNorm, 32)``); None: none (then W_z
            itself is zero-initialised). It sits under mmcv's key for its kind
            (``conv_out.bn``, ``conv_out.gn``, ...: :func:`.conv_norm.norm_key`).
        init_std (float): std of the Gaussian init of theta/phi/g/W_z
            (0.01 as in the official code and mmcv).
        zero_init (bool): zero-init the last normalisation's gamma (or W_z
            when ``norm_layer`` is None) so that a fresh block is the identity.
        impl (str): how the (embedded) Gaussian computes, the module
            docstring's table (:meth:`route` names the route a call takes):
            ``auto`` (default) picks by device and shape: on CPU ``chunked``
            (``projected`` for the embedded Gaussian without sub-sampling), or
            ``stored`` (the weights kept) for a plain Gaussian whose queries see
            at most 16 x ``in_channels`` keys; elsewhere ``native`` (PyTorch's
            fused attention backward); ``chunked``, ``native`` or ``stored``
            force one on any device. ``reference``, for every mode, runs
            :func:`.reference.reference_forward`, the paper's form with the
            N x M weights. With :func:`.autotune.set_autotune` on, ``auto``
            instead times the exact routes at each new input key and takes
            the fastest (opt-in, as ``torch.backends.cudnn.benchmark``).

    Shape:
        input and output: (N, C, *S) with len(S) == dim.
    """

    def __init__(self,
                 in_channels,
                 dim=2,
                 mode='embedded_gaussian',
                 reduction=2,
                 use_scale=True,
                 sub_sample=False,
                 pool_kernel=None,
                 pool_position='before',
                 scope='spacetime',
                 norm_layer=BATCH_NORM,
                 init_std=0.01,
                 zero_init=True,
                 impl='auto'):
        super().__init__()
        _choice('dim', dim, (1, 2, 3))
        _choice('mode', mode, MODES)
        _choice('impl', impl, IMPLS)
        _choice('pool_position', pool_position, POOL_POSITIONS)
        if dim != 3 and scope != 'spacetime':
            raise ValueError(f"scope must be 'spacetime' for dim={dim} inputs ({SCOPES} need "
                             f'dim=3), got {scope!r}')
        _choice('scope', scope, SCOPES)
        if not _is_int(in_channels) or in_channels < 1:
            raise ValueError(f'in_channels must be an integer >= 1, got {in_channels!r}')
        if not _is_int(reduction) or reduction < 1:
            raise ValueError(f'reduction must be an integer >= 1, got {reduction!r}')
        if in_channels // reduction < 1:
            raise ValueError(f'reduction must be <= in_channels so that in_channels // '
                             f'reduction >= 1, got in_channels={in_channels}, '
                             f'reduction={reduction}')
        pool_kernel = _pool_kernel(pool_kernel, dim)
        if sub_sample and scope == 'space' and pool_kernel[0] != 1:
            raise ValueError("pool_kernel must not pool time (first entry 1) with scope='space', "
                             f'got {pool_kernel!r}')
        if sub_sample and scope == 'time' and any(k != 1 for k in pool_kernel[1:]):
            raise ValueError("pool_kernel must not pool space (entries 2 and 3 equal 1) with "
                             f"scope='time', got {pool_kernel!r}; pass e.g. (2, 1, 1)")

        self.in_channels = in_channels
        self.inter_channels = in_channels // reduction
        self.dim = dim
        self.mode = mode
        self.use_scale = use_scale
        self.sub_sample = sub_sample
        self.pool_kernel = pool_kernel
        self.pool_position = pool_position
        self.scope = scope
        self.init_std = init_std
        self.zero_init = zero_init
        self.impl = impl

        conv = _CONVS[dim]

        def embed(out_channels):
            return ConvNorm(conv(in_channels, out_channels, 1))

        self.g = embed(self.inter_channels)
        if mode != 'gaussian':
            self.theta = embed(self.inter_channels)
            self.phi = embed(self.inter_channels)
        if mode == 'concatenation':
            self.concat_project = ConvNorm(nn.Conv2d(self.inter_channels * 2, 1, 1, bias=False),
                                           activation=nn.ReLU())
        norm = _norm_module(norm_layer, dim, in_channels)
        # As mmcv's ConvModule: no bias in W_z where a norm follows it.
        self.conv_out = ConvNorm(conv(self.inter_channels, in_channels, 1, bias=norm is None),
                                 norm=norm)
        self.pool = _MAX_POOLS[dim](kernel_size=pool_kernel) if sub_sample else nn.Identity()
        self.init_weights()

    def init_weights(self):
        """Gaussian weights (std ``init_std``) and zero biases; with ``zero_init`` the
        last norm's gamma and beta (or W_z without a norm) are zero: the identity block."""
        for name in ('g', 'theta', 'phi', 'conv_out'):
            if hasattr(self, name):
                _normal_init(getattr(self, name).conv, self.init_std)
        norm = self.conv_out.norm
        if not self.zero_init:
            return
        if norm is None:
            nn.init.zeros_(self.conv_out.conv.weight)
        else:
            for param in (getattr(norm, 'weight', None), getattr(norm, 'bias', None)):
                if param is not None:
                    nn.init.zeros_(param)

    # Embeddings -------------------------------------------------------------
    #
    # Positions are kept channel-last, as (N, L, D) sequences in the flat order of
    # the grid: that is the layout attention needs (unit channel stride), and the
    # 1x1 convolutions become batched GEMMs that read x in place and write it
    # directly, so no layout copy of theta/phi/g/y is made or kept for backward.

    def _conv_params(self, names):
        """Weights and biases (or None) of the 1x1 convolutions ``names``."""
        convs = [getattr(self, name).conv for name in names]
        return [conv.weight for conv in convs], [conv.bias for conv in convs]

    def _project(self, names, x):
        """The 1x1 convolutions ``names`` (fused) of x (N, C, *S) -> (N, L, sum of widths)."""
        return fused_projection(x.flatten(2).transpose(1, 2), *self._conv_params(names))

    def _pool_sequence(self, seq, grid):
        """Max-pool an (N, L, D) sequence over its grid -> (N, M, D) and the pooled grid."""
        n, _, d = seq.shape
        pooled = self.pool(seq.transpose(1, 2).reshape(n, d, *grid))
        return pooled.flatten(2).transpose(1, 2), tuple(pooled.shape[2:])

    def _embeddings(self, x):
        """theta(x_i) (x_i for ``gaussian``) and phi(x_j), g(x_j) on the key grid.

        Returns:
            tuple: query (N, L, D), key (N, M, D), value (N, M, C') as sequences
            in flat grid order, and the key grid (pooled when sub-sampling).
        """
        width = self.inter_channels
        pool_first = self.sub_sample and self.pool_position == 'before'
        source = self.pool(x) if pool_first else x  # what phi and g convolve
        if self.mode == 'gaussian':  # phi is the identity: the keys are x, pooled or not
            key_map = source if pool_first else self.pool(x)
            value = self._project(('g', ), source)
            if self.sub_sample and not pool_first:
                value, _ = self._pool_sequence(value, x.shape[2:])
            return (x.flatten(2).transpose(1, 2), key_map.flatten(2).transpose(1, 2), value,
                    tuple(key_map.shape[2:]))
        if pool_first:
            query = self._project(('theta', ), x)
            keys_values = self._project(('phi', 'g'), source)
        else:
            query, keys_values = self._project(('theta', 'phi', 'g'),
                                               x).split([width, 2 * width], dim=-1)
        key_grid = tuple(source.shape[2:])
        if self.sub_sample and not pool_first:
            keys_values, key_grid = self._pool_sequence(keys_values, key_grid)
        key, value = keys_values.split(width, dim=-1)
        return query, key, value, key_grid

    def _group(self, seq, grid):
        """(N, L, D) in flat grid order -> (B, L', D) sequences of one scope each."""
        if self.scope == 'spacetime':
            return seq
        n, _, d = seq.shape
        t, h, w = grid
        if self.scope == 'space':
            return seq.reshape(n * t, h * w, d)
        return seq.reshape(n, t, h * w, d).transpose(1, 2).reshape(n * h * w, t, d)

    def _ungroup(self, seq, grid):
        """Inverse of :meth:`_group`: (B, L', D) -> (N, L, D) in flat grid order."""
        if self.scope == 'spacetime':
            return seq
        t, h, w = grid
        d = seq.shape[-1]
        if self.scope == 'space':
            return seq.reshape(-1, t * h * w, d)
        return seq.reshape(-1, h * w, t, d).transpose(1, 2).reshape(-1, t * h * w, d)

    def _concat_weights(self):
        """Split w_f of ``concat_project`` into w_theta and w_phi, each (C',)."""
        weight = self.concat_project.conv.weight.reshape(2, self.inter_channels)
        return weight[0], weight[1]

    # Forward ------------------------------------------------------------------

    def _check_input(self, x):
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}(dim={self.dim}, in_channels='
                             f'{self.in_channels}) expects (N, {self.in_channels}, '
                             f'{self.dim} dims), got shape {tuple(x.shape)}')

    def forward(self, x):
        self._check_input(x)
        return self._ROUTES[self.route(x)](self, x)

    def route(self, x):
        """The name of the route (a row of the module docstring's table) that ``self(x)``
        takes, from ``impl``, ``mode``, x's (N, C, *S) device and shape, and whether
        ``torch.onnx.export`` is tracing the block. With :func:`.autotune.set_autotune`
        on, ``impl='auto'`` takes the exact route measured fastest at x's key (the first
        call at a key times them); otherwise the fixed rules of :meth:`rule_route`."""
        if self.impl == 'reference':
            return 'reference'
        if torch.onnx.is_in_onnx_export():
            return 'exported'
        if self.impl == 'auto' and autotune.applies(x):
            return autotune.tuned_route(self._autotune_key(x), self._exact_routes(x),
                                        functools.partial(self._trial, x), self,
                                        _MAX_STORED_WEIGHTS * x.numel() * x.element_size())
        return self.rule_route(x)

    def rule_route(self, x):
        """The route of the fixed rules (autotune off), from ``impl``, ``mode``, x's device
        and shape: the same on every machine."""
        if self.impl == 'reference':
            return 'reference'
        if self.mode == 'concatenation':
            return 'separable'
        grid = x.shape[2:]
        key_grid = self._key_grid(grid)
        if self.mode == 'dot_product':
            folds = self._can_fold() and folding_saves_work(
                self.in_channels, self.inter_channels, math.prod(grid), math.prod(key_grid))
            return 'folded' if folds else 'associative'
        if self.impl != 'auto':
            route = self.impl
        elif x.device.type != 'cpu':
            route = 'native'
        else:
            # The plain Gaussian's weights are kept where they take at most
            # _MAX_STORED_WEIGHTS times the input's memory.
            route = ('stored' if self.mode == 'gaussian' and self._keys_per_query(key_grid)
                     <= _MAX_STORED_WEIGHTS * self.in_channels else 'chunked')
        if route == 'chunked' and self.mode == 'embedded_gaussian' and not self.sub_sample:
            return 'projected'
        return route

    def _key_grid(self, grid):
        """The grid of the keys: the input's, pooled when sub-sampling."""
        return [s // k for s, k in zip(grid, self.pool_kernel)] if self.sub_sample else grid

    def _keys_per_query(self, key_grid):
        """How many keys each query attends to in the block's scope."""
        return {'spacetime': math.prod(key_grid), 'space': math.prod(key_grid[1:]),
                'time': key_grid[0]}[self.scope]

    def _can_fold(self):
        """Whether the dot product can take route ``folded``: every query sees every key,
        and phi, g embed the (pooled) input."""
        return self.scope == 'spacetime' and not (self.sub_sample and self.pool_position == 'after')

    # Autotune (:mod:`.autotune`) ---------------------------------------------------------------

    def _autotune_key(self, x):
        """The :class:`.autotune.RouteKey` of a call on x (N, C, *S)."""
        device = x.device.type
        autocast = (torch.get_autocast_dtype(device) if torch.amp.is_autocast_available(device)
                    and torch.is_autocast_enabled(device) else None)
        return autotune.RouteKey(
            mode=self.mode, shape=tuple(x.shape), inter_channels=self.inter_channels,
            sub_sample=self.sub_sample, pool_kernel=self.pool_kernel,
            pool_position=self.pool_position, scope=self.scope, dtype=x.dtype, device=x.device,
            grad=records_grad(x, *self.parameters()), autocast=autocast)

    def _exact_routes(self, x):
        """{route: bytes of the N x M tensors it forms} for every route exact for this block
        on x (``exported`` is for export only): the candidates autotune times."""
        pairs = x.shape[0] * math.prod(x.shape[2:]) * self._keys_per_query(
            self._key_grid(x.shape[2:]))
        itemsize = x.element_size()
        if self.mode == 'concatenation':
            # reference_forward concatenates (B, 2C', N, M) pairs and keeps them for backward.
            return {'separable': 0, 'reference': 4 * self.inter_channels * pairs * itemsize}
        # The reference's logits and weights, and what autograd keeps of them.
        routes = {'reference': 3 * pairs * itemsize}
        if self.mode == 'dot_product':
            routes.update({'associative': 0, **({'folded': 0} if self._can_fold() else {})})
            return routes
        routes.update(chunked=0, native=0)
        if self.mode == 'embedded_gaussian' and not self.sub_sample:
            routes['projected'] = 0
        # Its weights, in float32 at least, where autograd records (else the fused kernel).
        records = records_grad(x, *self.parameters())
        routes['stored'] = pairs * max(itemsize, 4) if records else 0
        return routes

    def _trial(self, x, route):
        """One call of ``route`` on x as the block would run it, for autotune to time: on a
        copy of x, with the backward where autograd records, no gradient accumulated."""
        inputs = x.detach().requires_grad_(x.requires_grad)
        out = self._ROUTES[route](self, inputs)
        leaves = [t for t in (inputs, *self.parameters()) if t.requires_grad]
        if out.requires_grad and leaves:
            torch.autograd.grad(out, leaves, torch.ones_like(out), allow_unused=True)

    # Routes: each gives z = norm(W_z y) + x of x (N, C, *S) ----------------------------------

    def _sequences(self, x):
        """theta/phi/g of x as sequences of one scope each: query (B, L', D), key (B, M', D)
        and value (B, M', C')."""
        query, key, value, key_grid = self._embeddings(x)
        return (self._group(query, tuple(x.shape[2:])), self._group(key, key_grid),
                self._group(value, key_grid))

    def _tail(self, y, x):
        """z = norm(W_z y) + x for y (B, L', C') of one scope each."""
        y = self._ungroup(y, tuple(x.shape[2:]))
        return _add_residual(self._output(y, x.shape), x)

    def _projected(self, x):
        grid = tuple(x.shape[2:])
        y = projected_softmax_attention(
            x.flatten(2).transpose(1, 2), *self._conv_params(('theta', 'phi', 'g')),
            self._softmax_scale(), functools.partial(self._group, grid=grid),
            functools.partial(self._ungroup, grid=grid))
        return self._tail(y, x)

    def _chunked(self, x):
        return self._tail(softmax_attention(*self._sequences(x), self._softmax_scale(), 'chunked'),
                          x)

    def _native(self, x):
        return self._tail(softmax_attention(*self._sequences(x), self._softmax_scale(), 'native'),
                          x)

    def _stored(self, x):
        query, key, value = self._sequences(x)
        keys_are_queries = self.mode == 'gaussian' and not self.sub_sample
        return self._tail(stored_softmax_attention(query, None if keys_are_queries else key,
                                                   value, self._softmax_scale()), x)

    def _folded(self, x):
        with _unnormalised_precision(x) as inputs:
            return _add_residual(self._folded_dot_product(inputs), x)

    def _associative(self, x):
        with _unnormalised_precision(x) as inputs:
            return self._tail(dot_product_attention(*self._sequences(inputs)), x)

    def _separable(self, x):
        with _unnormalised_precision(x) as inputs:
            query, key, value = self._sequences(inputs)
            w_theta, w_phi = self._concat_weights()
            return self._tail(concatenation_attention(query @ w_theta.to(query.dtype),
                                                      key @ w_phi.to(key.dtype), value), x)

    _ROUTES = {'reference': reference_forward, 'projected': _projected, 'chunked': _chunked,
               'stored': _stored, 'native': _native, 'folded': _folded,
               'associative': _associative, 'separable': _separable,
               'exported': exported_forward}

    def _folded_dot_product(self, x):
        """norm(W_z y) of the dot product from x (N, C, *S) by :func:`folded_dot_product`."""
        device = x.device.type
        dtype = autocast_dtype(x)

        def affine(name):
            conv = getattr(self, name).conv
            bias = None if conv.bias is None else conv.bias.to(dtype)
            return conv.weight.flatten(1).to(dtype), bias

        with torch.autocast(device, enabled=False):
            query_input = x.to(dtype)
            key_input = self.pool(query_input)  # the identity without sub-sampling
            out = folded_dot_product(query_input.flatten(2), key_input.flatten(2),
                                     affine('theta'), affine('phi'), affine('g'),
                                     *affine('conv_out')).reshape(x.shape)
        return self.conv_out.norm(out) if self.conv_out.with_norm else out

    def _output(self, y, shape):
        """norm(W_z y) for y (N, L, C') in flat grid order -> (N, C, *S) = ``shape``."""
        conv = self.conv_out.conv
        if self._fuses_batch_norm(y):
            return output_batch_norm(y, conv.weight, conv.bias, self.conv_out.norm, shape)
        out = sequence_conv(y, conv.weight.flatten(1), conv.bias).reshape(shape)
        return self.conv_out.norm(out) if self.conv_out.with_norm else out

    def _fuses_batch_norm(self, y):
        """Whether W_z and its norm run as :func:`output_batch_norm`: a plain BatchNorm on
        batch statistics, autograd recording, and one floating dtype without autocast."""
        norm = self.conv_out.norm if self.conv_out.with_norm else None
        if type(norm) not in _BATCH_NORMS or not (norm.training or norm.running_mean is None):
            return False
        weight = self.conv_out.conv.weight
        dtypes = {y.dtype, weight.dtype} | ({norm.weight.dtype} if norm.affine else set())
        return (records_grad(y, weight) and not torch.is_autocast_enabled(y.device.type)
                and len(dtypes) == 1)

    def _softmax_scale(self):
        """The embedded Gaussian's 1/sqrt(C') on the logits (``use_scale``), else 1."""
        if self.mode == 'embedded_gaussian' and self.use_scale:
            return 1.0 / math.sqrt(self.inter_channels)
        return 1.0

    # Checkpoint compatibility ---------------------------------------------------

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        rename_mmcv_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return (f'mode={self.mode}, dim={self.dim}, scope={self.scope}, inter_channels='
                f'{self.inter_channels}, use_scale={self.use_scale}, sub_sample='
                f'{self.sub_sample}, pool_kernel={self.pool_kernel}, pool_position='
                f'{self.pool_position}, impl={self.impl}')

