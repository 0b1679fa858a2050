"""The learner's own output, without the lines libraries print on their own.

Why: "Output of your code" (the report) and the self-check's terminal are read by the learner,
and TensorFlow opens both with a dozen lines of its C++ runtime (CUDA/cuDNN/cuBLAS factory
registration errors, "could not find cuda drivers", oneDNN and CPU-instruction notices, absl's
"All log messages before absl::InitializeLog()"), which look like errors of theirs and are not.
They are recognised by the shape of those library lines (the log formats of TensorFlow's C++
runtime), never by a word such as "tensorflow" or "warning": a learner's own print that mentions
either is kept.
"""

from __future__ import annotations

import re

#: One line each, matched from its start (after terminal codes are removed).
LIBRARY_LINES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern)
    for pattern in (
        # absl/glog lines of TensorFlow's C++ runtime (TF >= 2.16), any level, e.g.
        # "I0000 00:00:1796643985.924358    8079 port.cc:153] oneDNN custom operations are on."
        # "E0000 00:00:1711 ... cuda_dnn.cc:8310] Unable to register cuDNN factory: ..."
        r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./+-]+:\d+\] ",
        # the same runtime before absl (TF < 2.16), e.g. "2024-01-30 10:00:00.123456: W
        # tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: ..."
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./+-]+:\d+\] ",
        # absl, once per process before the runtime's first line
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
        r"STDERR$",
        # the second line of cpu_feature_guard's "This TensorFlow binary is optimized ..."
        r"^To enable (?:the following instructions: [\w ]+, in other operations|them in other "
        r"operations), rebuild TensorFlow with the appropriate compiler flags\.$",
    )
)


def is_library_line(line: str) -> bool:
    """Whether ``line`` (without its newline) is one a library printed on its own."""
    return any(pattern.match(line) for pattern in LIBRARY_LINES)


def learner_output(text: str) -> str:
    """``text`` without the lines libraries print on their own (:data:`LIBRARY_LINES`)."""
    kept = [
        line for line in text.splitlines(keepends=True) if not is_library_line(line.rstrip("\r\n"))
    ]
    return "".join(kept)
