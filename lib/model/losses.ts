/**
 * Distances and losses for Siamese training. Label convention everywhere: 1 = the two products
 * are the same product (a positive pair), 0 = different products. (The reference's own
 * ContrastiveLoss used the inverted label internally; the formulas here are the same losses with
 * this convention.)
 */
import { tf } from "../tf.ts";

/** Default epsilon of `pairwiseDistance`, as PyTorch's F.pairwise_distance. */
export const PAIRWISE_EPS = 1e-6;

/**
 * Euclidean distance of row pairs, PyTorch's F.pairwise_distance convention:
 * d_i = || a_i - b_i + eps ||_2. The eps keeps the norm (and its gradient) finite when a_i == b_i.
 * a, b: [pairs, dim] -> [pairs].
 */
export function pairwiseDistance(a: tf.Tensor2D, b: tf.Tensor2D, eps: number = PAIRWISE_EPS): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.add(tf.sub(a, b), eps)), 1)) as tf.Tensor1D);
}

function checkPairs(distances: tf.Tensor, labels: tf.Tensor, what: string): void {
  if (distances.rank !== 1 || labels.rank !== 1 || distances.shape[0] !== labels.shape[0]) {
    throw new Error(`${what}: distances [${distances.shape}] and labels [${labels.shape}] must be 1-D of equal length`);
  }
}

/**
 * Contrastive loss (Hadsell et al. 2006), as the reference trains with:
 *   L = mean_i( y_i * d_i^2 + (1 - y_i) * max(0, margin - d_i)^2 )
 * y = 1 pulls a pair together; y = 0 pushes it at least `margin` apart.
 * distances, labels: [pairs] (labels float32 0/1) -> scalar.
 */
export function contrastiveLoss(distances: tf.Tensor1D, labels: tf.Tensor1D, margin: number): tf.Scalar {
  checkPairs(distances, labels, "contrastiveLoss");
  return tf.tidy(() => {
    const y = tf.cast(labels, "float32");
    const positive = tf.mul(y, tf.square(distances));
    const negative = tf.mul(tf.sub(1, y), tf.square(tf.relu(tf.sub(margin, distances))));
    return tf.mean(tf.add(positive, negative)) as tf.Scalar;
  });
}

/**
 * The hard pairs of `onlineContrastiveLoss` as float32 masks [2, pairs] (row 0 hard positives,
 * row 1 hard negatives), picked on the device: reading the distances on the host (`dataSync`)
 * inside the gradient tape fails on webgpu under Deno and stalls every step elsewhere.
 * The selection carries no gradient, as PyTorch's boolean indexing; tfjs has no gradient function
 * for Greater, Less, Equal or the logical ops, so tf.customGrad hides them from the tape and
 * reports a zero gradient.
 * Positives are labels equal to 1, everything else a negative (labels are 0/1). The fallback
 * means are float32 (sum / count, as `Tensor.mean()` in PyTorch), so exact ties select as
 * PyTorch does; a sum of many values may still round differently from PyTorch's summation order.
 * No infinities are used as fillers (WGSL may assume there are none): the max over positives is
 * padded with min(d), the min over negatives with max(d).
 */
const hardPairMasks = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [d, y] = args as [tf.Tensor1D, tf.Tensor1D];
  const value = tf.tidy(() => {
    const positive = tf.equal(y, 1);
    const negative = tf.logicalNot(positive);
    const positives = tf.sum(tf.cast(positive, "float32"));
    const negatives = tf.sum(tf.cast(negative, "float32"));
    const maxPositive = tf.max(tf.where(positive, d, tf.broadcastTo(tf.min(d), d.shape)));
    const minNegative = tf.min(tf.where(negative, d, tf.broadcastTo(tf.max(d), d.shape)));
    const zeros = tf.zerosLike(d);
    // max(count, 1): a group with no members selects nothing whatever its threshold; this avoids 0/0.
    const meanPositive = tf.div(tf.sum(tf.where(positive, d, zeros)), tf.maximum(positives, 1));
    const meanNegative = tf.div(tf.sum(tf.where(negative, d, zeros)), tf.maximum(negatives, 1));
    const negativeThreshold = tf.where(tf.greater(positives, 1), maxPositive, meanNegative);
    const positiveThreshold = tf.where(tf.greater(negatives, 1), minNegative, meanPositive);
    const hardPositive = tf.logicalAnd(positive, tf.greater(d, positiveThreshold));
    const hardNegative = tf.logicalAnd(negative, tf.less(d, negativeThreshold));
    return tf.stack([tf.cast(hardPositive, "float32"), tf.cast(hardNegative, "float32")]) as tf.Tensor2D;
  });
  return { value, gradFunc: () => [tf.zerosLike(d), tf.zerosLike(y)] };
});

