// @ts-check
// Answers assembled from `assistant_token` deltas by seq (no dependencies: also runs under node for tests).

/**
 * An answer assembled from `assistant_token` deltas: deltas are kept by seq, the contiguous run after the
 * last applied seq is appended, and a seq already applied is ignored — so replays after a reconnect
 * neither duplicate nor drop text.
 */
export class StreamAssembler {
  constructor(text = "", lastSeq = 0) {
    this.text = text;
    this.lastSeq = lastSeq;
    /** @type {Map<number, string>} deltas after a gap, by seq */
    this.pending = new Map();
  }

  /** Apply one delta; returns true when the text grew. @param {number} seq @param {string} delta */
  apply(seq, delta) {
    if (seq <= this.lastSeq || this.pending.has(seq)) return false;
    this.pending.set(seq, delta);
    let grew = false;
    while (this.pending.has(this.lastSeq + 1)) {
      this.lastSeq += 1;
      this.text += this.pending.get(this.lastSeq);
      this.pending.delete(this.lastSeq);
      grew = true;
    }
    return grew;
  }
}
