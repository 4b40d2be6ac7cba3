"""Training-step peak memory and time of NonLocalNet R-50-D8, nlnet against MMSeg.

Both models come from the real configs of the same seed-table row (nlnet's
``configs/segmentation/nonlocal_net/`` and MMSeg's shipped ``configs/nonlocal_net/``),
differ only in the decode head (``NonLocalHead`` vs ``NLHead``) and run the same
``model.train_step`` (data pre-processor, forward, loss, backward, SGD step) on
the same random batch. Each measurement runs in a fresh process, so neither
allocator state nor caches leak from one implementation into the other.

Memory (``_measure.PeakMemory``, ``'resident'`` on CPU): on CUDA
``max_memory_allocated`` during the step minus the memory held before it; on CPU
the kernel's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``)
during the step minus the resident set before it.
Either way the figure is what one training step adds on top of the model,
its optimiser state and the batch. The first step is a warm-up and is not measured.

Time: wall-clock seconds per step, and on CPU also the process's CPU seconds
(user + system, all threads), which a machine shared with other jobs inflates
less than the wall clock.

Parts: ``model`` is the whole training step above. ``decode_head`` is the
decode head's share of it: the head's loss (forward, upsampling, cross
entropy) and backward down to the backbone features, on the features the
backbone computes for the same batch, with an SGD step on the head's
parameters. The difference between the two implementations lies entirely in
that part; the model figure shows how much of the whole step it is.

    python benchmarks/bench_segmentation.py --json work_dirs/bench_seg.json
    python benchmarks/bench_segmentation.py --crop 512 1024 --steps 3 --device cpu --parts model
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time

from _measure import PeakMemory

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROW = 'nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py'
IMPLS = ('mmseg', 'nlnet')
PARTS = ('model', 'decode_head')


def _config_path(impl):
    if impl == 'nlnet':
        return osp.join(REPO, 'configs', 'segmentation', 'nonlocal_net', ROW)
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'nonlocal_net', ROW)
    if not osp.isfile(path):
        raise FileNotFoundError(f'MMSeg config {path} not found: the installed mmsegmentation '
                                'does not ship its configs (.mim)')
    return path


def _plain_bn(cfg):
    """SyncBN needs a process group; a single process uses BN with the same parameters."""
    if isinstance(cfg, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else _plain_bn(v))
                for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_plain_bn(v) for v in cfg)
    return cfg


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _head_step(model, data, optim_wrapper):
    """The decode head's training step on backbone features computed without grad.

    Returns a function running one step (the features' gradient is dropped
    before each, as a whole-model step frees it into the backbone's backward).
    """
    import torch
    with torch.no_grad():
        batch = model.data_preprocessor(data, True)
        features = [f.requires_grad_() for f in model.extract_feat(batch['inputs'])]
    head = model.decode_head

    def step():
        for feature in features:
            feature.grad = None
        with optim_wrapper.optim_context(head):
            losses = head.loss(features, batch['data_samples'], model.train_cfg)
        loss, log_vars = model.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    return step


def worker(impl, part, crop, steps, device, threads, seed):
    """Build one implementation, run ``steps`` measured steps of ``part``, return the figures."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    import nlnet.openmmlab  # noqa: F401  (registers NonLocalHead)
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(_config_path(impl))
    init_default_scope('mmseg')
    model_cfg = _plain_bn(cfg.model.to_dict())
    model_cfg['pretrained'] = None
    model_cfg['data_preprocessor']['size'] = tuple(crop)
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    model.train()
    trained = model if part == 'model' else model.decode_head
    optim_wrapper = build_optim_wrapper(trained, cfg.optim_wrapper)

    gen = torch.Generator().manual_seed(seed)
    h, w = crop
    num_classes = model_cfg['decode_head']['num_classes']
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
    label = torch.randint(0, num_classes, (1, h, w), generator=gen)
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    sample.gt_sem_seg = PixelData(data=label)
    data = dict(inputs=[image], data_samples=[sample])
    if part == 'model':
        def step():
            return model.train_step(data, optim_wrapper)
    else:
        step = _head_step(model, data, optim_wrapper)

    times, cpu_times, peaks, peaks_abs, losses = [], [], [], [], []
    for index in range(steps + 1):
        with PeakMemory(device, 'resident') as mem:
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            log_vars = step()
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - start_cpu
        if index == 0:
            continue  # warm-up: allocates optimiser state, kernels, caches
        times.append(elapsed)
        cpu_times.append(cpu)
        peaks.append(mem.peak)
        peaks_abs.append(mem.high_water)
        losses.append(float(log_vars['loss']))
    return dict(
        impl=impl,
        part=part,
        config=_config_path(impl),
        decode_head=model_cfg['decode_head']['type'],
        params=sum(p.numel() for p in trained.parameters()),
        step_time_s=statistics.median(times),
        step_times_s=times,
        step_cpu_s=statistics.median(cpu_times),
        step_cpu_times_s=cpu_times,
        step_peak_mem_bytes=max(peaks),
        memory_method=mem.method,
        process_peak_mem_bytes=max(peaks_abs),
        losses=losses)


def _worker_env():
    """A fixed glibc mmap threshold, so freed tensors leave the resident set.

    With glibc's default dynamic threshold, blocks up to 32 MiB freed during the
    warm-up step stay in the heap and in RSS, which hides the step's own peak.
    """
    return dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', help='write the results to this JSON file')
    parser.add_argument('--crop', type=int, nargs=2, default=(512, 1024), metavar=('H', 'W'),
                        help='training crop (default: the Cityscapes row, 512 1024)')
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS),
                        help='what one step trains: the whole model and/or the decode head')
    parser.add_argument('--steps', type=int, default=3, help='measured steps per process')
    parser.add_argument('--repeats', type=int, default=1,
                        help='fresh processes per implementation (order alternates)')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--worker', choices=IMPLS, help=argparse.SUPPRESS)
    return parser.parse_args()


