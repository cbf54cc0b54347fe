# The input of every det model: DetDataPreprocessor's defaults (ImageNet mean and std, BGR -> RGB, padded
# to a multiple of 32) in channels-last memory, the main job's speed setting with bf16 autocast
# (docs/cpu_speed.md). Every model base builds on it; a config trained in fp32 sets channels_last=False,
# one whose pretrained weights were trained with another normalisation sets their mean and std.
model = dict(data_preprocessor=dict(type='DetDataPreprocessor', channels_last=True))
