"""A poisoned ``stego_embed`` for the fault tests: the real model, except that a window whose
LSB plane starts with :data:`MARKER` (the LSBs of its first 32 samples) kills the model's stub
process, as a cover that hits a crash in native code would. Copied over the real model.py
(moved to ``real_model.py``) in a temporary copy of the model repository."""

import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from real_model import TritonPythonModel as RealModel

MARKER = np.array([0xDE, 0xAD, 0xBE, 0xEF], dtype=np.uint8)


class TritonPythonModel(RealModel):
    def execute(self, requests):
        for request in requests:
            planes = pb_utils.get_input_tensor_by_name(request, "PLANE").as_numpy()
            if any(np.array_equal(row[: MARKER.size], MARKER) for row in planes):
                os._exit(70)  # the stub dies without a word, mid-request
        return super().execute(requests)
