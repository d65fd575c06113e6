// Runs web/src/preprocess.js cropToSquare on cases read as JSON from stdin (tests/test_web_page.py):
// [{width, height, data: base64 RGB, box, margin, mode, size}] -> [{data: base64 crop} | {error}].
import { readFileSync } from "node:fs";
import { cropToSquare } from "../web/src/preprocess.js";

const cases = JSON.parse(readFileSync(0, "utf8"));
const results = cases.map(({ width, height, data, box, margin, mode, size }) => {
  try {
    const image = { width, height, data: Uint8Array.from(Buffer.from(data, "base64")) };
    return { data: Buffer.from(cropToSquare(image, box, margin, mode, size).data).toString("base64") };
  } catch (error) {
    return { error: error.message };
  }
});
process.stdout.write(JSON.stringify(results));
