/**
 * The reference's cross-entropy variant as a pair classifier: a small tfjs network (one hidden ReLU layer)
 * over the same feature matrix the boosted classifier reads, trained with binary cross-entropy (Adam,
 * seeded initialisation and batch order), the epoch with the lowest validation log loss kept. Columns are
 * standardised on the training pairs; a missing value (NaN) becomes the training mean plus a 0/1 "missing"
 * input for that column, so absence is evidence of its own, as it is for the trees.
 *
 * Why it decides: integrated gradients of the log-odds from the all-means input (every column at its
 * training mean, nothing missing), per original feature (its value and its "missing" input together). The
 * bias is the log-odds of that all-means input, so a row's contributions and bias add up to its log-odds up
 * to the integral's approximation (`IG_STEPS` midpoints).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { SeededRandom } from "../data/random.ts";
import {
  checkColumns,
  checkLabels,
  type Contributions,
  type FitReport,
  type FitRound,
  type LabelledMatrix,
  type PairClassifier,
  readManifest,
  writeManifest,
} from "./classifier.ts";
import type { FeatureMatrix } from "./pair_evidence.ts";
import { join } from "node:path";

/** Options of `fitBceHead`. */
export interface BceHeadOptions {
  /** Units of the hidden layer (default 32). */
  hidden?: number;
  /** Most epochs (default 40). */
  epochs?: number;
  /** Epochs without a lower validation log loss before stopping (default 5; 0 = never). */
  earlyStopping?: number;
  /** Pairs per step (default 1024). */
  batchSize?: number;
  /** Adam's learning rate (default 1e-3). */
  learningRate?: number;
  /** L2 penalty on the weights (default 1e-4). */
  l2?: number;
  /** Seed of the initialisation and the batch order (default 42). */
  seed?: number;
  /** Called after each epoch. */
  onEpoch?: (round: FitRound) => void;
}

/** Defaults of `fitBceHead`. */
export const BCE_HEAD_DEFAULTS = {
  hidden: 32,
  epochs: 40,
  earlyStopping: 5,
  batchSize: 1024,
  learningRate: 1e-3,
  l2: 1e-4,
  seed: 42,
} as const;

/** Midpoints of the integrated-gradients integral. */
export const IG_STEPS = 64;

/** Column statistics of the training pairs: mean and standard deviation, and which columns have missing values. */
interface Standardizer {
  mean: number[];
  std: number[];
  /** Columns that get a "missing" input, in order. */
  missing: number[];
}

function fitStandardizer(x: FeatureMatrix): Standardizer {
  const d = x.names.length;
  const sum = new Float64Array(d), squares = new Float64Array(d), count = new Float64Array(d);
  const hasMissing = new Uint8Array(d);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < d; j++) {
      const v = x.values[r * d + j];
      if (Number.isNaN(v)) {
        hasMissing[j] = 1;
        continue;
      }
      sum[j] += v;
      squares[j] += v * v;
      count[j]++;
    }
  }
  const mean = Array.from(sum, (s, j) => (count[j] ? s / count[j] : 0));
  const std = Array.from(squares, (s, j) => {
    const variance = count[j] ? s / count[j] - mean[j] * mean[j] : 0;
    return variance > 1e-12 ? Math.sqrt(variance) : 1;
  });
  return { mean, std, missing: [...hasMissing.keys()].filter((j) => hasMissing[j]) };
}

/** The network's inputs: standardised columns (missing = 0, the mean), then the "missing" indicators. */
function standardize(s: Standardizer, x: FeatureMatrix): Float32Array {
  const d = s.mean.length, width = d + s.missing.length;
  const out = new Float32Array(x.rows * width);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < d; j++) {
      const v = x.values[r * d + j];
      out[r * width + j] = Number.isNaN(v) ? 0 : (v - s.mean[j]) / s.std[j];
    }
    s.missing.forEach((j, m) => (out[r * width + d + m] = Number.isNaN(x.values[r * d + j]) ? 1 : 0));
  }
  return out;
}

/** The weights, as plain arrays (saved in `classifier.json`). */
interface HeadWeights {
  w1: number[];
  b1: number[];
  w2: number[];
  b2: number[];
}

type Variables = { w1: tf.Variable; b1: tf.Variable; w2: tf.Variable; b2: tf.Variable };

/** A variable holding `initial` (which is then disposed: a variable keeps its own reference to the data). */
function variableOf(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}

