"""Import time of ``nlnet.ops`` against ``import torch`` alone, each in fresh interpreters.

    python benchmarks/bench_import.py [--runs 5]

Runs alternate between the two statements; each run is a new interpreter timed from its
start to the end of the import (``time.perf_counter`` around it, interpreter start-up
excluded), and the script prints each statement's median and range, the median
difference, and the OpenMMLab modules the nlnet.ops import loaded (none is the target).
"""
import argparse
import json
import statistics
import subprocess
import sys

STATEMENTS = {'torch': 'import torch', 'nlnet.ops': 'from nlnet.ops import NonLocal2d'}
TIMED = '''
import json, sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
mm = sorted(m for m in sys.modules
            if m.startswith('mm') and m.split('.')[0] not in sys.stdlib_module_names)
print(json.dumps(dict(seconds=elapsed, mm=mm)))
'''


def timed_import(statement):
    out = subprocess.run([sys.executable, '-c', TIMED.format(statement=statement)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()
    seconds = {name: [] for name in STATEMENTS}
    loaded = set()
    for _ in range(args.runs):
        for name, statement in STATEMENTS.items():
            record = timed_import(statement)
            seconds[name].append(record['seconds'])
            loaded.update(record['mm'])
    for name, values in seconds.items():
        print(f'{STATEMENTS[name]:<36} median {statistics.median(values):.3f} s  '
              f'(min {min(values):.3f}, max {max(values):.3f}, {args.runs} runs)')
    extra = statistics.median(seconds['nlnet.ops']) - statistics.median(seconds['torch'])
    print(f'nlnet.ops over torch: {extra:+.3f} s (median difference; target at most +0.5 s)')
    print(f'OpenMMLab modules loaded by nlnet.ops: {sorted(loaded) or "none"}')


if __name__ == '__main__':
    main()
