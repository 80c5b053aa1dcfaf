/**
 * Counter-based random numbers for shaders: every value is a pure function of
 * (seed, stream, counter), so kernels need no generator state and no host-uploaded masks, and a
 * backward pass can regenerate exactly the dropout mask its forward pass drew.
 *
 * The core is Chris Wellons' "triple32" integer hash (a bijection on u32 with very low bias),
 * chained: key = H(H(seed ^ s0) ^ stream), value = H(key ^ H(counter ^ s1)). Each counter passes
 * through two full hashes, so neighbouring counters, streams and seeds give unrelated values.
 * Samplers that need several draws per value (normal, gamma, beta) start a small per-value
 * sequence keyed by rng_u32(seed, stream, counter) and take draws k = 0, 1, ... from it.
 *
 * WGSL API (prepend `RNG_WGSL` to a kernel's `code`):
 *   rng_u32(seed, stream, counter) -> u32
 *   rng_uniform(seed, stream, counter) -> f32 in [0, 1), 24 bits
 *   rng_normal(seed, stream, counter) -> f32 (Box-Muller)
 *   rng_gamma(seed, stream, counter, shape) -> f32 (Marsaglia-Tsang)
 *   rng_beta(seed, stream, counter, a, b) -> f32
 * and, for hot loops, the same with the (seed, stream) half of the hash done once on the host:
 *   rng_key(seed, stream) -> u32 (host twin `rngKey`), rng_u32_keyed(key, counter) -> u32,
 *   rng_uniform_keyed(key, counter) -> f32. Passing `rngKey(seed, stream)` as a uniform halves
 *   the per-element hashing (dropout measured ~2x faster on llvmpipe than rehashing the key).
 *
 * There is no sampling op: dropout, augmentation and MixUp call these functions in-shader, and
 * tests/random_test.ts runs them through a test-only kernel against the host twins below.
 */
/** Gamma rejection loops give up after this many tries (each accepts with p > 0.95). */
const GAMMA_MAX_TRIES = 64;

/** The WGSL random-number functions; prepend to a kernel's `code` (names start with `rng_`). */
export const RNG_WGSL = `
const RNG_SEED_SALT: u32 = 0x9e3779b9u;
const RNG_COUNTER_SALT: u32 = 0x85ebca6bu;
const RNG_DRAW_SALT: u32 = 0x68e31da4u;
const RNG_INV_2_24: f32 = 5.9604644775390625e-8;  // 2^-24

// triple32 (Wellons): a bijective 32-bit hash with near-ideal avalanche.
fn rng_mix(v: u32) -> u32 {
  var x = v;
  x ^= x >> 17u; x *= 0xed5ad4bbu;
  x ^= x >> 11u; x *= 0xac4c1b51u;
  x ^= x >> 15u; x *= 0x31848babu;
  x ^= x >> 14u;
  return x;
}

fn rng_key(seed: u32, stream: u32) -> u32 {
  return rng_mix(rng_mix(seed ^ RNG_SEED_SALT) ^ stream);
}

fn rng_u32_keyed(key: u32, counter: u32) -> u32 {
  return rng_mix(key ^ rng_mix(counter ^ RNG_COUNTER_SALT));
}

fn rng_u32(seed: u32, stream: u32, counter: u32) -> u32 {
  return rng_u32_keyed(rng_key(seed, stream), counter);
}

// The top 24 bits: exactly representable in f32, so [0, 1) never rounds up to 1.
fn rng_u32_to_uniform(v: u32) -> f32 { return f32(v >> 8u) * RNG_INV_2_24; }

fn rng_uniform_keyed(key: u32, counter: u32) -> f32 {
  return rng_u32_to_uniform(rng_u32_keyed(key, counter));
}

fn rng_uniform(seed: u32, stream: u32, counter: u32) -> f32 {
  return rng_uniform_keyed(rng_key(seed, stream), counter);
}

// A per-value sequence for samplers that need several draws.
struct RngState { key: u32, n: u32, }

fn rng_start_keyed(key: u32, counter: u32) -> RngState {
  return RngState(rng_u32_keyed(key, counter), 0u);
}

fn rng_next(s: ptr<function, RngState>) -> u32 {
  let v = rng_mix((*s).key ^ rng_mix((*s).n ^ RNG_DRAW_SALT));
  (*s).n = (*s).n + 1u;
  return v;
}

// In (0, 1]: safe to take the log of.
fn rng_next_open(s: ptr<function, RngState>) -> f32 {
  return (f32(rng_next(s) >> 8u) + 1.0) * RNG_INV_2_24;
}

fn rng_next_normal(s: ptr<function, RngState>) -> f32 {
  let u1 = rng_next_open(s);
  let u2 = rng_u32_to_uniform(rng_next(s));
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// log of a Gamma(shape, 1) draw. Logs keep small-shape draws (U^(1/shape) underflows f32 for
// shape << 1) usable by rng_beta.
fn rng_next_log_gamma(s: ptr<function, RngState>, shape: f32) -> f32 {
  var a = shape;
  var boost = 0.0;
  if (a < 1.0) {
    boost = log(rng_next_open(s)) / a;  // Gamma(a) = Gamma(a + 1) * U^(1/a)
    a = a + 1.0;
  }
  let d = a - 1.0 / 3.0;
  let c = 1.0 / sqrt(9.0 * d);
  for (var tries = 0u; tries < ${GAMMA_MAX_TRIES}u; tries++) {
    let x = rng_next_normal(s);
    let t = 1.0 + c * x;
    if (t <= 0.0) { continue; }
    let v = t * t * t;
    let u = rng_next_open(s);
    let x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) {
      return log(d) + log(v) + boost;
    }
  }
  return log(d) + boost;  // unreachable in practice (p < 1e-80); d is the mode's neighbourhood
}

fn rng_normal(seed: u32, stream: u32, counter: u32) -> f32 {
  var s = rng_start_keyed(rng_key(seed, stream), counter);
  return rng_next_normal(&s);
}

fn rng_gamma(seed: u32, stream: u32, counter: u32, shape: f32) -> f32 {
  var s = rng_start_keyed(rng_key(seed, stream), counter);
  return exp(rng_next_log_gamma(&s, shape));
}

// x / (x + y) = 1 / (1 + y/x), computed from the logs so that tiny draws cannot give 0/0.
fn rng_beta(seed: u32, stream: u32, counter: u32, a: f32, b: f32) -> f32 {
  var s = rng_start_keyed(rng_key(seed, stream), counter);
  let lx = rng_next_log_gamma(&s, a);
  let ly = rng_next_log_gamma(&s, b);
  return 1.0 / (1.0 + exp(clamp(ly - lx, -80.0, 80.0)));
}
`;

