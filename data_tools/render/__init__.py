"""Synthetic renders: the EGL renderer, viewpoints, appearance, backgrounds, occluders, camera effects and the build (plan, chunks, driver)."""
