"""subtone.lazy: a package's names imported on first use, and only then."""

import subprocess
import sys

import pytest


def test_a_name_is_imported_when_first_asked_for_and_kept():
    probe = (
        "import sys\n"
        "import subtone.robust as r\n"
        "before = 'subtone.robust.embedding' in sys.modules\n"
        "f = r.embed\n"
        "print(before, 'subtone.robust.embedding' in sys.modules, r.__dict__['embed'] is f)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_an_unknown_name_is_an_attribute_error():
    import desktop.core.orchestration as orchestration

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        orchestration.nothing_here  # noqa: B018
