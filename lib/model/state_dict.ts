/**
 * The host-side weight exchange format between checkpoint readers (safetensors, PyTorch .pt)
 * and models: parameter name -> plain typed array with its PyTorch shape and layout.
 * Names and shapes are PyTorch's (e.g. Linear weight is [out, in], Conv2d is [out, in, kh, kw]);
 * each model converts to its tfjs layout when it loads.
 */
export type HostDType = "float32" | "int32";

export interface HostTensor {
  dtype: HostDType;
  /** PyTorch shape. */
  shape: number[];
  data: Float32Array | Int32Array;
}

export type StateDict = Map<string, HostTensor>;

/** What a model reports after loading a state dict. */
export interface LoadReport {
  /** Parameters the model has that the state dict lacks. */
  missing: string[];
  /** Entries of the state dict that the model has no parameter for. */
  unexpected: string[];
  /** Names present in both with different shapes: "name: expected [..], got [..]". */
  mismatched: string[];
}