// ------------------------------------------------------------------ bit-exact CPU twins

const SEED_SALT = 0x9e3779b9;
const COUNTER_SALT = 0x85ebca6b;
const DRAW_SALT = 0x68e31da4;
const INV_2_24 = 2 ** -24;

/** triple32 on the host, bit-identical to the shader's `rng_mix`. */
export function rngMix(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 17;
  x = Math.imul(x, 0xed5ad4bb);
  x ^= x >>> 11;
  x = Math.imul(x, 0xac4c1b51);
  x ^= x >>> 15;
  x = Math.imul(x, 0x31848bab);
  x ^= x >>> 14;
  return x >>> 0;
}

/** Host twin of `rng_key`: the (seed, stream) half of the hash, to pass to keyed kernels. */
export function rngKey(seed: number, stream: number): number {
  return rngMix(rngMix((seed ^ SEED_SALT) >>> 0) ^ stream);
}

/** Host twin of `rng_u32` (bit-exact). */
export function rngU32(seed: number, stream: number, counter: number): number {
  return rngMix(rngKey(seed, stream) ^ rngMix((counter ^ COUNTER_SALT) >>> 0));
}

/** Host twin of `rng_uniform` (bit-exact: 24-bit values are exact in f32 and f64). */
export function rngUniform(seed: number, stream: number, counter: number): number {
  return (rngU32(seed, stream, counter) >>> 8) * INV_2_24;
}

/** Host mirror of the shader's per-value draw sequence, with float64 arithmetic. */
class DrawSequence {
  #n = 0;
  readonly #key: number;
  constructor(seed: number, stream: number, counter: number) {
    this.#key = rngU32(seed, stream, counter);
  }
  next(): number {
    return rngMix(this.#key ^ rngMix((this.#n++ ^ DRAW_SALT) >>> 0));
  }
  open(): number {
    return ((this.next() >>> 8) + 1) * INV_2_24;
  }
  normal(): number {
    const u1 = this.open();
    const u2 = (this.next() >>> 8) * INV_2_24;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  logGamma(shape: number): number {
    let a = shape;
    let boost = 0;
    if (a < 1) {
      boost = Math.log(this.open()) / a;
      a += 1;
    }
    const d = a - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (let tries = 0; tries < GAMMA_MAX_TRIES; tries++) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      const u = this.open();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
        return Math.log(d) + Math.log(v) + boost;
      }
    }
    return Math.log(d) + boost;
  }
}

/**
 * CPU reference of `rng_normal` (float64 arithmetic on the same draws: equal to the shader's
 * value up to f32 rounding of log/cos).
 */
export function rngNormalRef(seed: number, stream: number, counter: number): number {
  return new DrawSequence(seed, stream, counter).normal();
}

/**
 * CPU reference of `rng_gamma`, same draws in float64 (a rejection step decided differently by
 * rounding is possible but rare).
 */
export function rngGammaRef(seed: number, stream: number, counter: number, shape: number): number {
  return Math.exp(new DrawSequence(seed, stream, counter).logGamma(shape));
}

/** CPU reference of `rng_beta`, same draws in float64. */
export function rngBetaRef(
  seed: number,
  stream: number,
  counter: number,
  a: number,
  b: number,
): number {
  const s = new DrawSequence(seed, stream, counter);
  const lx = s.logGamma(a);
  const ly = s.logGamma(b);
  return 1 / (1 + Math.exp(Math.min(80, Math.max(-80, ly - lx))));
}
