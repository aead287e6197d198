/** Fault injection: seeded decisions to fail, drop or delay an ingestion request. */

/** What to do with one ingestion request. */
export type Fault = "none" | "drop" | "fail" | "lose-ack";

/** mulberry32: a small, fast PRNG whose sequence depends only on the seed. Returns numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Decides the fault for each request in turn. Two draws per request from one
 * generator (drop, fail), always, so each of those rates keeps its sequence;
 * lost acknowledgements draw from a second generator, so turning them on
 * leaves the other two sequences as they were.
 */
export class FaultPlan {
  readonly failRate: number;
  readonly dropRate: number;
  readonly loseAckRate: number;
  #random: () => number;
  #ackRandom: () => number;

  constructor(failRate: number, dropRate: number, seed: number, loseAckRate = 0) {
    this.failRate = failRate;
    this.dropRate = dropRate;
    this.loseAckRate = loseAckRate;
    this.#random = seededRandom(seed);
    this.#ackRandom = seededRandom(seed ^ 0x5bd1e995);
  }

  /** Whether any fault can happen (else `next()` need not be called). */
  get enabled(): boolean {
    return this.failRate > 0 || this.dropRate > 0 || this.loseAckRate > 0;
  }

  next(): Fault {
    const drop = this.#random() < this.dropRate;
    const fail = this.#random() < this.failRate;
    if (drop) return "drop";
    if (fail) return "fail";
    return this.loseAckRate > 0 && this.#ackRandom() < this.loseAckRate ? "lose-ack" : "none";
  }
}
