/**
 * ReduceLROnPlateau with PyTorch's semantics (threshold_mode "rel"): after `patience` epochs without
 * an improvement larger than `threshold` (relative), the learning rate is multiplied by `factor`
 * (not below `minLearningRate`), then `cooldown` epochs pass before counting again. As in PyTorch, a
 * NaN metric is never an improvement (it counts as a bad epoch), and a reduction of `eps` or less
 * (default 1e-8) leaves the learning rate unchanged.
 */
export interface PlateauConfig {
  mode?: "max" | "min";
  factor?: number;
  patience?: number;
  threshold?: number;
  cooldown?: number;
  minLearningRate?: number;
  /** Minimal decay: a reduction of at most eps is not applied (PyTorch's eps, default 1e-8). */
  eps?: number;
}

export interface PlateauState {
  best: number;
  badEpochs: number;
  cooldownLeft: number;
}

export class ReduceLROnPlateau {
  readonly mode: "max" | "min";
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly cooldown: number;
  readonly minLearningRate: number;
  readonly eps: number;
  state: PlateauState;

  constructor(config: PlateauConfig = {}) {
    this.mode = config.mode ?? "max";
    this.factor = config.factor ?? 0.1;
    if (!(this.factor > 0 && this.factor < 1)) {
      throw new Error(`ReduceLROnPlateau: factor must be in (0, 1), got ${this.factor}`);
    }
    this.patience = config.patience ?? 10;
    this.threshold = config.threshold ?? 1e-4;
    this.cooldown = config.cooldown ?? 0;
    this.minLearningRate = config.minLearningRate ?? 0;
    this.eps = config.eps ?? 1e-8;
    this.state = { best: this.mode === "max" ? -Infinity : Infinity, badEpochs: 0, cooldownLeft: 0 };
  }

  private isBetter(value: number): boolean {
    return this.mode === "max"
      ? value > this.state.best * (1 + this.threshold)
      : value < this.state.best * (1 - this.threshold);
  }

  /** Records an epoch's metric and returns the learning rate to use next. */
  step(metric: number, learningRate: number): number {
    if (this.isBetter(metric)) {
      this.state.best = metric;
      this.state.badEpochs = 0;
    } else {
      this.state.badEpochs += 1;
    }
    if (this.state.cooldownLeft > 0) {
      this.state.cooldownLeft -= 1;
      this.state.badEpochs = 0;
    }
    if (this.state.badEpochs > this.patience) {
      const reduced = Math.max(learningRate * this.factor, this.minLearningRate);
      this.state.cooldownLeft = this.cooldown;
      this.state.badEpochs = 0;
      return learningRate - reduced > this.eps ? reduced : learningRate;
    }
    return learningRate;
  }
}
