"""No measured figure in the package's code, docstrings or comments: timing ratios against
mmcv / MMSeg / MMAction2 and MiB figures live in the README's benchmark table and the
benchmark scripts' output, where they are re-measured; issue numbers stay in the tracker."""
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / 'nlnet'
# What `grep -rnE` with this pattern over nlnet/ must not find.
FIGURE = re.compile(r'issue [0-9]+|[0-9.]+ ?x (mmcv|MMSeg|MMAction2)|[0-9]+ MiB')


def test_the_pattern_finds_the_figures_it_is_for():
    for text in ("0.81x mmcv's time at 321 MiB", '(chunked: 1.2x in issue 12)',
                 '0.95 x MMSeg', '2 x MMAction2'):
        assert FIGURE.search(text), text
    for text in ('16 x C keys', "N M (3C + 3C') multiply-adds", '2 x 512 x 8 x 28 x 28'):
        assert not FIGURE.search(text), text


def test_no_measured_figure_in_the_package():
    files = sorted(PACKAGE_DIR.rglob('*.py'))
    assert len(files) > 20  # the package, not an empty folder
    hits = [f'{path.relative_to(PACKAGE_DIR.parent)}:{number}: {line.strip()}'
            for path in files
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if FIGURE.search(line)]
    assert not hits, 'measured figures belong in the README:\n' + '\n'.join(hits)
