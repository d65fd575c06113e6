// The pose overlay of `posenet-mlvae predict --overlay` (data_tools/image/draw.py draw_pose): the
// object's x/y/z axes and a 3-D box of the category's typical extent, projected with the
// PASCAL3D+ camera of data_tools/geometry.py and fitted into the object's 2-D box.

const DRAW_DISTANCE = 5.0; // data_tools.image.draw.DRAW_DISTANCE
export const DEFAULT_EXTENT = [0.577, 0.577, 0.577];
const AXIS_COLORS = ["rgb(255, 0, 0)", "rgb(0, 255, 0)", "rgb(0, 0, 255)"]; // x, y, z
const BOX_COLOR = "rgb(255, 255, 0)";
// The 12 edges of a box whose corners are numbered by bits (x, y, z) = (i & 1, i & 2, i & 4).
const BOX_EDGES = [];
for (let a = 0; a < 8; a++) {
  for (let b = a + 1; b < 8; b++) {
    const diff = a ^ b;
    if (diff === 1 || diff === 2 || diff === 4) BOX_EDGES.push([a, b]);
  }
}

const radians = (degrees) => (degrees * Math.PI) / 180;

/** Object-to-camera rotation R = Rz(theta) Rx(e - 90) Rz(-a) (geometry.viewpoint_to_rotation). */
export function viewpointToRotation(azimuth, elevation, theta) {
  const [a, e, t] = [azimuth, elevation, theta].map(radians);
  const [sa, ca, se, ce, st, ct] = [Math.sin(a), Math.cos(a), Math.sin(e), Math.cos(e), Math.sin(t), Math.cos(t)];
  return [
    [ca * ct + sa * se * st, sa * ct - ca * se * st, -ce * st],
    [ca * st - sa * se * ct, sa * st + ca * se * ct, ce * ct],
    [sa * ce, -ca * ce, se],
  ];
}

/** Pixel (x, y) of object-frame points (geometry.project_points, focal 1). */
export function projectPoints(points, azimuth, elevation, theta, distance, px, py, viewport) {
  const R = viewpointToRotation(azimuth, elevation, theta);
  const [a, e] = [azimuth, elevation].map(radians);
  const C = [distance * Math.cos(e) * Math.sin(a), -distance * Math.cos(e) * Math.cos(a), distance * Math.sin(e)];
  return points.map((point) => {
    const p = [point[0] - C[0], point[1] - C[1], point[2] - C[2]];
    const camera = R.map((row) => row[0] * p[0] + row[1] * p[1] + row[2] * p[2]);
    const depth = -camera[2];
    return [viewport * camera[0] / depth + px, -(viewport * camera[1] / depth) + py];
  });
}

/** Corners (8) and axes [origin, x, y, z] (4) in pixels, fitted into `box` (draw.pose_outline). */
export function poseOutline(azimuth, elevation, theta, box, extent = DEFAULT_EXTENT) {
  const [x1, y1, x2, y2] = box;
  const px = (x1 + x2) / 2;
  const py = (y1 + y2) / 2;
  const corners = [];
  for (let i = 0; i < 8; i++) {
    corners.push([0, 1, 2].map((k) => (((i >> k) & 1) * 2 - 1) * extent[k] / 2));
  }
  const axisLength = 0.5 * Math.max(...extent);
  const axes = [[0, 0, 0], [axisLength, 0, 0], [0, axisLength, 0], [0, 0, axisLength]];
  const points = [...corners, ...axes];
  const unit = projectPoints(points, azimuth, elevation, theta, DRAW_DISTANCE, px, py, 1.0).slice(0, 8);
  const span = [0, 1].map((k) => Math.max(
    Math.max(...unit.map((p) => p[k])) - Math.min(...unit.map((p) => p[k])), 1e-9));
  const viewport = Math.min((x2 - x1) / span[0], (y2 - y1) / span[1]);
  const pixels = projectPoints(points, azimuth, elevation, theta, DRAW_DISTANCE, px, py, viewport);
  return { corners: pixels.slice(0, 8), axes: pixels.slice(8) };
}

function line(context, from, to, color, width) {
  context.strokeStyle = color;
  context.lineWidth = width;
  context.beginPath();
  context.moveTo(from[0], from[1]);
  context.lineTo(to[0], to[1]);
  context.stroke();
}

/**
 * Draw the predicted pose into a 2-D canvas context whose pixels are the image's pixels.
 * box: the object box (null = whole image); pixelScale: image pixels per screen pixel, so the
 * lines keep their on-screen width on large images.
 */
export function drawPose(context, prediction, box, extent, pixelScale) {
  const { corners, axes } = poseOutline(prediction.azimuth, prediction.elevation, prediction.theta, box, extent);
  const width = 2 * pixelScale;
  context.save();
  context.lineCap = "round";
  for (const [a, b] of BOX_EDGES) line(context, corners[a], corners[b], BOX_COLOR, width);
  for (let k = 0; k < 3; k++) line(context, axes[0], axes[k + 1], AXIS_COLORS[k], width * 1.5);
  context.restore();
}

/** The object box the user drew, dashed, so the crop that was fed is visible. */
export function drawBox(context, box, pixelScale) {
  const [x1, y1, x2, y2] = box;
  context.save();
  context.lineWidth = 1.5 * pixelScale;
  context.setLineDash([6 * pixelScale, 4 * pixelScale]);
  context.strokeStyle = "rgb(255, 255, 255)";
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  context.lineDashOffset = 5 * pixelScale;
  context.strokeStyle = "rgb(0, 0, 0)";
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  context.restore();
}
