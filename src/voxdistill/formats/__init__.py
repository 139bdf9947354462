"""A model written in the format another runtime reads, below both the runtime that runs it and
``export`` that deploys it:

- `formats.ctranslate2`: a Whisper model as a Hugging Face or CTranslate2 folder (the latter by the
  ``ctranslate2`` package's own converter), and the CTranslate2 folder the ``ct2`` runtime keeps in
  the cache;
- `formats.onnx`: a CTC student as an ONNX graph checked in onnxruntime, and the ONNX folder the
  ``onnx`` runtime keeps in the cache.

(The opposite direction, the bundled teachers' CTranslate2 weights read into a Hugging Face folder,
is part of loading: `models.convert`.)

Every folder written here carries an export record, ``voxdistill-export.json``: what was written
from what (the source's fingerprint, so a runtime reports the weights it was given).
"""

EXPORT_RECORD = "voxdistill-export.json"