def _run_worker(impl, part, args):
    cmd = [sys.executable, osp.abspath(__file__), '--worker', impl, '--parts', part, '--crop',
           *map(str, args.crop), '--steps', str(args.steps), '--device', args.device,
           '--threads', str(args.threads), '--seed', str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=_worker_env())
    if proc.returncode != 0:
        raise SystemExit(f'{impl} {part} worker failed ({proc.returncode}):\n'
                         f'{proc.stderr[-4000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(results):
    return dict(
        step_time_s=statistics.median(t for r in results for t in r['step_times_s']),
        step_cpu_s=statistics.median(t for r in results for t in r['step_cpu_times_s']),
        step_peak_mem_bytes=statistics.median(r['step_peak_mem_bytes'] for r in results),
        process_peak_mem_bytes=statistics.median(r['process_peak_mem_bytes'] for r in results),
        params=results[0]['params'])


def main():
    args = parse_args()
    if args.steps < 1 or args.repeats < 1:
        raise SystemExit('--steps and --repeats must be >= 1')
    if args.device is None:
        import torch
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device == 'cpu' and not osp.exists('/proc/self/clear_refs'):
        raise SystemExit('CPU peak memory needs Linux /proc/self/clear_refs')
    if args.worker:
        (part, ) = args.parts
        print(json.dumps(worker(args.worker, part, args.crop, args.steps, args.device,
                                args.threads, args.seed)))
        return

    report = {}
    for part in args.parts:
        runs = {impl: [] for impl in IMPLS}
        for repeat in range(args.repeats):
            for impl in IMPLS if repeat % 2 == 0 else IMPLS[::-1]:
                result = _run_worker(impl, part, args)
                runs[impl].append(result)
                print(f"{part:11s} {impl:6s} {result['decode_head']:13s} "
                      f"step {result['step_time_s']:.2f} s (CPU {result['step_cpu_s']:.2f} s)  "
                      f"step peak {result['step_peak_mem_bytes'] / 2**20:.0f} MiB  "
                      f"process peak {result['process_peak_mem_bytes'] / 2**20:.0f} MiB  "
                      f"params {result['params']}", flush=True)
        summary = {impl: _summary(results) for impl, results in runs.items()}
        ratios = {f'{key}_ratio': summary['nlnet'][key] / summary['mmseg'][key]
                  for key in ('step_peak_mem_bytes', 'step_time_s', 'step_cpu_s')}
        saved = summary['mmseg']['step_peak_mem_bytes'] - summary['nlnet']['step_peak_mem_bytes']
        print(f"{part}: nlnet / mmseg step peak memory {ratios['step_peak_mem_bytes_ratio']:.3f}x "
              f"({saved / 2**20:+.0f} MiB saved), step time {ratios['step_time_s_ratio']:.3f}x "
              f"(process CPU time {ratios['step_cpu_s_ratio']:.3f}x; target: memory <= 0.85x at "
              'time <= 1.0x)', flush=True)
        report[part] = dict(summary=summary, saved_bytes=saved, runs=runs, **ratios)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(
                benchmark='NonLocalNet R-50-D8 training step, batch 1',
                row=ROW, crop=list(args.crop), device=args.device, steps=args.steps,
                repeats=args.repeats, threads=args.threads or None,
                host=dict(platform=platform.platform(), cpu_count=os.cpu_count()),
                parts=report), f, indent=2)


if __name__ == '__main__':
    main()
