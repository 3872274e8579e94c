"""Triton python-backend model ``stego_robust_extract`` (contract: ``config.pbtxt``).

The body is :mod:`subtone.robust.triton_model`, shared with ``stego_robust_embed``. The
stub's Python must have the repository root (or the installed ``subtone`` package), numpy
and scipy on its path (see ``model_repository/stego_embed/1/model.py``).
"""

import triton_python_backend_utils as pb_utils

from subtone.robust.triton_model import model_class

TritonPythonModel = model_class(pb_utils, "extract")
