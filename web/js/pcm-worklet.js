// @ts-check
// AudioWorklet: the microphone at the context's rate (usually 48 kHz) → 16 kHz mono pcm16 (s16le).
//
// Resampling is a windowed-sinc low-pass evaluated at each output instant (cut-off 7.2 kHz, below the
// 8 kHz Nyquist of 16 kHz, Blackman window, 32 input samples wide at 48 kHz), so it works for any input
// rate and keeps aliasing out of the speech band. Chunks of 100 ms are posted to the main thread as
// transferable ArrayBuffers, with the chunk's RMS level for a meter. "flush" posts what is left.

const TARGET_RATE = 16000;
const CHUNK_SAMPLES = 1600; // 100 ms at 16 kHz
const CUTOFF_HZ = 7200;
const ZERO_CROSSINGS = 8; // half-width of the filter, in periods of the cut-off

export class Pcm16Resampler {
  /** @param {number} inputRate @param {(pcm: Int16Array, level: number) => void} onChunk */
  constructor(inputRate, onChunk) {
    this.step = inputRate / TARGET_RATE; // input samples per output sample
    this.fc = Math.min(CUTOFF_HZ, (inputRate / 2) * 0.9) / inputRate; // normalised cut-off (cycles/sample)
    this.half = Math.ceil(ZERO_CROSSINGS / (2 * this.fc)); // filter half-width in input samples
    this.buffer = new Float32Array(0);
    this.base = 0; // absolute index of buffer[0]
    this.time = 0; // absolute input position of the next output sample
    this.out = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    this.squares = 0;
    this.onChunk = onChunk;
    /** @type {Map<number, Float32Array>} */
    this.cache = new Map();
  }

  /** @param {number} distance */
  kernel(distance) {
    const x = distance / this.half;
    if (x <= -1 || x >= 1) return 0;
    const window = 0.42 + 0.5 * Math.cos(Math.PI * x) + 0.08 * Math.cos(2 * Math.PI * x); // Blackman
    const arg = 2 * Math.PI * this.fc * distance;
    return 2 * this.fc * (arg === 0 ? 1 : Math.sin(arg) / arg) * window;
  }

  /** The taps for an output instant `phase` (0 ≤ phase < 1) past an input sample, normalised to unit gain. @param {number} phase */
  weights(phase) {
    const key = Math.round(phase * 1e6);
    let taps = this.cache.get(key);
    if (!taps) {
      taps = new Float32Array(2 * this.half);
      let gain = 0;
      for (let j = 0; j < taps.length; j++) gain += taps[j] = this.kernel(phase + this.half - 1 - j);
      for (let j = 0; j < taps.length; j++) taps[j] /= gain;
      if (this.cache.size < 4096) this.cache.set(key, taps);
    }
    return taps;
  }

  /** Feed mono float samples in [-1, 1]. @param {Float32Array} samples */
  push(samples) {
    const merged = new Float32Array(this.buffer.length + samples.length);
    merged.set(this.buffer);
    merged.set(samples, this.buffer.length);
    this.buffer = merged;
    const end = this.base + this.buffer.length;
    while (this.time + this.half < end) {
      const centre = Math.floor(this.time);
      const weights = this.weights(this.time - centre);
      const first = centre - this.half + 1 - this.base;
      let acc = 0;
      for (let j = 0; j < weights.length; j++) if (first + j >= 0) acc += this.buffer[first + j] * weights[j];
      this.emitSample(acc);
      this.time += this.step;
    }
    const keep = Math.floor(this.time) - this.half; // the oldest sample still needed
    if (keep > this.base) {
      this.buffer = this.buffer.slice(keep - this.base);
      this.base = keep;
    }
  }

  /** @param {number} value */
  emitSample(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.out[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.squares += clamped * clamped;
    if (this.filled === CHUNK_SAMPLES) this.emitChunk();
  }

  emitChunk() {
    if (!this.filled) return;
    const pcm = this.out.slice(0, this.filled);
    const level = Math.sqrt(this.squares / this.filled);
    this.filled = 0;
    this.squares = 0;
    this.onChunk(pcm, level);
  }

  /** The samples still inside the filter's reach, then the partial chunk. */
  flush() {
    this.push(new Float32Array(this.half + 1));
    this.emitChunk();
  }
}

if (typeof AudioWorkletProcessor !== "undefined") {
  class Pcm16Downsampler extends AudioWorkletProcessor {
    constructor() {
      super();
      this.resampler = new Pcm16Resampler(sampleRate, (pcm, level) => {
        this.port.postMessage({ pcm: pcm.buffer, level }, [pcm.buffer]);
      });
      this.port.onmessage = (event) => {
        if (event.data === "flush") {
          this.resampler.flush();
          this.port.postMessage({ flushed: true });
        }
      };
    }

    /** @param {Float32Array[][]} inputs */
    process(inputs) {
      const input = inputs[0];
      if (!input?.length || !input[0].length) return true;
      let mono = input[0];
      if (input.length > 1) {
        mono = new Float32Array(input[0].length);
        for (const channel of input) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
      }
      this.resampler.push(mono);
      return true;
    }
  }

  registerProcessor("pcm16-downsampler", Pcm16Downsampler);
}
