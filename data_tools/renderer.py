"""Headless OpenGL renderer of part-coloured meshes with the exact PASCAL3D+ camera.

One moderngl context (EGL: Mesa llvmpipe on a CPU machine, the GPU's driver where there is one)
and one offscreen framebuffer per `Renderer`. A mesh is uploaded once (`set_mesh`), then many
views are drawn from it. Views are drawn in batches into the tiles of one large "atlas"
framebuffer by a single instanced draw call (instance k = view k; `gl_ClipDistance` keeps each
view inside its tile) and read back with one `read_into`, because at 64 px the fixed cost per
draw call and per readback dominates the rasterisation itself.

Camera (DESIGN.md section 2, identical to `data_tools.geometry.project_points`): with
R = Rz(theta) Rx(e - 90deg) Rz(-a) and (x, y, z)_cam = R X - (0, 0, d), the pixel coordinates are

    x = f * x_cam / (-z_cam) + px,        y = -f * y_cam / (-z_cam) + py,

f = focal * viewport in pixels of the rendered image. Pixel (i, j) covers [i, i+1) x [j, j+1),
so a horizontal flip maps x to W - x. The GL projection below is built from exactly these
intrinsics; GL's NDC y is mapped so that the first row read back is the image's top row.

Shading: flat, one colour per face: Lambert + ambient + Blinn-Phong specular + emission in the
camera frame, evaluated in the vertex shader and passed `flat` (the face's provoking vertex
decides), with faces lit from both sides since imported meshes are not always consistently
wound. Evaluating it per vertex instead of per pixel made llvmpipe ~1.5x faster at 64-128 px; the
price is a uniform highlight over each (small) face. Parts have a colour and (specular strength,
shininess, emission).

Anti-aliasing: `supersample=2` (draw 2x, average 2x2 blocks with cv2.INTER_AREA) was both faster
and better than 4x MSAA on llvmpipe (MSAA shades once per pixel and cost 1.5-2x more here).
"""

from __future__ import annotations

import numpy as np

from data_tools.geometry import viewpoint_to_rotation

EGL_HELP = (
    "Headless OpenGL needs EGL and Mesa: on Debian/Ubuntu run "
    "`apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri`"
)

#: Views drawn per instanced draw call (uniform arrays are sized for it).
MAX_VIEWS = 64
#: Parts per mesh (uniform arrays of colours and specular terms are sized for it).
MAX_PARTS = 64
#: Per-view vec4 slots in the view uniform array (see `_pack_views`).
_SLOTS = 8