function variables(weights: HeadWeights, inputs: number, hidden: number): Variables {
  return {
    w1: variableOf(tf.tensor2d(weights.w1, [inputs, hidden])),
    b1: variableOf(tf.tensor1d(weights.b1)),
    w2: variableOf(tf.tensor2d(weights.w2, [hidden, 1])),
    b2: variableOf(tf.tensor1d(weights.b2)),
  };
}

function logits(v: Variables, x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.relu(x.matMul(v.w1).add(v.b1)).matMul(v.w2).add(v.b2).reshape([-1]) as tf.Tensor1D);
}

async function readWeights(v: Variables): Promise<HeadWeights> {
  const [w1, b1, w2, b2] = await Promise.all([v.w1, v.b1, v.w2, v.b2].map((t) => t.data()));
  return { w1: Array.from(w1), b1: Array.from(b1), w2: Array.from(w2), b2: Array.from(b2) };
}

class BceHead implements PairClassifier {
  readonly kind = "bce-head";
  private vars: Variables | null;
  constructor(
    readonly featureNames: readonly string[],
    readonly report: FitReport,
    private readonly standardizer: Standardizer,
    private readonly weights: HeadWeights,
    private readonly settings: Record<string, unknown>,
  ) {
    this.vars = variables(weights, this.inputs, weights.b1.length);
  }

  private get inputs(): number {
    return this.standardizer.mean.length + this.standardizer.missing.length;
  }

  private live(): Variables {
    if (!this.vars) throw new Error("BCE head: used after dispose()");
    return this.vars;
  }

  /** Log-odds of each row. */
  async predictMargins(x: FeatureMatrix): Promise<Float64Array> {
    checkColumns(this.featureNames, x, "predictMargins");
    const input = tf.tensor2d(standardize(this.standardizer, x), [x.rows, this.inputs]);
    const out = logits(this.live(), input);
    try {
      return Float64Array.from(await out.data());
    } finally {
      input.dispose();
      out.dispose();
    }
  }

  async predictProbabilities(x: FeatureMatrix): Promise<Float64Array> {
    return (await this.predictMargins(x)).map((z) => 1 / (1 + Math.exp(-z)));
  }

  async contributions(x: FeatureMatrix): Promise<Contributions> {
    checkColumns(this.featureNames, x, "contributions");
    const v = this.live();
    const width = this.inputs, d = this.featureNames.length;
    const input = tf.tensor2d(standardize(this.standardizer, x), [x.rows, width]);
    const gradient = tf.grad((z: tf.Tensor) => logits(v, z as tf.Tensor2D).sum());
    let total: tf.Tensor = tf.zerosLike(input);
    for (let k = 0; k < IG_STEPS; k++) {
      const next = tf.tidy(() => total.add(gradient(input.mul((k + 0.5) / IG_STEPS))));
      total.dispose();
      total = next;
    }
    const integrated = tf.tidy(() => total.mul(input).div(IG_STEPS));
    const zero = tf.zeros([1, width]) as tf.Tensor2D;
    const biasTensor = logits(v, zero);
    try {
      const [ig, biasValue] = await Promise.all([integrated.data(), biasTensor.data()]);
      const values = new Float32Array(x.rows * d);
      for (let r = 0; r < x.rows; r++) {
        for (let j = 0; j < d; j++) values[r * d + j] = ig[r * width + j];
        this.standardizer.missing.forEach((j, m) => (values[r * d + j] += ig[r * width + d + m]));
      }
      return { names: [...this.featureNames], values, bias: new Float32Array(x.rows).fill(biasValue[0]), rows: x.rows };
    } finally {
      tf.dispose([input, total, integrated, zero, biasTensor]);
    }
  }

  async save(dir: string): Promise<string[]> {
    this.live();
    const manifest = await writeManifest(dir, {
      kind: this.kind,
      featureNames: [...this.featureNames],
      report: this.report,
      settings: { ...this.settings, standardizer: this.standardizer, weights: this.weights },
    });
    return [manifest];
  }

  dispose(): void {
    if (this.vars) tf.dispose(Object.values(this.vars));
    this.vars = null;
  }
}

function checkOption(name: string, value: number, min: number, integer = true): void {
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`BCE head: ${name} = ${value}; expected ${integer ? "an integer" : "a number"} >= ${min}`);
  }
}

/** Mean binary cross-entropy of the logits `z` against `y`. */
function logLoss(z: tf.Tensor1D, y: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.losses.sigmoidCrossEntropy(y, z) as tf.Scalar);
}

