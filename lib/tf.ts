/**
 * The one tfjs entry point of the suite. tfjs-core alone registers no gradients (and its ESM
 * files cannot be deep-imported under Deno), so this re-exports the @tensorflow/tfjs umbrella,
 * which registers every gradient and the chained ops on the same tfjs-core instance.
 *   import { tf } from "../tf.ts";
 */
import * as tf from "@tensorflow/tfjs";

export { tf };
