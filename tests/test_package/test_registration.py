"""Where nlnet registers into the OpenMMLab stack, each in a fresh interpreter.

``nlnet.openmmlab`` registers (shipped configs' ``custom_imports`` and the tools import
it); ``import nlnet`` alone registers only where mmengine is already loaded, so that
configs written as ``custom_imports=dict(imports=['nlnet'])`` keep working while a
PyTorch user importing ``nlnet.ops`` loads no mm* package.
"""
import json
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py')

BUILD_AND_REPORT = '''
from mmengine.registry import init_default_scope
from mmaction.registry import MODELS
init_default_scope('mmaction')
model = MODELS.build(cfg.model)
from nlnet.models.layers import NonLocalBlock
print(json.dumps(dict(mm_before=mm_before, custom_imports=cfg.custom_imports.imports,
                      blocks=sum(isinstance(m, NonLocalBlock) for m in model.modules()))))
'''


def _run(code):
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_script_importing_nlnet_first_builds_a_shipped_config():
    report = _run('import json, sys\nimport nlnet\n'
                  'mm_before = sorted(m for m in sys.modules if m.startswith(("mmengine", '
                  '"mmcv", "mmaction", "mmseg", "mmdet")))\n'
                  'from mmengine.config import Config\n'
                  f'cfg = Config.fromfile({DEMO_CONFIG!r})\n' + BUILD_AND_REPORT)
    assert report['mm_before'] == []  # import nlnet alone loads no OpenMMLab package
    assert report['custom_imports'] == ['nlnet.openmmlab']
    assert report['blocks'] == 1


def test_config_with_the_old_custom_imports_still_builds(tmp_path):
    config = tmp_path / 'old_style_config.py'
    config.write_text(f'_base_ = [{DEMO_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['nlnet'], allow_failed_imports=False)\n")
    report = _run('import json\nmm_before = None\nfrom mmengine.config import Config\n'
                  f'cfg = Config.fromfile({str(config)!r})\n' + BUILD_AND_REPORT)
    assert report['custom_imports'] == ['nlnet']
    assert report['blocks'] == 1
