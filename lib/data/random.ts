/** A small seeded random number generator (mulberry32) and helpers, so generated data is reproducible. */

/** A seeded source of uniform numbers in [0, 1) with sampling helpers. */
export class SeededRandom {
  private state: number;

  /** Starts the stream from an integer seed (any number; it is hashed to 32 bits). */
  constructor(seed: number) {
    this.state = (Math.imul(Math.trunc(seed) ^ 0x9e3779b9, 0x85ebca6b) >>> 0) || 0x1234567;
  }

  /** The next uniform number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max] (both inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("SeededRandom.pick: the array is empty");
    return items[Math.floor(this.next() * items.length)];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** `count` distinct elements (all of them, shuffled, when count >= length). */
  sample<T>(items: readonly T[], count: number): T[] {
    return this.shuffle(items).slice(0, Math.max(0, count));
  }

  /** A new generator derived from this one and a label, so sub-streams do not disturb each other. */
  fork(label: string): SeededRandom {
    let hash = 2166136261;
    for (const ch of label) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619);
    return new SeededRandom((Math.floor(this.next() * 4294967296) ^ hash) >>> 0);
  }
}