/**
 * Online contrastive loss, as sentence-transformers' OnlineContrastiveLoss: only hard pairs count.
 *   hard negatives: y = 0 and d < max(d of positives)   (mean(d of negatives) if fewer than 2 positives)
 *   hard positives: y = 1 and d > min(d of negatives)   (mean(d of positives) if fewer than 2 negatives)
 *   L = sum(d^2 over hard positives) + sum(max(0, margin - d)^2 over hard negatives)
 * Note it is a sum, not a mean, as the original. The selection is made on the device and carries
 * no gradient, as in PyTorch (see `hardPairMasks`); the loss itself is differentiable in `distances`.
 */
export function onlineContrastiveLoss(distances: tf.Tensor1D, labels: tf.Tensor1D, margin: number): tf.Scalar {
  checkPairs(distances, labels, "onlineContrastiveLoss");
  return tf.tidy(() => {
    const [hardPositive, hardNegative] = tf.unstack(hardPairMasks(distances, tf.cast(labels, "float32")));
    const positive = tf.sum(tf.mul(hardPositive, tf.square(distances)));
    const negative = tf.sum(tf.mul(hardNegative, tf.square(tf.relu(tf.sub(margin, distances)))));
    return tf.add(positive, negative) as tf.Scalar;
  });
}

/** Rows scaled to unit L2 norm, as F.normalize (norm clamped at 1e-12). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, "euclidean", 1, true), 1e-12)) as tf.Tensor2D);
}

/**
 * Multiple negatives ranking loss (InfoNCE), as sentence-transformers' MultipleNegativesRankingLoss:
 * anchor i's positive is candidate i; every other candidate (other anchors' positives, and any extra
 * hard negatives appended after the first n rows) is a negative.
 *   s_ij = scale * cos(anchor_i, candidate_j);  L = mean_i( -log softmax_j(s_ij)[j = i] )
 * anchors [n, D], candidates [m >= n, D] -> scalar.
 */
export function multipleNegativesRankingLoss(anchors: tf.Tensor2D, candidates: tf.Tensor2D, scale = 20): tf.Scalar {
  const n = anchors.shape[0];
  if (candidates.shape[0] < n || candidates.shape[1] !== anchors.shape[1]) {
    throw new Error(
      `multipleNegativesRankingLoss: candidates [${candidates.shape}] must have at least as many rows as anchors [${anchors.shape}] and the same width`,
    );
  }
  return tf.tidy(() => {
    const scores = tf.mul(tf.matMul(l2Normalize(anchors), l2Normalize(candidates), false, true), scale);
    const targets = tf.oneHot(tf.range(0, n, 1, "int32"), candidates.shape[0]);
    return tf.losses.softmaxCrossEntropy(targets, scores) as tf.Scalar;
  });
}

/** Default scale of `queryRankingLoss`: logits are -scale * distance. */
export const QUERY_RANKING_SCALE = 4;

/**
 * In-batch negatives per query (multiple negatives ranking over query groups, on distances): each
 * positive pair of a query competes with that query's negative pairs of the batch, as the candidates of
 * one query compete in its ranking.
 *   for a positive i of group g:  l_i = -log( exp(-s d_i) / (exp(-s d_i) + sum_{j in g, y_j = 0} exp(-s d_j)) )
 *   L = mean of l_i over the positives whose group has at least one negative in the batch (0 when none has)
 * distances, labels [pairs] (1 = same product), groups [pairs] int32 (the pair's query) -> scalar.
 * The group and label masks carry no gradient (they do not depend on the distances).
 */