/**
 * Fits the head on `train` (the epoch with the lowest validation log loss kept when `validation` is given,
 * else the last). Throws naming the problem on bad labels, mismatched columns or options.
 */
export async function fitBceHead(
  train: LabelledMatrix,
  validation: LabelledMatrix | null,
  options: BceHeadOptions = {},
): Promise<PairClassifier> {
  checkLabels(train, "training pairs");
  if (validation) {
    checkLabels(validation, "validation pairs");
    checkColumns(train.names, validation, "validation pairs");
  }
  const o = { ...BCE_HEAD_DEFAULTS, ...options };
  checkOption("hidden", o.hidden, 1);
  checkOption("epochs", o.epochs, 1);
  checkOption("earlyStopping", o.earlyStopping, 0);
  checkOption("batchSize", o.batchSize, 1);
  checkOption("learningRate", o.learningRate, Number.MIN_VALUE, false);
  checkOption("l2", o.l2, 0, false);
  const started = performance.now();
  const standardizer = fitStandardizer(train);
  const width = standardizer.mean.length + standardizer.missing.length;
  const random = new SeededRandom(o.seed);
  const glorot = (fanIn: number, fanOut: number) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Array.from({ length: fanIn * fanOut }, () => (random.next() * 2 - 1) * limit);
  };
  const rate = Math.min(Math.max(Array.from(train.labels).reduce((a, b) => a + b, 0) / train.rows, 1e-6), 1 - 1e-6);
  const v = variables(
    {
      w1: glorot(width, o.hidden),
      b1: new Array(o.hidden).fill(0),
      w2: glorot(o.hidden, 1),
      b2: [Math.log(rate / (1 - rate))],
    },
    width,
    o.hidden,
  );
  const x = tf.tensor2d(standardize(standardizer, train), [train.rows, width]);
  const y = tf.tensor1d(Float32Array.from(train.labels));
  const xVal = validation ? tf.tensor2d(standardize(standardizer, validation), [validation.rows, width]) : null;
  const yVal = validation ? tf.tensor1d(Float32Array.from(validation.labels)) : null;
  const optimizer = tf.train.adam(o.learningRate);
  try {
    const history: FitRound[] = [];
    let best = { epoch: 0, loss: Infinity, weights: await readWeights(v) };
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = random.shuffle(Array.from({ length: train.rows }, (_, i) => i));
      for (let start = 0; start < order.length; start += o.batchSize) {
        const index = tf.tensor1d(order.slice(start, start + o.batchSize), "int32");
        tf.tidy(() => {
          const xb = tf.gather(x, index), yb = tf.gather(y, index);
          optimizer.minimize(
            () => {
              const penalty = tf.addN([v.w1, v.w2].map((w) => w.square().sum())).mul(o.l2);
              return logLoss(logits(v, xb as tf.Tensor2D), yb as tf.Tensor1D).add(penalty) as tf.Scalar;
            },
            false,
            [v.w1, v.b1, v.w2, v.b2],
          );
        });
        index.dispose();
      }
      const round: FitRound = { round: epoch };
      if (xVal && yVal) {
        const loss = tf.tidy(() => logLoss(logits(v, xVal), yVal));
        round.validation = (await loss.data())[0];
        loss.dispose();
        if (round.validation < best.loss) best = { epoch, loss: round.validation, weights: await readWeights(v) };
      }
      history.push(round);
      o.onEpoch?.(round);
      if (xVal && o.earlyStopping > 0 && epoch - best.epoch >= o.earlyStopping) break;
    }
    const weights = xVal ? best.weights : await readWeights(v);
    const report: FitReport = {
      history,
      bestRound: xVal ? best.epoch : history.length,
      seconds: (performance.now() - started) / 1000,
    };
    const { onEpoch: _, ...settings } = o;
    return new BceHead([...train.names], report, standardizer, weights, settings);
  } finally {
    tf.dispose([x, y, ...(xVal ? [xVal] : []), ...(yVal ? [yVal] : []), ...Object.values(v)]);
    optimizer.dispose();
  }
}

/** Reads a BCE head saved by `save`. */
export async function loadBceHead(dir: string): Promise<PairClassifier> {
  const manifest = await readManifest(dir);
  if (manifest.kind !== "bce-head") {
    throw new Error(`${join(dir, "classifier.json")}: a ${manifest.kind} classifier, not bce-head`);
  }
  const { standardizer, weights, ...settings } = manifest.settings as {
    standardizer: Standardizer;
    weights: HeadWeights;
  };
  return new BceHead(manifest.featureNames, manifest.report, standardizer, weights, settings);
}
