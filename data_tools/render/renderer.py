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

Shading, per pixel in the camera frame: albedo = the part's colour times its texture
(`set_materials(textures=...)`, one layer per part, projected in the object frame along the
normal's dominant axis, so any mesh gets textures without UVs); light = a hemisphere sky light (ground colour below, sky colour
above) darkened by a ground-occlusion term, plus a coloured sun (Lambert + Blinn-Phong) and a
fill light; plus a Fresnel-weighted reflection of a sky / horizon / ground environment, which
is what makes clear-coated paint, glass and chrome read as glossy. Normals are the faces'
(flat) or, with `set_mesh(crease_deg=...)`, smoothed across faces of a part that meet at less
than that angle (round bodies and tyres). Faces are lit from both sides since imported meshes
are not always consistently wound. Parts have a colour and (specular strength, shininess,
emission, reflectivity). With the defaults (white sky and ground, no sun colour, no fill, no
environment, no occlusion) ambient 1 and intensity 0 reproduce the part colours exactly.

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
#: Parts per mesh (uniform arrays of colours and material terms, and texture layers).
MAX_PARTS = 64
#: Per-view vec4 slots in the view uniform array (see `_pack_views`).
_SLOTS = 13
#: Side of the per-part albedo textures (`set_materials(textures=...)` resizes to it).
TEXTURE_SIDE = 128

_VERTEX_SHADER = f"""
#version 330
#define MAX_VIEWS {MAX_VIEWS}
uniform vec4 u_view[MAX_VIEWS * {_SLOTS}];
uniform vec2 u_grid;          // tiles per atlas row, per atlas column
uniform float u_tile;         // tile side in pixels
in vec3 in_position;
in vec3 in_normal;
in float in_part;
out vec3 v_cam;               // camera-frame position
out vec3 v_normal;            // camera-frame normal
out vec3 v_object;            // object-frame position (texture coordinates)
out vec3 v_object_normal;
flat out int v_part;
flat out int v_view;          // the fragment shader reads the view's lighting itself: few
                              // varyings keep llvmpipe's per-triangle setup cheap
out float gl_ClipDistance[4];

void main() {{
    int base = gl_InstanceID * {_SLOTS};
    mat3 rows = mat3(u_view[base].xyz, u_view[base + 1].xyz, u_view[base + 2].xyz);
    vec4 cam = u_view[base + 3];     // focal_px (x), px, py, distance
    vec4 clip = u_view[base + 4];    // near, far, tile column, tile row
    vec4 shade = u_view[base + 6];   // ambient, specular scale, focal_px (y), environment
    vec3 p = in_position * rows;     // row vector times mat3(rows as columns) = R @ X
    float z_cam = p.z - cam.w;
    float w = -z_cam;
    // Tile-local clip coordinates of the PASCAL3D+ camera (image y down -> NDC y = -1 at the top).
    float x_local = 2.0 * cam.x / u_tile * p.x + (2.0 * cam.y / u_tile - 1.0) * w;
    float y_local = -2.0 * shade.z / u_tile * p.y + (2.0 * cam.z / u_tile - 1.0) * w;
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

    v_cam = vec3(p.xy, z_cam);
    v_normal = in_normal * rows;
    v_object = in_position;
    v_object_normal = in_normal;
    v_part = int(in_part + 0.5);
    v_view = gl_InstanceID;
}}
"""

