"""Forward+backward time and peak memory of nlnet's NonLocalBlock against mmcv's NonLocal2d/3d.

Every (case, mode, implementation) runs in a fresh Python process, so that one
case's allocator state, library caches or thread pools cannot leak into another.
In that process the module and its input are built, a small warm-up initialises
the libraries, then:

* peak memory of a full-size forward+backward above the memory held before it
  (inputs and weights allocated), by ``_measure.PeakMemory``: ``'tensors'`` (live
  tensor bytes: ``max_memory_allocated`` on CUDA, the profiler's allocation record
  on CPU, a second pass), and on CPU also ``'resident'`` (the resident-set
  high-water mark of the first pass), which adds what the C allocator keeps of
  freed blocks;
* wall time: median of ``--repeats`` further forward+backward passes;
* for nlnet's embedded Gaussian, the fp32 GEMM rate (``torch.mm`` of 2048^3)
  right before and after the timed passes, so that its rate (12 N M C' flops
  per fwd+bwd, ``_measure.attention_train_flops``) is compared with the GEMM rate
  under the same machine load, and the time of the attention alone on the case's sizes.

mmcv cases whose estimated memory exceeds ``--mmcv-mem-limit-gb`` are not run;
the record says why.

Implementations (columns), each in its own process:

* ``nlnet``: ``NonLocalBlock`` as shipped, ``impl='auto'`` by its fixed rules (the
  record names the route, :meth:`NonLocalBlock.rule_route`);
* ``nlnet_autotune``: the same block with ``nlnet.ops.set_autotune(True)`` (default
  memory budget): the first full-size call times the exact routes (``tune_seconds``,
  each route's best time in ``tuned``) and the timed passes run the fastest;
* ``mmcv``: mmcv's ``NonLocal2d/3d`` (the explicit N x M forms);
* with ``--compile``, ``nlnet_compiled`` and ``mmcv_compiled``: the same modules
  through ``torch.compile`` (inductor, static shapes). Their first full-size pass
  compiles (``compile_seconds``, not in the timed passes); the record has the
  compiled output's largest difference from eager's, relative to eager's largest
  value (``max_rel_diff_vs_eager``). The driver also prints, for one small block per
  route, ``torch._dynamo.explain``'s graph and graph-break counts.

Cases (fp32, forward+backward of one block, BN after W_z):

* (a) (1, 512, 64, 128), no sub-sampling, N = M = 8192: MMSeg's NLHead at a
  512x1024 crop (the embedded-Gaussian, dot-product and concatenation targets);
* (b) (2, 512, 8, 28, 28), sub-sampled, N = 6272, M = 1568: NL-I3D res3;
* (c) (2, 1024, 8, 14, 14), sub-sampled, N = 1568, M = 392: NL-I3D res4.

The default (cases a and b, 3 timed passes) takes about 4 minutes on 2 idle
cores, most of it mmcv's explicit forms; ``--cases a b c`` adds res4, and
``--repeats`` more passes. Examples::

    flock /tmp/nlnet-bench.lock python benchmarks/bench_non_local.py --json bench.json
    python benchmarks/bench_non_local.py --compile --cases a --budget-s 1500
    python benchmarks/bench_non_local.py --cases a b c --repeats 5
    python benchmarks/bench_non_local.py --cases a --modes embedded_gaussian --repeats 5
    python benchmarks/bench_non_local.py --device cuda
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from _measure import PeakMemory, attention_train_flops, machine_info, sync

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
IMPLS = ('nlnet', 'nlnet_autotune', 'mmcv', 'nlnet_compiled', 'mmcv_compiled')
DEFAULT_IMPLS = IMPLS[:3]
COMPILED_IMPLS = IMPLS[3:]
# name: (input shape, sub_sample, use_scale, what it stands for)
CASES = {
    'a': ((1, 512, 64, 128), False, True, 'MMSeg NLHead at a 512x1024 crop'),
    'b': ((2, 512, 8, 28, 28), True, False, 'NL-I3D res3'),
    'c': ((2, 1024, 8, 14, 14), True, False, 'NL-I3D res4'),
}
GEMM_SIZE = 2048
GIB = 1024**3


# Sizes and estimates ---------------------------------------------------------------------------


def case_sizes(case):
    """Batch, channels, bottleneck C', queries N, keys M and input bytes (fp32) of a case."""
    shape, sub_sample, _, _ = CASES[case]
    batch, channels, *grid = shape
    num_queries = 1
    for s in grid:
        num_queries *= s
    pooled = (2, ) if len(grid) == 1 else (2, 2) if len(grid) == 2 else (1, 2, 2)
    num_keys = 1
    for s, k in zip(grid, pooled):
        num_keys *= s // k if sub_sample else s
    return dict(shape=list(shape), batch=batch, channels=channels, inter_channels=channels // 2,
                queries=num_queries, keys=num_keys, input_bytes=4 * batch * channels * num_queries)


