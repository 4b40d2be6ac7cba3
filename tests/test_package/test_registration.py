"""Where nlnet registers into the OpenMMLab stack, each in a fresh interpreter.

``nlnet.openmmlab`` registers (shipped configs' ``custom_imports`` and the tools import
it); ``import nlnet`` alone registers only where mmengine is already loaded, so that
configs written as ``custom_imports=dict(imports=['nlnet'])`` keep working while a
PyTorch user importing ``nlnet.ops`` loads no mm* package (tests/test_ops/test_torch_only.py).
A script importing nlnet first and building from a shipped config through MMAction2's API:
tests/test_apis/test_openmmlab_inference.py.
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
print(json.dumps(dict(custom_imports=cfg.custom_imports.imports,
                      blocks=sum(isinstance(m, NonLocalBlock) for m in model.modules()))))
'''


def _run(code):
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_config_with_the_old_custom_imports_still_builds(tmp_path):
    config = tmp_path / 'old_style_config.py'
    config.write_text(f'_base_ = [{DEMO_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['nlnet'], allow_failed_imports=False)\n")
    report = _run('import json\nfrom mmengine.config import Config\n'
                  f'cfg = Config.fromfile({str(config)!r})\n' + BUILD_AND_REPORT)
    assert report['custom_imports'] == ['nlnet']
    assert report['blocks'] == 1
