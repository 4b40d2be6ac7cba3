"""nlnet.ops with torch alone: no mm* module loaded, and the built wheel runs with every mm* import refused."""
import json
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# A meta-path finder that refuses every OpenMMLab package (mm*, but not the stdlib's mmap).
REFUSE_MM = '''
import sys
class RefuseOpenMMLab:
    def find_spec(self, name, path=None, target=None):
        if name.startswith('mm') and name.split('.')[0] not in sys.stdlib_module_names:
            raise ImportError(f'{name} refused: this interpreter has torch only')
sys.meta_path.insert(0, RefuseOpenMMLab())
'''

# Forward and backward of every mode in 1D/2D/3D, sub-sampled, through both APIs.
RUN_EVERY_MODE = '''
import json, torch
from nlnet.ops import MODES, NonLocal1d, NonLocal2d, NonLocal3d, NonLocalBlock
ran = []
for mode in MODES:
    for dim, block in ((1, NonLocal1d(8, mode=mode, sub_sample=True)),
                       (2, NonLocal2d(8, mode=mode, norm_cfg=dict(type='BN'))),
                       (3, NonLocalBlock(8, dim=3, mode=mode, sub_sample=True))):
        x = torch.randn(2, 8, *[4, 6, 6][3 - dim:], requires_grad=True)
        block(x).square().sum().backward()
        assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in block.parameters())
        ran.append(f'{mode}-{dim}d')
import nlnet
print(json.dumps(dict(ran=ran, file=nlnet.__file__,
                      mm=sorted(m for m in sys.modules if m.startswith('mm')
                                and m.split('.')[0] not in sys.stdlib_module_names))))
'''


def _run(code, *args, **kwargs):
    result = subprocess.run([sys.executable, *args, '-c', code], capture_output=True, text=True,
                            timeout=300, **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ops_import_loads_no_openmmlab_module():
    loaded = _run('import sys, json\nfrom nlnet.ops import NonLocal2d\n'
                  'print(json.dumps(sorted(m for m in sys.modules if m.startswith("mm") '
                  'and m.split(".")[0] not in sys.stdlib_module_names)))')
    assert loaded == []


def test_installed_wheel_runs_every_mode_with_openmmlab_imports_refused(tmp_path):
    source = tmp_path / 'source'  # what setup.py reads, so that no build output lands in REPO
    shutil.copytree(osp.join(REPO, 'nlnet'), source / 'nlnet',
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(osp.join(REPO, 'requirements'), source / 'requirements')
    for name in ('setup.py', 'README.md'):
        shutil.copy(osp.join(REPO, name), source)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(tmp_path / 'dist'), str(source)], check=True, timeout=300)
    (wheel, ) = (tmp_path / 'dist').glob('nlnet-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        assert 'nlnet/apis/label_maps/label_map_k400.txt' in archive.namelist()  # the demos'
        metadata = archive.read(next(n for n in archive.namelist()
                                     if n.endswith('.dist-info/METADATA'))).decode()
    requires = [line.split(':', 1)[1].strip() for line in metadata.splitlines()
                if line.startswith('Requires-Dist:')]
    assert [r for r in requires if 'extra ==' not in r] == ['torch>=2.4']
    assert any(r.startswith('mmcv') and 'extra == "openmmlab"' in r for r in requires)

    target = tmp_path / 'installed'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
                    str(target), str(wheel)], check=True, timeout=300)
    # -S: no site-packages and none of its .pth files (the editable nlnet); torch's own
    # directory is added by hand after the installed wheel.
    torch_site = osp.dirname(osp.dirname(torch.__file__))
    paths = f'import sys\nsys.path[:0] = [{str(target)!r}, {torch_site!r}]\n'
    report = _run(paths + REFUSE_MM + RUN_EVERY_MODE, '-S', cwd=tmp_path)
    assert report['file'].startswith(str(target))
    assert report['mm'] == []
    assert len(report['ran']) == 12
