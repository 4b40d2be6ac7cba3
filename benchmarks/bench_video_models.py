"""Training-step time and peak memory: nlnet's NL-I3D ResNet-50 vs MMAction2's.

    python benchmarks/bench_video_models.py [--frames 32 128] [--size 224] [--json PATH]

Both models are the 5-block embedded-Gaussian NL-I3D R50 of MMAction2's config
(i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb):
MMAction2's own build (mmcv ``NonLocal3d``), and nlnet's config of the same row
(the same function and state dict). Each is also run with gradient checkpointing
of its residual blocks (``with_cp=True``, as nlnet's 128-frame configs set it;
MMAction2's ``with_cp`` leaves its non-local blocks outside the checkpoints).

Every case runs in a fresh process: one warm-up step, then ``--steps`` timed
SGD steps on one clip of (3, T, size, size). Peak memory is the peak during the
timed steps above the memory held before them (model, gradients, momentum), by
``_measure.PeakMemory`` (``'resident'`` on CPU): ``torch.cuda.max_memory_allocated``
on CUDA; on CPU the resident set size's high-water mark, reset through
/proc/self/clear_refs (glibc is told to return freed blocks to the system, so the
RSS follows live memory). "saved" is the size
of the tensors autograd keeps for backward in one forward pass.
The issue's target is the 128-frame training step at 224x224 (``--size 224``, the
default on CUDA). On CPU the default crop is 32x32, so that the eight cases run in
about ten minutes on two cores: the conv activations then dominate and the
N x M pairwise matrices, which grow with the square of the positions, are
small, so CPU figures understate what the non-local blocks cost MMAction2 at
full size. "saved" is exact and comparable across machines; the CPU "peak"
includes allocator slack. This is not a test: times on a shared machine are noisy.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from _measure import PeakMemory, sync

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMACTION_CONFIG = ('i3d/i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_'
                   'kinetics400-rgb.py')
NLNET_CONFIG = ('nl-i3d/nl-i3d_r50-in1k-pre-mmaction-embedded-gaussian_8xb8-32x2x1-100e_'
                'kinetics400-rgb.py')
IMPLEMENTATIONS = ('mmaction2', 'mmaction2-cp', 'nlnet', 'nlnet-cp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[32, 128])
    parser.add_argument('--size', type=int, help='crop size (default 224 on CUDA, 32 on CPU)')
    parser.add_argument('--steps', type=int, default=2, help='timed steps after one warm-up')
    parser.add_argument('--impls', nargs='+', choices=IMPLEMENTATIONS, default=IMPLEMENTATIONS)
    parser.add_argument('--device', choices=('cpu', 'cuda'),
                        help='default: cuda when available')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--case', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build(impl):
    import mmaction
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import nlnet.openmmlab  # noqa: F401
    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    if impl.startswith('mmaction2'):
        path = osp.join(mmaction.__path__[0], '.mim', 'configs', 'recognition', MMACTION_CONFIG)
    else:
        path = osp.join(ROOT, 'configs', 'recognition', NLNET_CONFIG)
    cfg = Config.fromfile(path)
    cfg.model.backbone.pretrained = None
    cfg.model.backbone.with_cp = impl.endswith('-cp')
    return MODELS.build(cfg.model)


def saved_bytes(model, inputs, samples):
    """Bytes of the distinct activation storages autograd saves in one forward pass
    (parameters and buffers, which it saves too, left out)."""
    import torch
    held = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in held:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.loss(inputs, samples)
    return sum(storages.values())


def run_case(impl, frames, size, steps, device):
    """One training configuration, in this (fresh) process; returns its figures."""
    import torch
    from mmaction.structures import ActionDataSample

    torch.manual_seed(0)
    model = build(impl).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    inputs = torch.randn(1, 1, 3, frames, size, size, device=device)
    samples = [ActionDataSample().set_gt_label(0)]
    saved = saved_bytes(model, inputs, samples)

    def step():
        optimizer.zero_grad(set_to_none=False)
        losses = model.loss(inputs, samples)
        sum(losses.values()).backward()
        optimizer.step()

    step()  # warm-up; allocates the gradients and the momentum, which are not counted
    times = []
    with PeakMemory(device, 'resident') as memory:
        for _ in range(steps):
            start = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - start)
    return dict(impl=impl, frames=frames, size=size, device=device, steps=steps,
                step_s=sum(times) / len(times), peak_mb=memory.peak / 2**20,
                memory_method=memory.method, saved_mb=saved / 2**20,
                threads=torch.get_num_threads())


def spawn(impl, frames, args, device):
    """Run one case in a fresh interpreter and return its figures."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='0')
    command = [sys.executable, __file__, '--case', f'{impl}:{frames}', '--size', str(args.size),
               '--steps', str(args.steps), '--device', device]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'case {impl} {frames} frames failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.size is None:
        args.size = 224 if device == 'cuda' else 32
    if args.case:
        impl, frames = args.case.split(':')
        print(json.dumps(run_case(impl, int(frames), args.size, args.steps, device)))
        return None
    results = []
    for frames in args.frames:
        for impl in args.impls:
            results.append(spawn(impl, frames, args, device))
            r = results[-1]
            print(f'{impl:13s} {frames:4d}x{args.size}x{args.size} {device}: '
                  f'{r["step_s"]:7.2f} s/step  peak {r["peak_mb"]:8.0f} MiB  '
                  f'saved {r["saved_mb"]:8.0f} MiB', flush=True)
    for frames in args.frames:
        by_impl = {r['impl']: r for r in results if r['frames'] == frames}
        if 'mmaction2' in by_impl:
            ref = by_impl['mmaction2']
            for impl, r in by_impl.items():
                print(f'{frames} frames, {impl} / mmaction2: time x{r["step_s"] / ref["step_s"]:.2f}'
                      f', peak x{r["peak_mb"] / ref["peak_mb"]:.2f}, saved '
                      f'x{r["saved_mb"] / ref["saved_mb"]:.2f}')
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == '__main__':
    main()
