"""What the benchmarks measure, defined once: peak memory on CPU and CUDA, and attention FLOPs.

Peak memory of a region, in bytes above what is held when it starts
(:class:`PeakMemory`):

- CUDA: ``torch.cuda.max_memory_allocated`` minus ``memory_allocated`` at the
  start (live tensors; the caching allocator's reserve is not counted);
- CPU, ``'tensors'``: the same quantity from the profiler's record of CPU
  allocations and frees (the highest running sum of bytes allocated minus freed;
  frees of tensors allocated before the region are not in the record, so it is
  never below the true peak). The profiler's own records are resident, so this
  measure goes on a pass of its own;
- CPU, ``'resident'``: the kernel's resident-set high-water mark (VmHWM, reset
  through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is refused) minus
  the resident set at the start. It adds what the C allocator keeps of freed
  blocks, so the benchmarks that use it run their workers with a fixed glibc
  mmap threshold (freed large blocks then leave the resident set).

``PeakMemory.method`` names the measure in the records; every README ratio says
which one it comes from.

FLOPs come from :mod:`nlnet.analysis.flops`, the counter of
``tools/analysis/get_flops.py``: the same handle for fused attention, the same
explicit form of the non-local blocks.
"""
import os
import platform
import re
import resource

import torch

CPU_MEASURES = ('tensors', 'resident')


def machine_info(**extra):
    """Python, torch, the CPU's model and core count, and ``extra``: what a record names its
    machine by."""
    info = dict(python=platform.python_version(), torch=torch.__version__,
                machine=platform.machine(), cores=os.cpu_count())
    try:
        with open('/proc/cpuinfo') as handle:
            info['cpu'] = next(line.split(':', 1)[1].strip() for line in handle
                               if line.startswith('model name'))
    except (OSError, StopIteration):
        info['cpu'] = platform.processor()
    return dict(info, **extra)


def sync(device):
    """Wait for the device's queued work (CUDA), so that a timer or a peak sees all of it."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def attention_train_flops(query_shape, key_shape, value_shape):
    """Floating-point operations (2 per multiply-add) of softmax attention's forward and
    backward: the forward's two products, the backward's four of the same size; the
    products as :func:`nlnet.analysis.flops.attention_flops` counts them."""
    from nlnet.analysis.flops import attention_flops  # imports the mm* stack: only when used
    return 2 * 3 * attention_flops(query_shape, key_shape, value_shape)


def resident_bytes():
    """The process's resident set now (Linux)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _resident_high_water(method):
    if method == 'VmHWM':
        with open('/proc/self/status') as f:
            return int(re.search(r'VmHWM:\s+(\d+)', f.read()).group(1)) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _profiled_peak(profiler):
    """The highest running sum of CPU bytes allocated minus freed in a profiled region."""
    events = [e for e in profiler.profiler.kineto_results.events()
              if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


class PeakMemory:
    """Peak memory of the ``with`` block above what is held at its start (module docstring).

    Args:
        device (str | torch.device): ``cpu`` or a CUDA device.
        cpu_measure (str): on CPU, ``'tensors'`` or ``'resident'``; ignored on CUDA.

    Attributes (after the block):
        peak (int): bytes above the start.
        high_water (int): the absolute high-water mark (allocated bytes on CUDA, resident
            set on CPU); absent for ``'tensors'`` on CPU, which has no absolute level.
        method (str): the measure, as the records name it.
    """

    def __init__(self, device, cpu_measure='resident'):
        if cpu_measure not in CPU_MEASURES:
            raise ValueError(f'cpu_measure must be one of {CPU_MEASURES}, got {cpu_measure!r}')
        self.device = str(device)
        self.cpu_measure = cpu_measure

    def __enter__(self):
        if self.device.startswith('cuda'):
            self.method = 'cuda.max_memory_allocated'
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        elif self.cpu_measure == 'tensors':
            self.method = 'profiler CPU allocations'
            self.profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
            self.profiler.__enter__()
        else:
            self.start = resident_bytes()
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')  # resets VmHWM (and ru_maxrss) to the current resident set
                self.method = 'VmHWM'
            except OSError:
                self.method = 'ru_maxrss'
        return self

    def __exit__(self, *exc):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.high_water = torch.cuda.max_memory_allocated()
            self.peak = self.high_water - self.start
        elif self.cpu_measure == 'tensors':
            self.profiler.__exit__(*exc)
            self.peak = _profiled_peak(self.profiler)
        else:
            self.high_water = _resident_high_water(self.method)
            self.peak = self.high_water - self.start
        return False
