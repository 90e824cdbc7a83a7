"""The exported model's contract: what export.py writes and onnx_stylizer.py checks. Torch-free.

- one input ``image``: float32 [N, 3, H, W], RGB in [0, 1], N, H and W dynamic, H, W >= MIN_SIZE;
- one output ``stylized``: float32, the input's shape, RGB in [0, 1];
- metadata_props ``fastnst.format`` = ONNX_FORMAT, plus ``fastnst.style_name``, ``fastnst.style_sha256``,
  ``fastnst.image_size`` (training crop, px), ``fastnst.style_size`` (the style image's longer side in
  training, px), ``fastnst.loss`` (JSON), ``fastnst.model`` (JSON), ``fastnst.meta`` (JSON: the
  training run's whole meta dict) and ``fastnst.version`` (of the exporter).
"""

ONNX_FORMAT = "fastnst-transformer/1"
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
METADATA_PREFIX = "fastnst."
# px: the smallest H, W every model takes as it is. Smaller inputs are edge-padded to it and the
# result cropped back: by the stylizers (runtime.run_image) before an ONNX session, which is only
# exported for H, W >= MIN_SIZE, and by TransformerNet itself, whose 9x9 reflection pads need more
# than 4 px at every scale. One rule for both, so every backend gives the same pixels.
MIN_SIZE = 16
# The stride-2 stages of every model (Johnson et al.: 2); inputs are padded to a multiple of 2^this.
DOWNSAMPLES = 2