def mmcv_estimated_bytes(case, mode):
    """Peak bytes of mmcv's explicit forms above the input (fp32).

    Softmax modes and the dot product keep the (batch, N, M) weights for backward and
    hold about two more of them while back-propagating. Concatenation builds the
    (batch, 2C', N, M) concatenation from two repeated (batch, C', N, M) halves.
    """
    s = case_sizes(case)
    pairs = s['batch'] * s['queries'] * s['keys']
    if mode == 'concatenation':
        return 2 * 4 * pairs * 2 * s['inter_channels']
    return 3 * 4 * pairs


def available_bytes():
    with open('/proc/meminfo') as f:
        return int(re.search(r'MemAvailable:\s+(\d+)', f.read()).group(1)) * 1024


# Worker: one case in this (fresh) process ----------------------------------------------------------


def gemm_rate(device, size=GEMM_SIZE, repeats=5):
    """fp32 flop/s of torch.mm on size^3 (median of ``repeats``)."""
    import torch
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    times = []
    for i in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        if i:  # the first call warms up
            times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def build_module(impl, case, mode):
    import torch
    shape, sub_sample, use_scale, _ = CASES[case]
    dim = len(shape) - 2
    torch.manual_seed(0)
    if impl == 'mmcv':
        from mmcv.cnn.bricks.non_local import NonLocal2d, NonLocal3d
        cls = NonLocal2d if dim == 2 else NonLocal3d
        module = cls(shape[1], mode=mode, sub_sample=sub_sample, use_scale=use_scale,
                     norm_cfg=dict(type=f'BN{dim}d'))
    else:
        sys.path.insert(0, ROOT)
        from nlnet.ops.non_local import NonLocalBlock

        # pool_position='after' computes exactly mmcv's function; BatchNorm{dim}d by default.
        module = NonLocalBlock(shape[1], dim=dim, mode=mode, sub_sample=sub_sample,
                               use_scale=use_scale, pool_position='after')
    # Non-trivial weights: a fresh block's output branch is zero.
    with torch.no_grad():
        module.conv_out.norm.weight.fill_(1.0)
    return module


def _fwd_bwd(module, x, grad_out):
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x).backward(grad_out)


