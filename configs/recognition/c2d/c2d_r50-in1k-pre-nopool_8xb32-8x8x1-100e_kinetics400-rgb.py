# C2D ResNet-50 without temporal pooling, 8x8x1 clips ("ResNet50" row of MMAction2's C2D
# table: 33G, 24.3M). MMAction2 builds this row as a TSN-style 2D ResNet in Recognizer2D
# (torchvision stem, dropout 0.4, features of all frames of all test views averaged before
# one classifier, then the softmax); 1x7x7 convs with a padded stem pool and
# ConsensusI3DHead (views' logits averaged, then the softmax) compute the same scores and
# load its checkpoint.
_base_ = ['./c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(pool1_padding=(0, 1, 1), temporal_pool=False),
    cls_head=dict(type='ConsensusI3DHead', dropout_ratio=0.4))
