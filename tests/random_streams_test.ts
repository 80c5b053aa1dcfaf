/**
 * The step's random-stream allocator: the historical numbers for models of up to 8 hidden
 * layers (so seeded runs keep their bits), no stream used twice for deeper models, and a clear
 * error for a layout whose blocks overlap.
 */
import assert from "node:assert/strict";
import { RandomStreams, type StreamBlock } from "../scnym/random_streams.ts";
import { ScnymError } from "../util/errors.ts";

const BLOCKS: StreamBlock[] = ["forwardU", "forwardX", "adversary", "teacher", "augment", "mixup"];

/** Every stream a step draws from: `width` consecutive ones per block. */
function drawn(streams: RandomStreams, step: number): number[] {
  return BLOCKS.flatMap((b) =>
    Array.from({ length: streams.layout[b].width }, (_, i) => streams.of(step, b) + i)
  );
}

Deno.test("models of up to 8 layers keep the hand-packed stream numbers", () => {
  for (let layers = 1; layers <= 8; layers++) {
    const streams = RandomStreams.forModel(layers);
    for (const step of [0, 1, 7, 1000]) {
      // The packing before the allocator: s = step * 32, forward mode k at s + 8k (U, X,
      // adversary, teacher), augmentation at s + 30, the MixUp gamma at s + 31.
      const s = step * 32;
      assert.deepEqual(
        BLOCKS.map((b) => streams.of(step, b)),
        [s, s + 8, s + 16, s + 24, s + 30, s + 31],
        `${layers} layers, step ${step}`,
      );
    }
  }
});

Deno.test("deep models get wider blocks: no stream is drawn twice within or across steps", () => {
  for (const layers of [1, 8, 9, 20, 33]) {
    const streams = RandomStreams.forModel(layers);
    const all = [0, 1, 2, 3].flatMap((step) => drawn(streams, step));
    assert.equal(new Set(all).size, all.length, `${layers} layers`);
    assert.equal(all.length, 4 * (3 * layers + 2));
  }
});

Deno.test("an overlapping layout, like the old packing with 9 layers, is refused", () => {
  const pass = (k: number) => ({ offset: 8 * k, width: 9 });
  assert.throws(
    () =>
      new RandomStreams({
        forwardU: pass(0),
        forwardX: pass(1),
        adversary: pass(2),
        teacher: { offset: 24, width: 0 },
        augment: { offset: 30, width: 1 },
        mixup: { offset: 31, width: 1 },
      }, 32),
    (e) =>
      e instanceof ScnymError && /forwardU \[0, 9\) and forwardX \[8, 17\) overlap/.test(e.message),
  );
  assert.throws(
    () => RandomStreams.forModel(0),
    (e) => e instanceof ScnymError && /0 hidden layers/.test(e.message),
  );
  assert.throws(
    () => RandomStreams.forModel(2).of(2 ** 28, "mixup"),
    (e) => e instanceof ScnymError && /beyond the u32 stream numbers/.test(e.message),
  );
});
