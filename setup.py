"""nlnet: Non-local Neural Networks for the OpenMMLab stack.

Install the pinned stack first (``bash tools/setup_env.sh`` does it all): mmcv
compiles against the installed torch, so it cannot come from install_requires.
"""
from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith('#')]


setup(
    name='nlnet',
    version='0.1.0',
    description='Non-local Neural Networks (Wang et al., CVPR 2018) for mmaction2, mmseg and mmdet',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['nlnet', 'nlnet.*']),
    # The label maps of nlnet.apis (Kinetics-400, Charades) travel with the package.
    package_data={'nlnet.apis': ['label_maps/*.txt', 'label_maps/README.md']},
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    license='Apache-2.0',
)
