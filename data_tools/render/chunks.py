"""Render the chunks of a synthetic build (see `data_tools.render.build`), in-process or in workers.

A `ChunkBuilder` owns one OpenGL renderer and renders chunk after chunk: per instance it builds (or
imports) the mesh, uploads it once, draws all its views in one batch, composites the
backgrounds and streams images, masks and records into the chunk's `GroupedDatasetWriter`.
With several workers each process gets its own builder (and OpenGL context); the background
banks are made once in the parent and sent to the workers.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import numpy as np

from data_tools.atomic_write import remove_temporaries

from data_tools.geometry import project_points
from data_tools.meshes.mesh import MATERIALS, ObjectMesh
from data_tools.render.appearance import lighting_arguments, part_materials, sample_lighting
from data_tools.render.backgrounds import add_contact_shadows, composite
from data_tools.render.plan import (
    NPY_BYTES, PHOTO_FRACTION, SHADOW_FRACTION, TAG_BACKGROUND, TAG_CAMERA, TAG_INSTANCE, TAG_LIGHT,
    TAG_MESH, TAG_OCCLUDER, TAG_VIEW, BuildPlan, chunk_name,
)
from data_tools.render.viewpoints import (
    frame_views, replicate_beyond_border, sample_framing, sample_viewpoint,
)

#: Faces of one part within this angle shade smoothly (the `shapes` factor): curved bodies,
#: tyres and seats read as round; sharper edges (a bumper's, a box's) stay crisp.
SMOOTH_CREASE_DEG = 35.0
#: Views with distractor objects in front of the object (the `occluders` factor).
OCCLUDER_FRACTION = 0.25


def remove_stale_files(plan: BuildPlan, chunk: int) -> None:
    """Delete temporary files a killed build of `chunk` left behind."""
    name = chunk_name(chunk)
    for folder, prefix in (("images", f"{name}-"), ("masks", f"{name}-"), (f"chunks/{name}", "")):
        remove_temporaries(plan.out_dir / folder, prefix)


class ChunkBuilder:
    """Renders chunks of `plan` with one OpenGL context."""

    def __init__(self, plan: BuildPlan, banks: dict) -> None:
        from data_tools.render.renderer import Renderer

        self.plan = plan
        self.config = plan.config
        self.banks = banks
        self.renderer = Renderer(self.config.size, samples=0, supersample=self.config.supersample)

    def mesh(self, instance: int) -> ObjectMesh:
        """The mesh of `instance`: procedural from the seed, or imported (ValueError if broken)."""
        config = self.config
        if self.plan.mesh_paths:
            from data_tools.meshes.import_files import load_mesh

            return load_mesh(self.plan.mesh_paths[instance], config.axes, category=config.category)
        mesh_seed = int(np.random.SeedSequence([config.seed, TAG_MESH, instance]).generate_state(1)[0])
        if config.category == "car":
            from data_tools.meshes.car import random_car

            return random_car(mesh_seed, rounded=config.uses("shapes"))
        from data_tools.meshes.chair import random_chair

        return random_chair(mesh_seed)

    def build(self, chunk: int, on_images: Callable[[int], None] | None = None) -> dict:
        """Render every instance of `chunk` and finalise it; returns counts and error lines.

        `on_images(n)` is called after each instance with its number of images (progress)."""
        from data_tools.dataset import GroupedDatasetWriter

        plan, config = self.plan, self.config
        cpu_started = time.process_time()
        remove_stale_files(plan, chunk)
        instances = plan.chunk_range(chunk)
        per_file = max(1, NPY_BYTES // (config.size * config.size * 3))
        writer = GroupedDatasetWriter(plan.out_dir, config.size, chunk=chunk_name(chunk),
                                      file_images=min(per_file, len(instances) * config.views))
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
        return {"chunk": chunk, "images": images, "skipped": len(errors), "errors": errors,
                "cpu_seconds": time.process_time() - cpu_started}

    def render_instance(self, writer, instance: int, mesh: ObjectMesh) -> int:
        """Render all views of one instance into `writer`; returns the number of images.

        Order per view: render the crop (the crop rule's region, supersampled) -> contact shadow
        on the background -> composite -> occluders -> photo border (truncation) -> camera.
        """
        config = self.config
        vertices, faces, part_index = mesh.merged()
        # Colour by material (parts of one material share a colour): imported meshes may have
        # hundreds of parts, but there are only len(MATERIALS) materials.
        part_material = np.array([MATERIALS.index(p.material) for p in mesh.parts], dtype=np.int32)
        renderer = self.renderer
        renderer.set_mesh(vertices, faces, part_material[part_index], closed=not self.plan.mesh_paths,
                          crease_deg=SMOOTH_CREASE_DEG if config.uses("shapes") else 0.0)
        instance_rng = np.random.default_rng([config.seed, TAG_INSTANCE, instance])
        glossy = config.uses("materials")
        colours, response = part_materials(list(MATERIALS), instance_rng, glossy=glossy)
        textures = None
        if glossy:
            from data_tools.render.procedural.textures import material_textures

            textures = material_textures(list(MATERIALS), colours, instance_rng, category=config.category)
            colours = np.ones_like(colours)  # the textures carry the colours
        renderer.set_materials(colours, response, textures)

        def streams(tag: int) -> list[np.random.Generator]:
            return [np.random.default_rng([config.seed, tag, instance, v]) for v in range(config.views)]

        view_rngs = streams(TAG_VIEW)
        viewpoints = [sample_viewpoint(config.distribution, config.category, rng, v)
                      for v, rng in enumerate(view_rngs)]
        framings = [sample_framing(config.distribution, rng, truncation=config.uses("truncation"),
                                   box_jitter=config.box_jitter) for rng in view_rngs]
        lights = [sample_lighting(rng, photo_like=config.uses("lighting"), environment=glossy)
                  for rng in streams(TAG_LIGHT)]
        background_rngs = streams(TAG_BACKGROUND)
        backgrounds, kinds = self._backgrounds(background_rngs)
        frames = frame_views(vertices, viewpoints, framings, config.size, config.crop_rule, faces)

        column = lambda items, name: np.array([getattr(x, name) for x in items])  # noqa: E731
        rgb, alpha = renderer.render_batch(
            column(viewpoints, "azimuth"), column(viewpoints, "elevation"), column(viewpoints, "theta"),
            column(viewpoints, "distance"), frames["px"], frames["py"], frames["focal_px"],
            focal_y=frames["focal_py"], **lighting_arguments(lights))
        shadows = self._contact_shadows(backgrounds, vertices, viewpoints, frames, background_rngs)
        images = composite(rgb, alpha, backgrounds)
        masks = np.where(alpha >= 128, 255, 0).astype(np.uint8)
        occluded, shrink = np.zeros(len(viewpoints)), np.ones(len(viewpoints))
        if config.uses("occluders"):
            from data_tools.render.occluders import add_occluders
        if config.uses("camera"):
            from data_tools.render.camera_effects import EFFECT_PROBABILITIES, apply_camera_effects

            camera_probabilities = {**EFFECT_PROBABILITIES, "low_resolution": config.small_objects}
        occluder_rngs, camera_rngs = streams(TAG_OCCLUDER), streams(TAG_CAMERA)
        for v, framing in enumerate(framings):
            if config.uses("occluders"):
                box = tuple(frames[k][v] for k in ("box_x1", "box_y1", "box_x2", "box_y2"))
                images[v], masks[v], occluded[v] = add_occluders(
                    images[v], masks[v], box, occluder_rngs[v], probability=OCCLUDER_FRACTION)
            replicate_beyond_border(images[v], framing.truncate_side, frames["border"][v])
            if framing.truncate_side:
                masks[v] = self._cut_mask(masks[v], framing.truncate_side, frames["border"][v])
            if config.uses("camera"):
                images[v], shrink[v] = apply_camera_effects(images[v], camera_rngs[v],
                                                            probabilities=camera_probabilities)
        split = self.plan.splits[instance]
        for v, (view, framing, light) in enumerate(zip(viewpoints, framings, lights)):
            record = {
                "group": instance, "instance": mesh.instance, "category": config.category,
                "split": split, "source": "synthetic", "azimuth": view.azimuth,
                "elevation": view.elevation, "theta": view.theta, "distance": view.distance,
                "has_pose": 1, "view": v,
                **{key: float(frames[key][v]) for key in (
                    "focal_px", "focal_py", "px", "py", "box_x1", "box_y1", "box_x2", "box_y2",
                    "jitter_x1", "jitter_y1", "jitter_x2", "jitter_y2")},
                "truncated": int(bool(framing.truncate_side)), "truncate_side": framing.truncate_side,
                "occluded": float(occluded[v]), "shrink": float(shrink[v]),
                "light_x": light.light_x, "light_y": light.light_y, "light_z": light.light_z,
                "light_intensity": light.intensity, "ambient": light.ambient,
                "background": kinds[v], "shadow": float(shadows[v]),
            }
            writer.add(images[v], record, mask=masks[v])
        return len(viewpoints)

    @staticmethod
    def _cut_mask(mask: np.ndarray, side: str, border: float) -> np.ndarray:
        """The mask without the pixels beyond the photo border (they show no object)."""
        centres = np.arange(mask.shape[0]) + 0.5
        beyond = centres < border if side in ("left", "top") else centres > border
        cut = mask.copy()
        if side in ("left", "right"):
            cut[:, beyond] = 0
        else:
            cut[beyond, :] = 0
        return cut

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
            unit = project_points(
                corners, np.array([v.azimuth for v in viewpoints]), np.array([v.elevation for v in viewpoints]),
                np.array([v.theta for v in viewpoints]), np.array([v.distance for v in viewpoints]),
                0.0, 0.0, 1.0, 1.0)  # (N, 4, 2) unit camera
            footprints = np.stack([unit[..., 0] * frames["focal_px"][:, None] + frames["px"][:, None],
                                   unit[..., 1] * frames["focal_py"][:, None] + frames["py"][:, None]], -1)
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


_WORKER_BUILDER: ChunkBuilder | None = None


def _start_worker(plan: BuildPlan, banks: dict) -> None:
    global _WORKER_BUILDER
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per worker process
    _WORKER_BUILDER = ChunkBuilder(plan, banks)


def _build_in_worker(chunk: int) -> dict:
    return _WORKER_BUILDER.build(chunk)


def build_chunks(plan: BuildPlan, banks: dict, chunks: list[int], workers: int = 1,
                on_images: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Build `chunks`, yielding each chunk's stats as it finishes (in any order with workers).

    `on_images(n)` reports progress: per instance in-process, per finished chunk from workers
    (counting skipped meshes' views too, so progress reaches the planned total)."""
    workers = max(1, min(int(workers), len(chunks)))
    if workers == 1:
        builder = ChunkBuilder(plan, banks)
        try:
            for chunk in chunks:
                yield builder.build(chunk, on_images)
        finally:
            builder.renderer.release()
        return
    import multiprocessing

    # Not "fork": a process that has used OpenGL (llvmpipe threads, EGL display) must not fork.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(workers, initializer=_start_worker, initargs=(plan, banks)) as pool:
        for stats in pool.imap_unordered(_build_in_worker, chunks):
            if on_images is not None:
                on_images(len(plan.chunk_range(stats["chunk"])) * plan.config.views)
            yield stats


__all__ = ["ChunkBuilder", "build_chunks"]
