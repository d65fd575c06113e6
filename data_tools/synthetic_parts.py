"""Render the parts of a synthetic build (see `data_tools.synthetic`), in-process or in workers.

A `PartBuilder` owns one OpenGL renderer and renders part after part: per instance it builds (or
imports) the mesh, uploads it once, draws all its views in one batch, composites the
backgrounds and streams images, masks and records into the part's `GroupedDatasetWriter`.
With several workers each process gets its own builder (and OpenGL context); the background
banks are made once in the parent and sent to the workers.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import numpy as np

from data_tools.appearance import part_materials, sample_lighting
from data_tools.backgrounds import add_contact_shadows, composite
from data_tools.geometry import project_points
from data_tools.meshes import MATERIALS, ObjectMesh
from data_tools.synthetic import (
    NPY_BYTES, PHOTO_FRACTION, SHADOW_FRACTION, TAG_INSTANCE, TAG_MESH, TAG_VIEW, BuildPlan,
    part_name, remove_stale_files,
)
from data_tools.viewpoint_sampling import frame_views, sample_framing, sample_viewpoint


class PartBuilder:
    """Renders parts of `plan` with one OpenGL context."""

    def __init__(self, plan: BuildPlan, banks: dict) -> None:
        from data_tools.renderer import Renderer

        self.plan = plan
        self.config = plan.config
        self.banks = banks
        self.renderer = Renderer(self.config.size, samples=0, supersample=self.config.supersample)

    def mesh(self, instance: int) -> ObjectMesh:
        """The mesh of `instance`: procedural from the seed, or imported (ValueError if broken)."""
        config = self.config
        if self.plan.mesh_paths:
            from data_tools.mesh_import import load_mesh

            return load_mesh(self.plan.mesh_paths[instance], config.axes, category=config.category)
        mesh_seed = int(np.random.SeedSequence([config.seed, TAG_MESH, instance]).generate_state(1)[0])
        if config.category == "car":
            from data_tools.procedural_car import random_car

            return random_car(mesh_seed)
        from data_tools.procedural_chair import random_chair

        return random_chair(mesh_seed)

    def build(self, part: int, on_images: Callable[[int], None] | None = None) -> dict:
        """Render every instance of `part` and finalise it; returns counts and error lines.

        `on_images(n)` is called after each instance with its number of images (progress)."""
        from data_tools.dataset import GroupedDatasetWriter

        plan, config = self.plan, self.config
        cpu_started = time.process_time()
        remove_stale_files(plan, part)
        instances = plan.part_range(part)
        per_file = max(1, NPY_BYTES // (config.size * config.size * 3))
        writer = GroupedDatasetWriter(plan.out_dir, config.size, part=part_name(part),
                                      shard_size=min(per_file, len(instances) * config.views))
        errors, images = [], 0
        for instance in instances:
            try:
                mesh = self.mesh(instance)
            except ValueError as error:
                errors.append(f"skipping mesh: {error}")
                if on_images is not None:
                    on_images(config.views)
                continue
            images += self.render_instance(writer, instance, mesh)
            if on_images is not None:
                on_images(config.views)
        writer.close({**plan.manifest(), "mesh_errors": errors})
        return {"part": part, "images": images, "skipped": len(errors), "errors": errors,
                "cpu_seconds": time.process_time() - cpu_started}

    def render_instance(self, writer, instance: int, mesh: ObjectMesh) -> int:
        """Render all views of one instance into `writer`; returns the number of images."""
        config = self.config
        vertices, faces, part_index = mesh.merged()
        # Colour by material (parts of one material share a colour): imported meshes may have
        # hundreds of parts, but there are only len(MATERIALS) materials.
        part_material = np.array([MATERIALS.index(p.material) for p in mesh.parts], dtype=np.int32)
        renderer = self.renderer
        renderer.set_mesh(vertices, faces, part_material[part_index], closed=not self.plan.mesh_paths)
        instance_rng = np.random.default_rng([config.seed, TAG_INSTANCE, instance])
        colours, response = part_materials(list(MATERIALS), instance_rng)
        renderer.set_materials(colours, response)

        view_rngs = [np.random.default_rng([config.seed, TAG_VIEW, instance, v]) for v in range(config.views)]
        viewpoints = [sample_viewpoint(config.distribution, config.category, rng, v)
                      for v, rng in enumerate(view_rngs)]
        framings = [sample_framing(config.distribution, rng) for rng in view_rngs]
        lights = [sample_lighting(rng) for rng in view_rngs]
        backgrounds, kinds = self._backgrounds(view_rngs)
        frames = frame_views(vertices, viewpoints, framings, config.size)

        column = lambda items, name: np.array([getattr(x, name) for x in items])  # noqa: E731
        rgb, alpha = renderer.render_batch(
            column(viewpoints, "azimuth"), column(viewpoints, "elevation"), column(viewpoints, "theta"),
            column(viewpoints, "distance"), frames["px"], frames["py"], frames["focal_px"],
            light_dir=np.stack([column(lights, "light_x"), column(lights, "light_y"),
                                column(lights, "light_z")], 1),
            light_intensity=column(lights, "intensity"), ambient=column(lights, "ambient"),
            specular_scale=column(lights, "specular"),
            colour_gain=np.stack([column(lights, "gain_r"), column(lights, "gain_g"),
                                  column(lights, "gain_b")], 1))
        shadows = self._contact_shadows(backgrounds, vertices, viewpoints, frames, view_rngs)
        images = composite(rgb, alpha, backgrounds)
        masks = np.where(alpha >= 128, 255, 0).astype(np.uint8)
        size = config.size
        truncated = ((frames["box_x1"] < -0.5) | (frames["box_y1"] < -0.5)
                     | (frames["box_x2"] > size + 0.5) | (frames["box_y2"] > size + 0.5))
        split = self.plan.splits[instance]
        for v, (view, framing, light) in enumerate(zip(viewpoints, framings, lights)):
            record = {
                "group": instance, "instance": mesh.instance, "category": config.category,
                "split": split, "source": "synthetic", "azimuth": view.azimuth,
                "elevation": view.elevation, "theta": view.theta, "distance": view.distance,
                "has_pose": 1, "view": v,
                "focal_px": float(frames["focal_px"][v]), "px": float(frames["px"][v]),
                "py": float(frames["py"][v]),
                "box_x1": float(frames["box_x1"][v]), "box_y1": float(frames["box_y1"][v]),
                "box_x2": float(frames["box_x2"][v]), "box_y2": float(frames["box_y2"][v]),
                "truncated": int(truncated[v]), "fill": framing.fill,
                "light_x": light.light_x, "light_y": light.light_y, "light_z": light.light_z,
                "light_intensity": light.intensity, "ambient": light.ambient,
                "background": kinds[v], "shadow": float(shadows[v]),
            }
            writer.add(images[v], record, mask=masks[v])
        return len(viewpoints)

    def _contact_shadows(self, backgrounds, vertices, viewpoints, frames, view_rngs) -> np.ndarray:
        """Darken the ground under the object (its bounding box's bottom face, projected) in
        SHADOW_FRACTION of the views seen from above; returns each view's strength (0 = none)."""
        low, high = vertices.min(axis=0), vertices.max(axis=0)
        centre, half = (low + high) / 2, 0.55 * (high - low)  # a little wider than the object
        corners = np.array([[centre[0] + sx * half[0], centre[1] + sy * half[1], low[2]]
                            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
        strengths = np.array([rng.uniform(0.25, 0.65) if rng.random() < SHADOW_FRACTION else 0.0
                              for rng in view_rngs])
        strengths[np.array([v.elevation for v in viewpoints]) <= 0.0] = 0.0  # camera below ground
        if strengths.any():
            footprints = project_points(
                corners, np.array([v.azimuth for v in viewpoints]), np.array([v.elevation for v in viewpoints]),
                np.array([v.theta for v in viewpoints]), np.array([v.distance for v in viewpoints]),
                frames["px"], frames["py"], 1.0, frames["focal_px"])
            add_contact_shadows(backgrounds, footprints, strengths)
        return strengths

    def _backgrounds(self, view_rngs) -> tuple[np.ndarray, list[str]]:
        """One background crop per view (a photo with probability PHOTO_FRACTION when given)."""
        size = self.config.size
        out = np.empty((len(view_rngs), size, size, 3), dtype=np.uint8)
        kinds = []
        for v, rng in enumerate(view_rngs):
            use_photo = "photo" in self.banks and rng.random() < PHOTO_FRACTION
            out[v], kind = self.banks["photo" if use_photo else "procedural"].sample(rng)
            kinds.append(kind)
        return out, kinds


_WORKER_BUILDER: PartBuilder | None = None


def _start_worker(plan: BuildPlan, banks: dict) -> None:
    global _WORKER_BUILDER
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per worker process
    _WORKER_BUILDER = PartBuilder(plan, banks)


def _build_in_worker(part: int) -> dict:
    return _WORKER_BUILDER.build(part)


def build_parts(plan: BuildPlan, banks: dict, parts: list[int], workers: int = 1,
                on_images: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Build `parts`, yielding each part's stats as it finishes (in any order with workers).

    `on_images(n)` reports progress: per instance in-process, per finished part from workers
    (counting skipped meshes' views too, so progress reaches the planned total)."""
    workers = max(1, min(int(workers), len(parts)))
    if workers == 1:
        builder = PartBuilder(plan, banks)
        try:
            for part in parts:
                yield builder.build(part, on_images)
        finally:
            builder.renderer.release()
        return
    import multiprocessing

    # Not "fork": a process that has used OpenGL (llvmpipe threads, EGL display) must not fork.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(workers, initializer=_start_worker, initargs=(plan, banks)) as pool:
        for stats in pool.imap_unordered(_build_in_worker, parts):
            if on_images is not None:
                on_images(len(plan.part_range(stats["part"])) * plan.config.views)
            yield stats


__all__ = ["PartBuilder", "build_parts"]