_VERTEX_SHADER = f"""
#version 330
#define MAX_VIEWS {MAX_VIEWS}
#define MAX_PARTS {MAX_PARTS}
uniform vec4 u_view[MAX_VIEWS * {_SLOTS}];
uniform vec3 u_colour[MAX_PARTS];
uniform vec3 u_material[MAX_PARTS];   // specular strength, shininess, emission
uniform vec2 u_grid;          // tiles per atlas row, per atlas column
uniform float u_tile;         // tile side in pixels
in vec3 in_position;
in vec3 in_normal;
in float in_part;
flat out vec3 v_colour;
out float gl_ClipDistance[4];

void main() {{
    int base = gl_InstanceID * {_SLOTS};
    mat3 rows = mat3(u_view[base].xyz, u_view[base + 1].xyz, u_view[base + 2].xyz);
    vec4 cam = u_view[base + 3];     // focal_px, px, py, distance
    vec4 clip = u_view[base + 4];    // near, far, tile column, tile row
    vec3 p = in_position * rows;     // row vector times mat3(rows as columns) = R @ X
    float z_cam = p.z - cam.w;
    float w = -z_cam;
    // Tile-local clip coordinates of the PASCAL3D+ camera (image y down -> NDC y = -1 at the top).
    float x_local = 2.0 * cam.x / u_tile * p.x + (2.0 * cam.y / u_tile - 1.0) * w;
    float y_local = -2.0 * cam.x / u_tile * p.y + (2.0 * cam.z / u_tile - 1.0) * w;
    float near = clip.x, far = clip.y;
    float z_clip = -(far + near) / (far - near) * z_cam - 2.0 * far * near / (far - near);
    gl_ClipDistance[0] = w + x_local;
    gl_ClipDistance[1] = w - x_local;
    gl_ClipDistance[2] = w + y_local;
    gl_ClipDistance[3] = w - y_local;
    // Place the tile in the atlas: atlas_ndc = (local_ndc + 1 + 2 * tile) / tiles - 1.
    float x_atlas = (x_local + w * (1.0 + 2.0 * clip.z)) / u_grid.x - w;
    float y_atlas = (y_local + w * (1.0 + 2.0 * clip.w)) / u_grid.y - w;
    gl_Position = vec4(x_atlas, y_atlas, z_clip, w);

    // Flat shading, evaluated once per face (at its provoking vertex) in the camera frame.
    vec4 light = u_view[base + 5];   // direction toward the light, intensity
    vec4 shade = u_view[base + 6];   // ambient, specular scale
    vec3 gain = u_view[base + 7].xyz;
    int part = int(in_part + 0.5);
    vec3 to_eye = normalize(-vec3(p.xy, z_cam));
    vec3 n = in_normal * rows;
    if (dot(n, to_eye) < 0.0) n = -n;           // lit from both sides
    vec3 l = normalize(light.xyz);
    float diffuse = max(dot(n, l), 0.0);
    vec3 h = normalize(l + to_eye);
    vec3 material = u_material[part];
    float specular = material.x * shade.y * pow(max(dot(n, h), 0.0), material.y) * step(1e-6, diffuse);
    vec3 colour = u_colour[part] * gain;
    v_colour = clamp(colour * (shade.x + light.w * diffuse + material.z) + light.w * specular, 0.0, 1.0);
}}
"""

_FRAGMENT_SHADER = """
#version 330
flat in vec3 v_colour;
out vec4 f_colour;

void main() {
    f_colour = vec4(v_colour, 1.0);
}
"""


def atlas_grid(views: int) -> tuple[int, int]:
    """Tiles per row and per column of a near-square atlas holding `views` tiles."""
    columns = int(np.ceil(np.sqrt(views)))
    return columns, int(np.ceil(views / columns))


def _load_triton_before_mesa() -> None:
    """Import Triton (if installed) before Mesa's llvmpipe loads its LLVM.

    Both carry LLVM; importing Triton after an llvmpipe context exists crashes the process
    (segfault in `import triton`, reached later by torch.compile or torch.onnx.export in the same
    process, e.g. in a test session or a demo that renders and then trains). The other order
    works, and the import costs about 0.2 s.
    """
    import importlib.util
    import sys

    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    try:
        import triton  # noqa: F401
    except ImportError:  # a broken Triton install: nothing to protect
        return


def create_context(backend: str = "egl"):
    """A standalone moderngl context, or a ValueError naming the packages to install."""
    _load_triton_before_mesa()
    try:
        import moderngl
    except ImportError as error:  # pragma: no cover - moderngl is a base dependency
        raise ValueError(f"moderngl is not installed ({error}); pip install moderngl") from error
    try:
        return moderngl.create_standalone_context(backend=backend)
    except Exception as error:  # glcontext raises bare Exception subclasses for missing libraries
        raise ValueError(f"cannot create an OpenGL context with backend {backend!r} ({error}). "
                         f"{EGL_HELP}") from error