# Per pixel: albedo = part colour x triplanar texture (object frame); light = hemisphere sky
# ambient x occlusion + sun (Lambert + Blinn-Phong) + fill; plus a Fresnel-weighted reflection
# of a sky / horizon / ground environment (what makes car paint and glass read as glossy).
_FRAGMENT_SHADER = f"""
#version 330
#define MAX_PARTS {MAX_PARTS}
#define MAX_VIEWS {MAX_VIEWS}
uniform vec4 u_view[MAX_VIEWS * {_SLOTS}];
uniform vec3 u_colour[MAX_PARTS];
uniform vec4 u_material[MAX_PARTS];   // specular strength, shininess, emission, reflectivity
uniform sampler2DArray u_textures;     // one albedo layer per part
uniform vec2 u_height;                 // object z of the mesh's bottom and its height
in vec3 v_cam;
in vec3 v_normal;
in vec3 v_object;
in vec3 v_object_normal;
flat in int v_part;
flat in int v_view;
out vec4 f_colour;
vec4 v_light;        // direction toward the sun (camera frame), intensity
vec4 v_shade;        // ambient, specular scale, environment strength, occlusion strength
vec3 v_gain, v_sun, v_sky, v_ground, v_fill_colour;
vec4 v_fill;         // direction toward the fill light, intensity
vec3 v_up;           // the object frame's +z (world up) in the camera frame

vec3 triplanar(vec3 q, vec3 n) {{
    // The projection along the normal's dominant axis (one texture fetch per pixel: blending
    // all three costs llvmpipe a third of its speed, and the seams are sub-pixel at 64 px).
    vec3 a = abs(n);
    float layer = float(v_part);
    vec2 uv;
    if (a.x >= a.y && a.x >= a.z) {{
        // side (x): columns along +y (mirrored on the -x side so text reads right), rows down z
        uv = vec2(n.x >= 0.0 ? q.y + 0.5 : 0.5 - q.y, 0.5 - q.z);
    }} else if (a.z >= a.y) {{
        uv = vec2(q.y + 0.5, q.x + 0.5);      // top and bottom
    }} else {{
        uv = vec2(n.y <= 0.0 ? q.x + 0.5 : 0.5 - q.x, 0.5 - q.z);   // front and rear
    }}
    return texture(u_textures, vec3(uv, layer)).rgb;
}}

vec3 environment(vec3 r) {{
    float h = dot(r, v_up);
    vec3 horizon_sky = mix(v_sky, vec3(1.0), 0.45);
    vec3 sky = mix(horizon_sky, v_sky, smoothstep(0.0, 0.5, h));
    vec3 ground = mix(v_ground * 1.3, v_ground * 0.6, smoothstep(0.0, -0.4, h));
    return h >= 0.0 ? sky : ground;
}}

void main() {{
    int base = v_view * {_SLOTS};
    v_light = u_view[base + 5];
    v_shade = vec4(u_view[base + 6].x, u_view[base + 6].y, u_view[base + 6].w, u_view[base + 8].w);
    v_gain = u_view[base + 7].xyz;
    v_sun = u_view[base + 8].xyz;
    v_sky = u_view[base + 9].xyz;
    v_ground = u_view[base + 10].xyz;
    v_fill = u_view[base + 11];
    v_fill_colour = u_view[base + 12].xyz;
    v_up = vec3(u_view[base].z, u_view[base + 1].z, u_view[base + 2].z);
    vec3 to_eye = normalize(-v_cam);
    vec3 n = normalize(v_normal);
    vec3 n_object = normalize(v_object_normal);
    if (dot(n, to_eye) < 0.0) {{ n = -n; n_object = -n_object; }}   // lit from both sides
    vec4 material = u_material[v_part];
    vec3 albedo = u_colour[v_part] * triplanar(v_object, n_object) * v_gain;
    float height = clamp((v_object.z - u_height.x) / max(u_height.y, 1e-6), 0.0, 1.0);
    float occlusion = 1.0 - v_shade.w * (1.0 - smoothstep(0.0, 0.45, height))
                      - 0.5 * v_shade.w * max(-n_object.z, 0.0);
    float up = dot(n, v_up);
    vec3 ambient = v_shade.x * mix(v_ground, v_sky, 0.5 + 0.5 * up) * occlusion;
    vec3 l = normalize(v_light.xyz);
    float diffuse = max(dot(n, l), 0.0);
    vec3 h = normalize(l + to_eye);
    float specular = material.x * v_shade.y * pow(max(dot(n, h), 0.0), material.y) * step(1e-6, diffuse);
    vec3 f = normalize(v_fill.xyz);
    float fill = v_fill.w * max(dot(n, f), 0.0);
    vec3 light = ambient + v_light.w * diffuse * v_sun + fill * v_fill_colour + material.z;
    float fresnel = material.w + (1.0 - material.w) * pow(1.0 - max(dot(n, to_eye), 0.0), 5.0);
    vec3 reflection = v_shade.z * min(material.w * 4.0, 1.0) * fresnel * environment(reflect(-to_eye, n));
    vec3 colour = albedo * light + v_light.w * specular * v_sun + reflection * occlusion;
    f_colour = vec4(clamp(colour, 0.0, 1.0), 1.0);
}}
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


def vertex_arrays(vertices: np.ndarray, faces: np.ndarray, part_ids: np.ndarray,
                  crease_deg: float = 0.0) -> np.ndarray:
    """Unindexed vertex data (3F, 7) float32: each face corner's position, normal and part id.

    crease_deg = 0 gives flat shading (every corner carries its face's normal). Above 0 each
    corner gets the area-weighted mean normal of the faces of its part around its vertex whose
    normals lie within `crease_deg` of its own face's: curved surfaces shade smoothly (round car
    bodies, tyres) while edges sharper than the crease stay crisp. Degenerate faces get a zero
    normal (ambient only).
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    part_ids = np.asarray(part_ids)
    corners = vertices[faces]  # (F, 3, 3)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).astype(np.float64)
    lengths = np.linalg.norm(cross, axis=1, keepdims=True)
    face_normals = np.divide(cross, lengths, out=np.zeros_like(cross), where=lengths > 0)
    n_faces = len(faces)
    corner_normals = np.repeat(face_normals, 3, axis=0)  # (3F, 3)
    if crease_deg > 0 and n_faces:
        vertex_of = faces.ravel()                       # corner -> vertex
        face_of = np.repeat(np.arange(n_faces), 3)      # corner -> face
        order = np.argsort(vertex_of, kind="stable")
        counts = np.bincount(vertex_of, minlength=len(vertices))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per_corner = counts[vertex_of]
        pair_corner = np.repeat(np.arange(len(vertex_of)), per_corner)
        offset = np.arange(len(pair_corner)) - np.repeat(np.cumsum(per_corner) - per_corner, per_corner)
        pair_face = face_of[order[starts[vertex_of[pair_corner]] + offset]]
        own = face_of[pair_corner]
        keep = ((np.einsum("ij,ij->i", face_normals[own], face_normals[pair_face])
                 >= np.cos(np.radians(crease_deg)) - 1e-9)
                & (part_ids[own] == part_ids[pair_face]))
        weighted = cross[pair_face] * keep[:, None]    # |cross| = 2 x area: area weighting
        summed = np.stack([np.bincount(pair_corner, weighted[:, k], minlength=len(vertex_of))
                           for k in range(3)], axis=1)
        norms = np.linalg.norm(summed, axis=1, keepdims=True)
        corner_normals = np.divide(summed, norms, out=corner_normals, where=norms > 0)
    data = np.empty((3 * n_faces, 7), dtype=np.float32)
    data[:, 0:3] = corners.reshape(-1, 3)
    data[:, 3:6] = corner_normals
    data[:, 6] = np.repeat(part_ids.astype(np.float32), 3)
    return data


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-D array (sorted) and each row's index among them: what
    `np.unique(rows, axis=0, return_inverse=True)` gives (up to row order, and with -0.0 equal
    to 0.0), ~10x faster, since a lexsort of the columns beats sorting rows as opaque bytes."""
    if len(rows) == 0:
        return rows[:0], np.zeros(0, dtype=np.int64)
    order = np.lexsort(rows.T[::-1])  # the first column is the primary key
    ordered = rows[order]
    starts = np.empty(len(rows), dtype=bool)
    starts[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=starts[1:])
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


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
        self.program["u_textures"].value = 0
        self._textures = ctx.texture_array((TEXTURE_SIDE, TEXTURE_SIDE, MAX_PARTS), 3, dtype="f1")
        # Bilinear without mipmaps: a 128-texel layer spans about as many pixels of the
        # supersampled tile as it has texels, and building mipmaps per instance cost 1/5 of a build.
        self._textures.filter = (moderngl.LINEAR, moderngl.LINEAR)
        # Texture layers [0, _textured_layers) may hold something other than white; the rest
        # are white. Only the layers a mesh uses are uploaded (a 64-layer upload cost a build
        # 4 ms per instance).
        self._textures.write(np.full((MAX_PARTS, TEXTURE_SIDE, TEXTURE_SIDE, 3), 255, np.uint8).tobytes())
        self._textured_layers = 0
        self._pending_layers: np.ndarray | None = None
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
                 closed: bool = False, crease_deg: float = 0.0) -> None:
        """Upload a mesh: vertices (V, 3), faces (F, 3) int, part index per face (F,) int.

        `closed=True` promises closed surfaces wound counter-clockwise seen from outside (as
        `data_tools.meshes.mesh` builds them): back faces are then culled, ~25 % faster at 128 px.
        Leave it False for imported meshes, whose winding is often inconsistent.
        `crease_deg` > 0 shades curved surfaces smoothly (see `vertex_arrays`); 0 is flat.
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
        corners = vertex_arrays(vertices, faces, part_ids, crease_deg)
        # Corners with equal position, normal and part become one vertex: smooth surfaces then
        # share vertices (~6 faces each), which llvmpipe's vertex stage, the cost here, rewards.
        data, indices = unique_rows(corners)
        if self._vao is not None:
            self._vao.release()
            self._vbo.release()
            self._ibo.release()
        self._vbo = self.ctx.buffer(np.ascontiguousarray(data).tobytes())
        self._ibo = self.ctx.buffer(indices.astype(np.int32).reshape(-1).tobytes())
        self._vao = self.ctx.vertex_array(
            self.program, [(self._vbo, "3f 3f 1f", "in_position", "in_normal", "in_part")],
            index_buffer=self._ibo, index_element_size=4)
        self.radius = float(np.linalg.norm(vertices, axis=1).max())
        low, high = float(vertices[:, 2].min()), float(vertices[:, 2].max())
        self.program["u_height"].value = (low, high - low)
        self.n_parts = int(part_ids.max()) + 1
        self.set_materials(np.full((self.n_parts, 3), 0.6))  # grey until set_materials
        self._cull = bool(closed)

    def set_materials(self, colours: np.ndarray, response: np.ndarray | None = None,
                      textures: np.ndarray | None = None) -> None:
        """Per-part colours (P, 3) in [0, 1], optional (specular strength, shininess, emission
        [, reflectivity]) (P, 3 or 4), and optional albedo textures (P, T, T, 3) uint8 that
        multiply the colours (white = the plain colour; see the fragment shader's triplanar
        mapping). The default is a mild highlight, no emission, no reflection, no texture."""
        colours = np.asarray(colours, dtype=np.float32).reshape(-1, 3)
        if len(colours) < self.n_parts or len(colours) > MAX_PARTS:
            raise ValueError(f"need one colour per part ({self.n_parts}), got {len(colours)}")
        block = np.zeros((MAX_PARTS, 3), dtype=np.float32)
        block[: len(colours)] = colours
        self.program["u_colour"].write(block.tobytes())
        material = np.zeros((MAX_PARTS, 4), dtype=np.float32)
        material[:, :2] = (0.3, 16.0)
        if response is not None:
            response = np.asarray(response, dtype=np.float32)
            response = response.reshape(len(response), -1)
            if response.shape[1] not in (3, 4) or len(response) > MAX_PARTS:
                raise ValueError(f"response must be (P, 3) or (P, 4) with P <= {MAX_PARTS}, got {response.shape}")
            material[: len(response), : response.shape[1]] = response
        self.program["u_material"].write(material.tobytes())
        if textures is None:
            self._pending_layers = np.zeros((0, TEXTURE_SIDE, TEXTURE_SIDE, 3), np.uint8)
            return
        import cv2

        textures = np.array(textures)  # a copy: the upload waits for the next draw
        if textures.ndim != 4 or textures.shape[-1] != 3 or textures.dtype != np.uint8 \
                or len(textures) > MAX_PARTS:
            raise ValueError(f"textures must be (P, T, T, 3) uint8 with P <= {MAX_PARTS}, "
                             f"got {textures.shape} {textures.dtype}")
        if textures.shape[1:3] != (TEXTURE_SIDE, TEXTURE_SIDE):
            textures = np.stack([cv2.resize(t, (TEXTURE_SIDE, TEXTURE_SIDE), interpolation=cv2.INTER_AREA)
                                 for t in textures])
        self._pending_layers = textures

    def _upload_layers(self) -> None:
        """Make layers [0, len(pending)) the pending textures and every later layer white,
        uploading only the layers that may change. It runs at the draw, so that `set_mesh`'s
        reset to white costs nothing when `set_materials` replaces it before the draw."""
        textures, self._pending_layers = self._pending_layers, None
        count = max(len(textures), self._textured_layers)
        if count == 0:
            return
        layers = np.full((count, TEXTURE_SIDE, TEXTURE_SIDE, 3), 255, np.uint8)
        layers[: len(textures)] = textures
        self._textures.write(layers.tobytes(), viewport=(0, 0, 0, TEXTURE_SIDE, TEXTURE_SIDE, count))
        self._textured_layers = len(textures)

    def _pack_views(self, rotations, distance, px, py, focal_px, focal_y, light_dir,
                    light_intensity, ambient, specular_scale, colour_gain, environment,
                    occlusion, sun_colour, sky_colour, ground_colour, fill_dir, fill_intensity,
                    fill_colour) -> int:
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
        block[:n, 6] = np.stack([ambient, specular_scale, focal_y * k, environment], axis=1)
        block[:n, 7, 0:3] = colour_gain
        block[:n, 8, 0:3] = sun_colour
        block[:n, 8, 3] = occlusion
        block[:n, 9, 0:3] = sky_colour
        block[:n, 10, 0:3] = ground_colour
        block[:n, 11, 0:3] = fill_dir
        block[:n, 11, 3] = fill_intensity
        block[:n, 12, 0:3] = fill_colour
        self.program["u_view"].write(block.tobytes())
        return n

    def render_batch(self, azimuth, elevation, theta, distance, px, py, focal_px,
                     light_dir=(0.3, 0.5, 1.0), light_intensity=0.8, ambient=0.35,
                     specular_scale=1.0, colour_gain=(1.0, 1.0, 1.0), colours=None, response=None,
                     focal_y=None, environment=0.0, occlusion=0.0, sun_colour=(1.0, 1.0, 1.0),
                     sky_colour=(1.0, 1.0, 1.0), ground_colour=(1.0, 1.0, 1.0),
                     fill_dir=(0.0, 0.0, 1.0), fill_intensity=0.0, fill_colour=(1.0, 1.0, 1.0)):
        """Render N views of the current mesh.

        Angles in degrees (PASCAL3D+), distance in object units, px/py/focal_px in output pixels
        (focal_px = focal * viewport; `focal_y` a different vertical focal for anisotropic crops,
        default focal_px). Lighting, all broadcast to N: `light_dir` (N, 3) toward the sun in the
        camera frame (x right, y up, z toward the viewer) with `light_intensity` and
        `sun_colour`; `ambient` scales a hemisphere light that blends `ground_colour` (facing
        down) into `sky_colour` (facing up); a fill light (`fill_dir`, `fill_intensity`,
        `fill_colour`); `environment` scales the Fresnel reflection of that sky and ground (0 =
        none); `occlusion` darkens low and downward-facing surfaces (ground contact, 0 = none);
        `colour_gain` (N, 3) multiplies the albedo. `colours` / `response` (per part, see
        `set_materials`) replace the current materials.

        Returns:
            rgb (N, size, size, 3) uint8, the object over black (colour premultiplied by
            coverage), and alpha (N, size, size) uint8, the anti-aliased coverage (255 = object).
        """
        if self._vao is None:
            raise ValueError("call set_mesh before render_batch")
        if colours is not None:
            self.set_materials(colours, response)
        focal_y = focal_px if focal_y is None else focal_y
        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (
            azimuth, elevation, theta, distance, px, py, focal_px, focal_y, light_intensity, ambient,
            specular_scale, environment, occlusion, fill_intensity)))
        n = arrays[0].size
        scalars = [a.reshape(n) for a in arrays]
        (azimuth, elevation, theta, distance, px, py, focal_px, focal_y, light_intensity, ambient,
         specular_scale, environment, occlusion, fill_intensity) = scalars
        vectors = [np.broadcast_to(np.asarray(v, dtype=np.float64), (n, 3)) for v in (
            light_dir, colour_gain, sun_colour, sky_colour, ground_colour, fill_dir, fill_colour)]
        light_dir, colour_gain, sun_colour, sky_colour, ground_colour, fill_dir, fill_colour = vectors
        rotations = viewpoint_to_rotation(azimuth, elevation, theta)
        if np.any(distance <= self.radius):
            raise ValueError(f"distance must exceed the mesh radius {self.radius:.3f}; "
                             f"got min {distance.min():.3f}")
        rgb = np.empty((n, self.size, self.size, 3), dtype=np.uint8)
        alpha = np.empty((n, self.size, self.size), dtype=np.uint8)
        for start in range(0, n, self.max_views):
            part = slice(start, min(n, start + self.max_views))
            count = self._pack_views(
                rotations[part], distance[part], px[part], py[part], focal_px[part], focal_y[part],
                light_dir[part], light_intensity[part], ambient[part], specular_scale[part],
                colour_gain[part], environment[part], occlusion[part], sun_colour[part],
                sky_colour[part], ground_colour[part], fill_dir[part], fill_intensity[part],
                fill_colour[part])
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
        if self._pending_layers is not None:
            self._upload_layers()
        self._textures.use(location=0)
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


__all__ = ["EGL_HELP", "MAX_PARTS", "MAX_VIEWS", "Renderer", "TEXTURE_SIDE", "create_context",
           "unique_rows", "vertex_arrays"]
