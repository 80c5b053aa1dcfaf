/**
 * Training configurations: the named ones as documented in ../shared/paper/reference_defaults.md
 * (with the original's bugs fixed), deep-merged overrides that never touch the named defaults,
 * refusal of unknown keys and wrong types, and the ramps of the loss weights.
 */
import assert from "node:assert/strict";
import {
  mergeConfig,
  NAMED_CONFIGS,
  rampWeight,
  resolveConfig,
  type ScnymConfig,
} from "../scnym/config.ts";
import { assertClose, isScnym } from "./helpers.ts";

/** A config without its name, to compare what two configurations do. */
function behaviour(c: ScnymConfig): Omit<ScnymConfig, "name"> {
  const { name: _, ...rest } = c;
  return rest;
}

Deno.test("the default configuration has the original implementation's values", () => {
  const c = resolveConfig();
  assert.equal(c.name, "default");
  // reference_defaults.md: 3 hidden layers of 256 with dropout 0.5; adversary hidden 256.
  assert.deepEqual(c.model, { hidden: 256, layers: 3, dropout: 0.5, adversaryHidden: 256 });
  // Adadelta lr 1, rho 0.9, eps 1e-6, weight decay 1e-4; 100 epochs, batch 256, patience 40
  // from epoch 20; 10% validation then 10% early stopping; no class balancing.
  assert.deepEqual(c.train, {
    epochs: 100,
    batchSize: 256,
    lr: 1.0,
    rho: 0.9,
    eps: 1e-6,
    weightDecay: 1e-4,
    patience: 40,
    minEpochs: 20,
    validationFraction: 0.1,
    earlyStoppingFraction: 0.1,
    balanceClasses: false,
  });
  // MixMatch: Beta(0.3, 0.3), T = 0.5, ramp to 1 over 100 epochs, no confidence
  // threshold, log1p_drop with p = 0.1.
  assert.deepEqual(c.ssl, {
    enabled: true,
    mixupAlpha: 0.3,
    temperature: 0.5,
    maxWeight: 1.0,
    rampEpochs: 100,
    // The paper's sigmoid ramp, not the original code's linear one (a deliberate choice: see
    // the JSDoc of ScnymConfig.ssl.rampShape).
    rampShape: "sigmoid",
    minConfidence: 0,
    augmentDropout: 0.1,
  });
  // Adversary: reversal weight ramps to 0.1 over 20 epochs, every target cell.
  assert.deepEqual(c.dan, {
    enabled: true,
    maxWeight: 0.1,
    rampEpochs: 20,
    useConfidentOnly: false,
  });
  assert.deepEqual(c.predict, { unknownThreshold: null });
});

