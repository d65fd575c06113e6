"""Whether a headless EGL context can be made here, probed once for every rendering test module."""

import pytest

from data_tools.render.renderer import create_context


def _egl_problem() -> str | None:
    try:
        create_context().release()
    except ValueError as error:
        return str(error)
    return None


EGL_PROBLEM = _egl_problem()
needs_egl = pytest.mark.skipif(EGL_PROBLEM is not None, reason=f"no EGL context: {EGL_PROBLEM}")