def flat_vertex_arrays(vertices: np.ndarray, faces: np.ndarray,
                       part_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indexed vertex data for flat shading: (V + F, 7) float32 rows (position, normal, part id)
    and (F, 3) int32 indices.

    Flat outputs come from a triangle's last ("provoking") vertex, so each face gets one own
    vertex carrying its normal and part as its last corner, while its first two corners reuse
    the mesh's shared vertices (whose normal and part are never read). That runs the vertex
    shader V + F times per view instead of 3F. Degenerate faces get a zero normal (ambient only).
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    corners = vertices[faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    n_shared = len(vertices)
    data = np.zeros((n_shared + len(faces), 7), dtype=np.float32)
    data[:n_shared, 0:3] = vertices
    data[n_shared:, 0:3] = corners[:, 2]
    data[n_shared:, 3:6] = normals
    data[n_shared:, 6] = np.asarray(part_ids, dtype=np.float32)
    indices = np.column_stack([faces[:, 0], faces[:, 1], n_shared + np.arange(len(faces))])
    return data, indices.astype(np.int32)


class Renderer:
    """Offscreen renderer: `set_mesh` once, then `render_batch` / `render` many views.

    Args:
        size: side of the square output images in pixels.
        samples: multisample anti-aliasing samples (0 or 1 = off, 2 or 4).
        supersample: draw at `supersample` times the size and average down (cv2.INTER_AREA);
            an alternative to MSAA, 1 = off.
        backend: moderngl standalone backend ("egl" for headless).
        max_views: views per draw call and readback (at most MAX_VIEWS).
    """

    def __init__(self, size: int, samples: int = 4, supersample: int = 1, backend: str = "egl",
                 max_views: int = MAX_VIEWS) -> None:
        if int(size) < 8:
            raise ValueError(f"size must be >= 8 pixels, got {size}")
        if samples not in (0, 1, 2, 4):
            raise ValueError(f"samples must be 0, 1, 2 or 4, got {samples}")
        if supersample not in (1, 2, 3, 4):
            raise ValueError(f"supersample must be 1, 2, 3 or 4, got {supersample}")
        if not 1 <= max_views <= MAX_VIEWS:
            raise ValueError(f"max_views must be in 1..{MAX_VIEWS}, got {max_views}")
        import moderngl

        self.size, self.samples, self.supersample = int(size), int(samples), int(supersample)
        self.tile = self.size * self.supersample
        self.grid = atlas_grid(max_views)
        self.max_views = int(max_views)
        self.ctx = create_context(backend)
        ctx = self.ctx
        atlas = (self.grid[0] * self.tile, self.grid[1] * self.tile)
        msaa = self.samples if self.samples > 1 else 0
        self._draw_fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer(atlas, 4, samples=msaa)],
            depth_attachment=ctx.depth_renderbuffer(atlas, samples=msaa),
        )
        self._read_fbo = (
            ctx.framebuffer(color_attachments=[ctx.renderbuffer(atlas, 4)]) if msaa else self._draw_fbo
        )
        self._atlas = np.empty(atlas[1] * atlas[0] * 4, dtype=np.uint8)
        self.program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.program["u_tile"].value = float(self.tile)
        self._view_block = np.zeros((MAX_VIEWS, _SLOTS, 4), dtype=np.float32)
        self._vbo = self._ibo = self._vao = None
        self.radius = 0.0
        self.n_parts = 0
        ctx.enable(moderngl.DEPTH_TEST)
        # Image y points down, so NDC y is flipped and outward (CCW) faces appear clockwise.
        ctx.front_face = "cw"
        self._moderngl = moderngl
        self._cull = False
        for plane in range(4):
            ctx.enable_direct(0x3000 + plane)  # GL_CLIP_DISTANCE0 + plane (not wrapped by moderngl)

    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, part_ids: np.ndarray,
                 closed: bool = False) -> None:
        """Upload a mesh: vertices (V, 3), faces (F, 3) int, part index per face (F,) int.

        `closed=True` promises closed surfaces wound counter-clockwise seen from outside (as
        `data_tools.meshes` builds them): back faces are then culled, ~25 % faster at 128 px.
        Leave it False for imported meshes, whose winding is often inconsistent.
        """
        vertices = np.asarray(vertices, dtype=np.float32)
        faces = np.asarray(faces)
        part_ids = np.asarray(part_ids)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"need vertices (V, 3) and faces (F, 3), got {vertices.shape} and {faces.shape}")
        if len(faces) == 0:
            raise ValueError("the mesh has no faces")
        if part_ids.shape != (len(faces),):
            raise ValueError(f"part_ids must have shape ({len(faces)},), got {part_ids.shape}")
        if part_ids.min() < 0 or part_ids.max() >= MAX_PARTS:
            raise ValueError(f"part ids must be in 0..{MAX_PARTS - 1}, got {part_ids.min()}..{part_ids.max()}")
        data, indices = flat_vertex_arrays(vertices, faces, part_ids)
        if self._vao is not None:
            self._vao.release()
            self._vbo.release()
            self._ibo.release()
        self._vbo = self.ctx.buffer(data.tobytes())
        self._ibo = self.ctx.buffer(indices.tobytes())
        self._vao = self.ctx.vertex_array(
            self.program, [(self._vbo, "3f 3f 1f", "in_position", "in_normal", "in_part")],
            index_buffer=self._ibo, index_element_size=4,
        )
        self.radius = float(np.linalg.norm(vertices, axis=1).max())
        self.n_parts = int(part_ids.max()) + 1
        self.set_materials(np.full((self.n_parts, 3), 0.6))  # grey until set_materials
        self._cull = bool(closed)

    def set_materials(self, colours: np.ndarray, response: np.ndarray | None = None) -> None:
        """Per-part colours (P, 3) in [0, 1] and optional (specular strength, shininess,
        emission) (P, 3); the default is a mild highlight without emission."""
        colours = np.asarray(colours, dtype=np.float32).reshape(-1, 3)
        if len(colours) < self.n_parts or len(colours) > MAX_PARTS:
            raise ValueError(f"need one colour per part ({self.n_parts}), got {len(colours)}")
        block = np.zeros((MAX_PARTS, 3), dtype=np.float32)
        block[: len(colours)] = colours
        self.program["u_colour"].write(block.tobytes())
        material = np.zeros((MAX_PARTS, 3), dtype=np.float32)
        material[:, :2] = (0.3, 16.0)
        if response is not None:
            response = np.asarray(response, dtype=np.float32).reshape(-1, 3)
            material[: len(response)] = response
        self.program["u_material"].write(material.tobytes())

    def _pack_views(self, rotations, distance, px, py, focal_px, light_dir, light_intensity,
                    ambient, specular_scale, colour_gain) -> int:
        n = len(rotations)
        block = self._view_block
        block[:n, 0:3, 0:3] = rotations
        k = self.supersample
        block[:n, 3] = np.stack([focal_px * k, px * k, py * k, distance], axis=1)
        margin = 1.05 * self.radius + 1e-3
        near = np.maximum(distance - margin, 0.02 * distance)
        block[:n, 4, 0] = near
        block[:n, 4, 1] = distance + margin
        grid_x = atlas_grid(n)[0]
        block[:n, 4, 2] = np.arange(n) % grid_x
        block[:n, 4, 3] = np.arange(n) // grid_x
        block[:n, 5, 0:3] = light_dir
        block[:n, 5, 3] = light_intensity
        block[:n, 6, 0] = ambient
        block[:n, 6, 1] = specular_scale
        block[:n, 7, 0:3] = colour_gain
        self.program["u_view"].write(block.tobytes())
        return n

    def render_batch(self, azimuth, elevation, theta, distance, px, py, focal_px,
                     light_dir=(0.3, 0.5, 1.0), light_intensity=0.8, ambient=0.35,
                     specular_scale=1.0, colour_gain=(1.0, 1.0, 1.0), colours=None, response=None):
        """Render N views of the current mesh.

        Angles in degrees (PASCAL3D+), distance in object units, px/py/focal_px in output pixels
        (focal_px = focal * viewport). Lighting: `light_dir` (N, 3) or (3,) toward the light in
        the camera frame (x right, y up, z toward the viewer), intensity and ambient (N,) or
        scalars, `colour_gain` (N, 3) multiplies the part colours. All arguments broadcast to N.
        `colours` / `response` (per part, see `set_materials`) replace the current materials.

        Returns:
            rgb (N, size, size, 3) uint8, the object over black (colour premultiplied by
            coverage), and alpha (N, size, size) uint8, the anti-aliased coverage (255 = object).
        """
        if self._vao is None:
            raise ValueError("call set_mesh before render_batch")
        if colours is not None:
            self.set_materials(colours, response)
        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (
            azimuth, elevation, theta, distance, px, py, focal_px, light_intensity, ambient,
            specular_scale)))
        n = arrays[0].size
        scalars = [a.reshape(n) for a in arrays]
        light_dir = np.broadcast_to(np.asarray(light_dir, dtype=np.float64), (n, 3))
        colour_gain = np.broadcast_to(np.asarray(colour_gain, dtype=np.float64), (n, 3))
        rotations = viewpoint_to_rotation(*scalars[:3])
        if np.any(scalars[3] <= self.radius):
            raise ValueError(f"distance must exceed the mesh radius {self.radius:.3f}; "
                             f"got min {scalars[3].min():.3f}")
        rgb = np.empty((n, self.size, self.size, 3), dtype=np.uint8)
        alpha = np.empty((n, self.size, self.size), dtype=np.uint8)
        for start in range(0, n, self.max_views):
            part = slice(start, min(n, start + self.max_views))
            count = self._pack_views(rotations[part], *(s[part] for s in scalars[3:7]),
                                     light_dir[part], scalars[7][part], scalars[8][part],
                                     scalars[9][part], colour_gain[part])
            tiles = self._draw(count)
            rgb[part] = tiles[..., :3]
            alpha[part] = tiles[..., 3]
        return rgb, alpha

    def _draw(self, count: int) -> np.ndarray:
        """Draw `count` packed views into a (grid_x, grid_y)-tile corner of the atlas and read
        it back as (count, size, size, 4) uint8 (averaged down when supersampling)."""
        grid_x, grid_y = atlas_grid(count)
        t = self.tile
        viewport = (0, 0, grid_x * t, grid_y * t)
        self.program["u_grid"].value = (float(grid_x), float(grid_y))
        (self.ctx.enable if self._cull else self.ctx.disable)(self._moderngl.CULL_FACE)
        self._draw_fbo.use()
        self._draw_fbo.viewport = viewport
        self._draw_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0, viewport=viewport)
        self._vao.render(instances=count)
        if self._read_fbo is not self._draw_fbo:
            self.ctx.copy_framebuffer(self._read_fbo, self._draw_fbo)
        pixels = self._atlas[: grid_x * grid_y * t * t * 4]
        self._read_fbo.read_into(pixels, viewport=viewport, components=4, alignment=1)
        atlas = pixels.reshape(grid_y * t, grid_x * t, 4)
        if self.supersample > 1:
            import cv2

            atlas = cv2.resize(atlas, (grid_x * self.size, grid_y * self.size),
                               interpolation=cv2.INTER_AREA)
        s = self.size
        tiles = atlas.reshape(grid_y, s, grid_x, s, 4).transpose(0, 2, 1, 3, 4)
        return tiles.reshape(grid_y * grid_x, s, s, 4)[:count]

    def render(self, azimuth, elevation, theta, distance, px, py, focal_px, **lighting):
        """One view: rgb (size, size, 3) uint8 and alpha (size, size) uint8 (see `render_batch`)."""
        rgb, alpha = self.render_batch(azimuth, elevation, theta, distance, px, py, focal_px,
                                       **lighting)
        return rgb[0], alpha[0]

    def release(self) -> None:
        """Free the GL objects and the context."""
        self.ctx.release()


__all__ = ["EGL_HELP", "MAX_PARTS", "MAX_VIEWS", "Renderer", "create_context", "flat_vertex_arrays"]