export function queryRankingLoss(
  distances: tf.Tensor1D,
  labels: tf.Tensor1D,
  groups: tf.Tensor1D,
  scale: number = QUERY_RANKING_SCALE,
): tf.Scalar {
  checkPairs(distances, labels, "queryRankingLoss");
  checkPairs(distances, groups, "queryRankingLoss (groups)");
  return tf.tidy(() => {
    const n = distances.shape[0];
    const y = tf.cast(labels, "float32");
    const g = tf.cast(groups, "int32");
    const sameGroup = tf.cast(tf.equal(tf.reshape(g, [n, 1]), tf.reshape(g, [1, n])), "float32");
    const negative = tf.reshape(tf.sub(1, y), [1, n]);
    // Row i: the negatives of i's group; the diagonal: i itself (its own positive logit).
    const competitors = tf.add(tf.mul(sameGroup, negative), tf.eye(n));
    const logits = tf.broadcastTo(tf.reshape(tf.mul(distances, -scale), [1, n]), [n, n]);
    // Masked entries get a large finite negative (no infinities: WGSL may assume there are none).
    const masked = tf.add(tf.mul(logits, competitors), tf.mul(tf.sub(1, competitors), -1e4));
    const perPair = tf.add(tf.logSumExp(masked, 1), tf.mul(distances, scale));
    const hasNegative = tf.cast(tf.greater(tf.sum(tf.mul(sameGroup, negative), 1), 0), "float32");
    const counted = tf.mul(y, hasNegative);
    return tf.div(tf.sum(tf.mul(perPair, counted)), tf.maximum(tf.sum(counted), 1)) as tf.Scalar;
  });
}

/** A pair loss of the training registry: one formula for training batches and for validation. */
export interface PairLoss {
  /** What it computes, for tables and docs. */
  readonly description: string;
  /**
   * True when the loss ranks pairs within their query group: it needs `groups`, and the trainer then
   * batches each query's pairs together.
   */
  readonly grouped?: boolean;
  /** distances [pairs], labels [pairs] (1 = same product), margin, groups [pairs] int32 (grouped losses) -> scalar. */
  readonly apply: (distances: tf.Tensor1D, labels: tf.Tensor1D, margin: number, groups?: tf.Tensor1D) => tf.Scalar;
}

function needGroups(groups: tf.Tensor1D | undefined, what: string): tf.Tensor1D {
  if (!groups) throw new Error(`${what} ranks pairs within their query: it needs each pair's query group`);
  return groups;
}

/** The training losses, by name: the reference's contrastive loss and its online (in-batch hard pairs) variant. */
export const PAIR_LOSSES = {
  "contrastive": {
    description: "mean over pairs of y d^2 + (1 - y) max(0, margin - d)^2 (Hadsell et al., the reference)",
    apply: contrastiveLoss,
  },
  "online-contrastive": {
    description: "sum over the batch's hard pairs only (sentence-transformers' OnlineContrastiveLoss)",
    apply: onlineContrastiveLoss,
  },
  "query-ranking": {
    description: "each positive against its query's negative pairs of the batch (in-batch negatives per query)",
    grouped: true,
    apply: (d, y, _margin, groups) => queryRankingLoss(d, y, needGroups(groups, "query-ranking")),
  },
  "contrastive+query-ranking": {
    description: "the contrastive loss plus the query-ranking loss (calibrated distances, ranked candidates)",
    grouped: true,
    apply: (d, y, margin, groups) =>
      tf.tidy(() => tf.add(contrastiveLoss(d, y, margin), queryRankingLoss(d, y, needGroups(groups, "query-ranking")))),
  },
} as const satisfies Record<string, PairLoss>;
/** The name of a training loss. */
export type TrainingLoss = keyof typeof PAIR_LOSSES;
/** The names of the training losses. */
export const TRAINING_LOSSES = Object.keys(PAIR_LOSSES) as TrainingLoss[];

/** The registry entry of a loss name; an unknown name is an error naming it, `where` it came from and the choices. */
export function pairLoss(name: string, where = "loss"): PairLoss {
  if (!Object.hasOwn(PAIR_LOSSES, name)) {
    throw new Error(`${where} = ${JSON.stringify(name)}; expected one of ${TRAINING_LOSSES.join(", ")}`);
  }
  return PAIR_LOSSES[name as TrainingLoss];
}
