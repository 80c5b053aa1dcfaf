import assert from "node:assert/strict";
import { argmaxRow, argmaxRows } from "../util/argmax.ts";

Deno.test("argmaxRows: the first maximum of each row, ragged shapes included", () => {
  // 3 x 4 with ties (row 0), a maximum in the last column (row 1) and a single negative row (2).
  const x = [1, 3, 3, 0, 0, 1, 2, 5, -4, -1, -1, -2];
  assert.deepEqual([...argmaxRows(x, 3, 4)], [1, 3, 1]);
  assert.equal(argmaxRow([7], 0, 1), 0);
  assert.deepEqual([...argmaxRows(new Float32Array(6).fill(0.5), 2, 3)], [0, 0]);
  assert.deepEqual([...argmaxRows([], 0, 5)], []);
});
