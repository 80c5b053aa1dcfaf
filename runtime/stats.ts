/** Counters for tests and benchmarks ("a step allocates nothing after warm-up"). */
export interface RuntimeStats {
  /** GPU buffers created (pool misses). */
  buffersCreated: number;
  /** Bytes held by the pool, in use or free. */
  bytesHeld: number;
  dispatches: number;
  /** Command buffers submitted (one per flush that had work). */
  submissions: number;
  /** Host waits for GPU data: one per `read` or `readAll`, however many tensors it reads. */
  readbacks: number;
  pipelinesCompiled: number;
}

/** All counters at zero. */
export function emptyStats(): RuntimeStats {
  return {
    buffersCreated: 0,
    bytesHeld: 0,
    dispatches: 0,
    submissions: 0,
    readbacks: 0,
    pipelinesCompiled: 0,
  };
}
