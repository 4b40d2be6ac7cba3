"""nlnet: Non-local Neural Networks, in PyTorch and for the OpenMMLab stack.

``pip install .`` needs torch alone and gives :mod:`nlnet.ops` (the block for any PyTorch
model). The OpenMMLab stack is the extra ``openmmlab`` (``pip install .[openmmlab]``), the
attention explorer's Gradio the extra ``app``. mmcv compiles against the installed torch,
so install torch first and mmcv without build isolation (``bash tools/setup_env.sh`` does
it all, with every extra).
"""
from setuptools import find_packages, setup


def read_requirements(*paths):
    requirements = []
    for path in paths:
        with open(path) as handle:
            requirements += [line.strip() for line in handle
                             if line.strip() and not line.startswith(('#', '-r'))]
    return requirements


setup(
    name='nlnet',
    version='0.1.0',
    description='Non-local Neural Networks (Wang et al., CVPR 2018): a PyTorch block, and '
    'models for mmaction2, mmseg and mmdet',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['nlnet', 'nlnet.*']),
    # The label maps of nlnet.apis (Kinetics-400, Charades) travel with the package.
    package_data={'nlnet.apis': ['label_maps/*.txt', 'label_maps/README.md']},
    python_requires='>=3.9',
    install_requires=['torch>=2.4'],
    extras_require={
        'openmmlab': read_requirements('requirements/mmcv.txt', 'requirements/runtime.txt'),
        'app': read_requirements('requirements/app.txt'),
        'tests': read_requirements('requirements/tests.txt'),
    },
    license='Apache-2.0',
)
