/**
 * Which random streams a training step draws from. Every in-shader draw is a function of
 * (seed, stream, element), so two uses of one stream would see the same numbers: a forward pass
 * in training mode needs one stream per hidden layer (dropout), augmentation and the MixUp
 * gamma one each, and no two of them may share one, within a step or across steps.
 *
 * Layout of a step's streams, W = max(8, layers) (8 is the historical packing: models of up to
 * 8 hidden layers keep the stream numbers, hence the bits, they always had):
 *
 *   forwardU 0 .. | forwardX W .. | adversary 2W .. | teacher 3W | augment 4W-2 | mixup 4W-1
 *
 * and step k starts at k * 4W. The teacher runs in eval mode and draws nothing (width 0); its
 * number is only passed along.
 */
import { ScnymError } from "../util/errors.ts";

/** The named blocks of a step's streams. */
export type StreamBlock = "forwardU" | "forwardX" | "adversary" | "teacher" | "augment" | "mixup";

/** Where a block starts within a step and how many streams it uses. */
export interface BlockLayout {
  offset: number;
  width: number;
}

const MAX_STREAM = 0xffffffff;

/** Allocates per-step stream numbers to named blocks, checked never to overlap. */
export class RandomStreams {
  /**
   * A layout and its stride (streams per step). Throws a ScnymError naming both blocks when two
   * blocks overlap or one does not fit in the stride.
   */
  constructor(
    readonly layout: Readonly<Record<StreamBlock, BlockLayout>>,
    readonly stride: number,
  ) {
    const used = Object.entries(layout).filter(([, b]) => b.width > 0) as [string, BlockLayout][];
    for (const [name, b] of used) {
      if (!Number.isInteger(b.offset) || b.offset < 0 || b.offset + b.width > stride) {
        throw new ScnymError(
          `random streams: block ${name} [${b.offset}, ${b.offset + b.width}) does not fit in a ` +
            `step of ${stride} streams`,
        );
      }
    }
    for (const [i, [a, ba]] of used.entries()) {
      for (const [c, bc] of used.slice(i + 1)) {
        if (ba.offset < bc.offset + bc.width && bc.offset < ba.offset + ba.width) {
          throw new ScnymError(
            `random streams: blocks ${a} [${ba.offset}, ${ba.offset + ba.width}) and ${c} ` +
              `[${bc.offset}, ${bc.offset + bc.width}) overlap`,
          );
        }
      }
    }
  }

  /** The layout for a model of `layers` hidden layers (see the module comment). */
  static forModel(layers: number): RandomStreams {
    if (!Number.isInteger(layers) || layers < 1) {
      throw new ScnymError(`random streams: ${layers} hidden layers, expected an integer >= 1`);
    }
    const w = Math.max(8, layers);
    const pass = (k: number): BlockLayout => ({ offset: k * w, width: layers });
    return new RandomStreams({
      forwardU: pass(0),
      forwardX: pass(1),
      adversary: pass(2),
      teacher: { offset: 3 * w, width: 0 },
      augment: { offset: 4 * w - 2, width: 1 },
      mixup: { offset: 4 * w - 1, width: 1 },
    }, 4 * w);
  }

  /** The first stream of `block` in step `step` (0-based). */
  of(step: number, block: StreamBlock): number {
    const s = step * this.stride + this.layout[block].offset;
    if (!Number.isInteger(step) || step < 0 || s + this.stride > MAX_STREAM) {
      throw new ScnymError(`random streams: step ${step} is beyond the u32 stream numbers`);
    }
    return s;
  }
}