Deno.test("named configurations resolve as documented", () => {
  const base = behaviour(resolveConfig("default"));
  assert.deepEqual(Object.keys(NAMED_CONFIGS).sort(), [
    "default",
    "new_identity_discovery",
    "no_dan",
    "no_new_identity",
    "no_ssl",
  ]);
  for (const name of Object.keys(NAMED_CONFIGS)) assert.equal(resolveConfig(name).name, name);

  assert.deepEqual(behaviour(resolveConfig("no_new_identity")), base);

  // The original's no_ssl left MixMatch on; ours turns off MixMatch and the adversary.
  const noSsl = resolveConfig("no_ssl");
  assert.equal(noSsl.ssl.enabled, false);
  assert.equal(noSsl.dan.enabled, false);
  assert.deepEqual(
    behaviour(noSsl),
    { ...base, ssl: { ...base.ssl, enabled: false }, dan: { ...base.dan, enabled: false } },
  );

  assert.deepEqual(
    behaviour(resolveConfig("no_dan")),
    { ...base, dan: { ...base.dan, enabled: false } },
  );

  const nid = resolveConfig("new_identity_discovery");
  assert.deepEqual(behaviour(nid), {
    ...base,
    ssl: { ...base.ssl, minConfidence: 0.9 },
    dan: { ...base.dan, useConfidentOnly: true },
  });

  assert.throws(
    () => resolveConfig("no_sll"),
    isScnym(/unknown configuration "no_sll" \(known: default, .*no_ssl/),
  );
});

Deno.test("overrides deep-merge into a copy and never mutate the named defaults", () => {
  const namedBefore = structuredClone(NAMED_CONFIGS);
  const defaultBefore = resolveConfig();
  const overrides = { train: { epochs: 5, batchSize: 64 }, ssl: { temperature: 0.3 } };
  const overridesBefore = structuredClone(overrides);

  const a = resolveConfig("new_identity_discovery", overrides);
  // Only the overridden leaves change; their siblings keep the named configuration's values.
  assert.equal(a.train.epochs, 5);
  assert.equal(a.train.batchSize, 64);
  assert.equal(a.train.lr, 1.0);
  assert.equal(a.ssl.temperature, 0.3);
  assert.equal(a.ssl.minConfidence, 0.9);
  assert.equal(a.ssl.mixupAlpha, 0.3);
  assert.equal(a.dan.useConfidentOnly, true);

  // Resolving twice gives equal, independent results.
  const b = resolveConfig("new_identity_discovery", overrides);
  assert.deepEqual(b, a);
  assert.notStrictEqual(b.train, a.train);
  a.train.epochs = 999;
  a.ssl.enabled = false;
  assert.equal(b.train.epochs, 5);

  // Nothing shared was touched: the named table, the default, the caller's overrides.
  assert.deepEqual(NAMED_CONFIGS, namedBefore);
  assert.deepEqual(resolveConfig(), defaultBefore);
  assert.deepEqual(overrides, overridesBefore);
  assert.deepEqual(resolveConfig("new_identity_discovery").train.epochs, 100);

  // mergeConfig itself copies: the base stays as it was.
  const base = { x: { y: 1, z: 2 } };
  const merged = mergeConfig(base, { x: { y: 3 } });
  assert.deepEqual(merged, { x: { y: 3, z: 2 } });
  assert.deepEqual(base, { x: { y: 1, z: 2 } });

  // The one nullable field takes a number and null again.
  assert.equal(
    resolveConfig("default", { predict: { unknownThreshold: 0.7 } }).predict.unknownThreshold,
    0.7,
  );
  assert.equal(
    resolveConfig("default", { predict: { unknownThreshold: null } }).predict.unknownThreshold,
    null,
  );
});

Deno.test("unknown keys and wrong types are refused, naming the key", () => {
  const refuse = (overrides: unknown, re: RegExp) =>
    assert.throws(() => resolveConfig("default", overrides), isScnym(re));
  refuse({ trian: { epochs: 5 } }, /overrides: unknown key "trian" \(known: name, model, train/);
  refuse({ train: { epoch: 5 } }, /overrides\.train: unknown key "epoch" \(known: epochs,/);
  refuse({ ssl: { rampShape: 3 } }, /overrides\.ssl\.rampShape: expected a string, got 3/);
  refuse({ train: { epochs: "5" } }, /overrides\.train\.epochs: expected a number, got "5"/);
  refuse({ ssl: { enabled: 1 } }, /overrides\.ssl\.enabled: expected a boolean, got 1/);
  refuse({ model: 3 }, /overrides\.model: expected an object/);
  refuse({ model: [1] }, /overrides\.model: expected an object/);
  refuse("fast", /overrides: expected an object/);
  refuse({ predict: { unknownThreshold: "high" } }, /unknownThreshold: expected a number or null/);
  // null only where the default is null: elsewhere it would slip past the range checks
  // (e.g. `null >= 0` holds) and switch features off silently.
  refuse({ ssl: { enabled: null } }, /overrides\.ssl\.enabled: expected a boolean, got null/);
  refuse(
    { train: { weightDecay: null } },
    /overrides\.train\.weightDecay: expected a number, got null/,
  );
  // Right type, wrong range: the validation names the field.
  refuse({ train: { batchSize: 1 } }, /config default: train\.batchSize must be an integer >= 2/);
  refuse({ train: { epochs: 2.5 } }, /train\.epochs must be an integer >= 1/);
  refuse({ model: { dropout: 1 } }, /model\.dropout must be in \[0, 1\)/);
  refuse({ ssl: { rampShape: "cubic" } }, /ssl\.rampShape must be "linear" or "sigmoid"/);
  refuse({ ssl: { minConfidence: 1.5 } }, /ssl\.minConfidence must be in \[0, 1\]/);
  refuse({ train: { lr: Number.NaN } }, /train\.lr must be > 0/);
  refuse(
    { predict: { unknownThreshold: 2 } },
    /predict\.unknownThreshold must be null or in \[0, 1\]/,
  );
});

Deno.test("rampWeight follows the sigmoid and linear formulas, then holds the maximum", () => {
  // Sigmoid (the adversary's, and the paper's lambda_ssl): 0.1 exp(-5 (1 - e/20)^2) before 20.
  const sigmoid = (e: number) => 0.1 * Math.exp(-5 * (1 - e / 20) ** 2);
  const epochs = [0, 1, 5, 10, 19];
  assertClose(
    epochs.map((e) => rampWeight(e, 0.1, 20, "sigmoid")),
    epochs.map(sigmoid),
    { rtol: 1e-15 },
    "sigmoid",
  );
  assertClose([rampWeight(0, 0.1, 20, "sigmoid")], [0.1 * Math.exp(-5)], { rtol: 1e-15 }, "e = 0");
  // Linear (the original's lambda_ssl): e / 100, so 0.99 at the last of 100 epochs.
  for (const e of [0, 1, 50, 99]) assert.equal(rampWeight(e, 1, 100, "linear"), e / 100);
  // At and past the end of the ramp, and without a ramp: the maximum.
  for (const e of [20, 21, 500]) assert.equal(rampWeight(e, 0.1, 20, "sigmoid"), 0.1);
  for (const e of [100, 150]) assert.equal(rampWeight(e, 1, 100, "linear"), 1);
  assert.equal(rampWeight(0, 0.7, 0, "linear"), 0.7);
  assert.equal(rampWeight(0, 0.7, 0, "sigmoid"), 0.7);
});