def run_worker(args):
    import torch
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = CASES[args.case][0]
    source, _, variant = args.impl.partition('_')
    module = build_module(source, args.case, args.mode).to(device).train()
    eager = module
    if variant == 'autotune':
        from nlnet.ops import set_autotune
        set_autotune(True)
    elif variant == 'compiled':
        module = torch.compile(module, dynamic=False)

    x = torch.randn(shape, device=device, requires_grad=True)
    grad_out = torch.randn(shape, device=device)
    record = dict(threads=torch.get_num_threads())
    if variant == 'compiled':
        # The warm-up is the full-size compile (a small grid would be another graph).
        start = time.perf_counter()
        _fwd_bwd(module, x, grad_out)
        sync(device)
        record['compile_seconds'] = time.perf_counter() - start
        got, want = module(x).detach(), eager(x).detach()
        record['max_rel_diff_vs_eager'] = float((got - want).abs().max() / want.abs().max())
        del got, want
    else:
        # Warm-up on a small grid: library initialisation is not the operator's memory.
        small = list(shape[:2]) + [max(1, s // 4) for s in shape[2:]]
        _fwd_bwd(module, torch.randn(small, device=device, requires_grad=True),
                 torch.randn(small, device=device))
        sync(device)
    if source == 'nlnet' and variant != 'compiled':
        start = time.perf_counter()
        record['route'] = module.route(x)  # with autotune: times the routes at this key
        if variant == 'autotune':
            from nlnet.ops import autotune
            record['tune_seconds'] = time.perf_counter() - start
            record['tuned'] = autotune.decisions()[module._autotune_key(x)].seconds
    try:
        start = time.perf_counter()
        if device == 'cpu':
            with PeakMemory(device, 'resident') as rss:
                _fwd_bwd(module, x, grad_out)
            record.update(rss_peak_bytes=rss.peak, rss_method=rss.method)
        else:
            _fwd_bwd(module, x, grad_out)
            sync(device)
        record['first_seconds'] = time.perf_counter() - start
        with PeakMemory(device, 'tensors') as mem:
            _fwd_bwd(module, x, grad_out)
    except RuntimeError as err:  # e.g. mmcv's concatenation cannot back-propagate
        record['error'] = f'{type(err).__name__}: {str(err).splitlines()[0][:200]}'
        return record
    record.update(peak_bytes=mem.peak, memory_method=mem.method)

    # The GEMM rate is only compared with the embedded Gaussian's.
    with_gemm = args.impl == 'nlnet' and args.mode == 'embedded_gaussian'
    gemm_before = gemm_rate(device) if with_gemm else None
    times = []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        _fwd_bwd(module, x, grad_out)
        sync(device)
        times.append(time.perf_counter() - start)
    record.update(seconds=statistics.median(times), all_seconds=times)
    if with_gemm:
        gemm_after = gemm_rate(device)
        record.update(gemm_flops=(gemm_before + gemm_after) / 2,
                      gemm_flops_before_after=[gemm_before, gemm_after],
                      attention_seconds=_attention_seconds(args.case, device, args.repeats))
    return record


def _attention_seconds(case, device, repeats):
    """fwd+bwd of the fused attention alone on the case's theta/phi/g sizes (median)."""
    import torch
    from nlnet.ops.kernels.softmax_attention import softmax_attention
    s = case_sizes(case)
    q = torch.randn(s['batch'], s['queries'], s['inter_channels'], device=device,
                    requires_grad=True)
    k = torch.randn(s['batch'], s['keys'], s['inter_channels'], device=device,
                    requires_grad=True)
    v = torch.randn(s['batch'], s['keys'], s['inter_channels'], device=device,
                    requires_grad=True)
    grad = torch.randn_like(q)
    times = []
    for i in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        softmax_attention(q, k, v, scale=s['inter_channels']**-0.5).backward(grad)
        sync(device)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# Driver -----------------------------------------------------------------------------------------


def spawn(args, case, mode, impl, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', '--case', case, '--mode', mode,
           '--impl', impl, '--repeats', str(args.repeats), '--device', args.device,
           '--threads', str(args.threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return dict(error=f'timed out after {timeout:.0f} s')
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
        return dict(error=f'worker exited with {proc.returncode}: {tail[0][:200]}')
    return json.loads(lines[-1])


def run_case(args, case, mode, deadline, mem_limit):
    sizes = case_sizes(case)
    record = dict(case=case, what=CASES[case][3], mode=mode, device=args.device,
                  sub_sample=CASES[case][1], use_scale=CASES[case][2], **sizes)
    for impl in args.impls:
        left = deadline - time.monotonic()
        if impl.startswith('mmcv'):
            estimate = mmcv_estimated_bytes(case, mode)
            record['mmcv_estimated_bytes'] = estimate
            if estimate > mem_limit:
                record[f'{impl}_error'] = (
                    f'not run: estimated peak {estimate / GIB:.1f} GiB > limit '
                    f'{mem_limit / GIB:.1f} GiB (explicit '
                    + ('N x M x 2C\' concatenation)' if mode == 'concatenation' else
                       'N x M weights)'))
                continue
        if left < 20:
            record[f'{impl}_error'] = 'not run: time budget spent'
            continue
        result = spawn(args, case, mode, impl, timeout=min(left, args.case_timeout))
        for key, value in result.items():
            record[f'{impl}_{key}'] = value
    if 'nlnet_seconds' in record and 'mmcv_seconds' in record:
        record['time_ratio'] = record['nlnet_seconds'] / record['mmcv_seconds']
        record['memory_ratio'] = record['nlnet_peak_bytes'] / max(1, record['mmcv_peak_bytes'])
        if record.get('nlnet_rss_peak_bytes') and record.get('mmcv_rss_peak_bytes'):
            record['rss_memory_ratio'] = (record['nlnet_rss_peak_bytes']
                                          / record['mmcv_rss_peak_bytes'])
    for impl in args.impls:
        if f'{impl}_seconds' in record and 'mmcv_seconds' in record:
            record[f'{impl}_time_ratio'] = record[f'{impl}_seconds'] / record['mmcv_seconds']
    if mode == 'embedded_gaussian' and 'nlnet_seconds' in record:
        depth = sizes['inter_channels']
        flops = attention_train_flops((sizes['batch'], sizes['queries'], depth),
                                      (sizes['batch'], sizes['keys'], depth),
                                      (sizes['batch'], sizes['keys'], depth))
        record['counted_flops'] = flops
        record['nlnet_flops_per_s'] = flops / record['nlnet_seconds']
        record['nlnet_gemm_fraction'] = record['nlnet_flops_per_s'] / record['nlnet_gemm_flops']
        if 'nlnet_attention_seconds' in record:
            record['attention_gemm_fraction'] = (
                flops / record['nlnet_attention_seconds'] / record['nlnet_gemm_flops'])
    return record


def _fmt_bytes(value):
    return '-' if value is None else f'{value / 2**20:9.1f}'


SHORT_NAMES = {'nlnet': 'nlnet', 'nlnet_autotune': 'autotune', 'mmcv': 'mmcv',
               'nlnet_compiled': 'nlnet-c', 'mmcv_compiled': 'mmcv-c'}


def print_table(records, gemm, impls):
    """Seconds (median fwd+bwd) and peak tensor MiB of each implementation, ratios to mmcv."""
    names = [SHORT_NAMES[impl] for impl in impls]
    ratios = [impl for impl in impls if impl != 'mmcv']
    head = (f"{'case':4} {'mode':18} {'N':>6} {'M':>6} "
            + ' '.join(f'{n + " s":>10}' for n in names) + ' | '
            + ' '.join(f'{SHORT_NAMES[i] + "/mmcv":>15}' for i in ratios) + ' | '
            + ' '.join(f'{n + " MiB":>12}' for n in names) + f" {'RSS ratio':>9}  routes; notes")
    print(head)
    print('-' * len(head))
    for r in records:
        def cell(key, width, fmt):
            return f'{fmt(r[key]):>{width}}' if key in r else f"{'-':>{width}}"

        notes = [f'rules {r["nlnet_route"]}'] if 'nlnet_route' in r else []
        if 'nlnet_autotune_route' in r:
            notes.append(f"tuned {r['nlnet_autotune_route']} "
                         f"({r['nlnet_autotune_tune_seconds']:.1f} s to tune)")
        for impl in impls:
            if f'{impl}_compile_seconds' in r:
                notes.append(f"{SHORT_NAMES[impl]} compile {r[f'{impl}_compile_seconds']:.0f} s, "
                             f"rel. diff {r[f'{impl}_max_rel_diff_vs_eager']:.1e}")
            if f'{impl}_error' in r:
                notes.append(f"{SHORT_NAMES[impl]}: {r[f'{impl}_error']}")
        if 'nlnet_gemm_fraction' in r:
            notes.append(f"block {r['nlnet_flops_per_s'] / 1e9:.0f} GFLOP/s = "
                         f"{100 * r['nlnet_gemm_fraction']:.0f}% GEMM, attention alone "
                         f"{100 * r.get('attention_gemm_fraction', float('nan')):.0f}%")
        print(f"{r['case']:4} {r['mode']:18} {r['queries']:6d} {r['keys']:6d} "
              + ' '.join(cell(f'{i}_seconds', 10, lambda v: f'{v:.3f}') for i in impls) + ' | '
              + ' '.join(cell(f'{i}_time_ratio', 15, lambda v: f'{v:.3f}') for i in ratios)
              + ' | ' + ' '.join(cell(f'{i}_peak_bytes', 12, lambda v: f'{v / 2**20:.1f}')
                                 for i in impls)
              + ' ' + cell('rss_memory_ratio', 9, lambda v: f'{v:.3f}') + '  ' + '; '.join(notes))
    print(f'fp32 GEMM ({GEMM_SIZE}^3) in the driver: {gemm / 1e9:.0f} GFLOP/s; peak memory is '
          'of tensors, above the input (RSS ratio: nlnet / mmcv resident sets); -c: compiled')


def print_tuned(records):
    """Each route's best time where autotune ran, fastest first."""
    for r in records:
        if 'nlnet_autotune_tuned' in r:
            tuned = sorted(r['nlnet_autotune_tuned'].items(), key=lambda item: item[1])
            print(f"  {r['case']} {r['mode']}: " + ', '.join(f'{route} {seconds:.3f} s'
                                                           for route, seconds in tuned))


def compile_graph_breaks():
    """{route: (graphs, graph breaks)} of ``torch._dynamo.explain`` on one small block per
    route (fwd, training, autograd recording)."""
    import torch
    import torch._dynamo
    sys.path.insert(0, ROOT)
    from nlnet.ops import NonLocalBlock
    examples = {'reference': dict(impl='reference'), 'projected': {},
                'chunked': dict(sub_sample=True), 'stored': dict(mode='gaussian'),
                'native': dict(impl='native'), 'folded': dict(mode='dot_product'),
                'associative': dict(mode='dot_product', sub_sample=True, pool_position='after'),
                'separable': dict(mode='concatenation')}
    counts = {}
    for route, kwargs in examples.items():
        block = NonLocalBlock(16, **kwargs).train()
        x = torch.randn(2, 16, 6, 8, requires_grad=True)
        assert block.route(x) == route, (route, block.route(x))
        torch._dynamo.reset()
        explained = torch._dynamo.explain(block)(x)
        counts[route] = (explained.graph_count, explained.graph_break_count)
    torch._dynamo.reset()
    return counts


def print_targets(records):
    """The issue's targets, evaluated on what was measured (skipped where not run)."""
    by_key = {(r['case'], r['mode']): r for r in records}
    checks = []
    eg = by_key.get(('a', 'embedded_gaussian'), {})
    if 'time_ratio' in eg:
        checks.append(('embedded Gaussian (a) time <= 0.75x mmcv', eg['time_ratio'] <= 0.75,
                       f"{eg['time_ratio']:.2f}x"))
        rss = (f", resident set {eg['rss_memory_ratio']:.3f}x" if 'rss_memory_ratio' in eg
               else '')
        checks.append(('embedded Gaussian (a) peak memory <= 0.1x mmcv',
                       eg['memory_ratio'] <= 0.1, f"tensors {eg['memory_ratio']:.3f}x{rss}"))
    if 'nlnet_gemm_fraction' in eg:
        checks.append(('embedded Gaussian (a) fwd+bwd >= 60% of GEMM rate',
                       eg['nlnet_gemm_fraction'] >= 0.6,
                       f"{100 * eg['nlnet_gemm_fraction']:.0f}% (block), "
                       f"{100 * eg.get('attention_gemm_fraction', float('nan')):.0f}% "
                       '(attention alone)'))
    dp = by_key.get(('a', 'dot_product'), {})
    if 'time_ratio' in dp:
        checks.append(('dot product (a) >= 10x faster', 1 / dp['time_ratio'] >= 10,
                       f"{1 / dp['time_ratio']:.1f}x"))
    for case in ('a', 'b'):
        cc = by_key.get((case, 'concatenation'), {})
        if 'nlnet_peak_bytes' in cc:
            estimate = (f"; mmcv estimate {cc['mmcv_estimated_bytes'] / 1e9:.0f} GB"
                        if 'mmcv_estimated_bytes' in cc else '')
            checks.append((f'concatenation ({case}) within 2 GB', cc['nlnet_peak_bytes'] < 2e9,
                           f"{cc['nlnet_peak_bytes'] / 2**20:.0f} MiB{estimate}"))
    for name, ok, value in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {value}")
    return checks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cases', nargs='+', default=['a', 'b'], choices=list(CASES))
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--impls', nargs='+', default=list(DEFAULT_IMPLS), choices=IMPLS)
    parser.add_argument('--compile', action='store_true',
                        help='add the torch.compile\'d nlnet and mmcv modules ('
                        + ', '.join(COMPILED_IMPLS) + ') and the graph-break counts')
    parser.add_argument('--repeats', type=int, default=3, help='timed passes per case')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--json', help='write one record per case to this path')
    parser.add_argument('--budget-s', type=float, default=900,
                        help='stop starting cases after this many seconds')
    parser.add_argument('--case-timeout', type=float, default=240)
    parser.add_argument('--mmcv-mem-limit-gb', type=float, default=None,
                        help='skip mmcv cases estimated above this (default: min(8, half '
                        'of MemAvailable); GPU: its free memory)')
    # Worker mode (internal).
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--case', choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument('--mode', choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument('--impl', choices=IMPLS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _memory_limit(args):
    if args.mmcv_mem_limit_gb is not None:
        return args.mmcv_mem_limit_gb * 1e9
    if args.device == 'cuda':
        import torch
        return 0.9 * torch.cuda.mem_get_info()[0]
    return min(8e9, available_bytes() / 2)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    if args.compile:
        args.impls = list(dict.fromkeys([*args.impls, *COMPILED_IMPLS]))
    load_start = os.getloadavg()
    start = time.monotonic()
    deadline = start + args.budget_s
    import torch
    gemm = gemm_rate(args.device)
    mem_limit = _memory_limit(args)
    machine = machine_info(device=args.device, threads=args.threads or torch.get_num_threads())
    print(f"device {args.device}, torch {torch.__version__}, threads {machine['threads']}, "
          f"mmcv memory limit {mem_limit / GIB:.1f} GiB, {machine['cpu']} x {machine['cores']}, "
          f'load average {" ".join(f"{v:.1f}" for v in load_start)}', flush=True)
    records = []
    for case in args.cases:
        for mode in args.modes:
            records.append(run_case(args, case, mode, deadline, mem_limit))
            r = records[-1]
            print(f'  done {case} {mode}: ' + ', '.join(
                f"{impl} {r.get(f'{impl}_seconds', r.get(f'{impl}_error'))}"
                for impl in args.impls), flush=True)
    print()
    print_table(records, gemm, args.impls)
    if 'nlnet_autotune' in args.impls:
        print('autotune, best time of each route timed:')
        print_tuned(records)
    breaks = compile_graph_breaks() if args.compile else None
    if breaks:
        print('torch.compile graphs (graph breaks) per route: '
              + ', '.join(f'{route} {graphs} ({count})'
                          for route, (graphs, count) in breaks.items()))
    print('targets:')
    print_targets(records)
    print(f'total {time.monotonic() - start:.0f} s, load average now '
          f'{" ".join(f"{v:.1f}" for v in os.getloadavg())}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, gemm_flops=gemm, load_average_start=load_start,
                           load_average_end=os.getloadavg(), graph_breaks=breaks,
                           records=records), f, indent=1)


if __name__ == '__main__':
    main()
