// @ts-check
// Hold-to-talk: microphone → AudioWorklet (16 kHz pcm16) → `audio_start` / `audio_chunk`… / `audio_end`.

const SAMPLE_RATE = 16000;
const MIN_SECONDS = 0.3; // shorter presses are taken as a tap, not speech

export function voiceSupported() {
  // mediaDevices is missing outside secure contexts, whatever the types say
  return typeof navigator.mediaDevices?.getUserMedia === "function" && typeof window.AudioWorkletNode === "function";
}

/**
 * @typedef {object} RecorderEvents
 * @property {(rms: number, seconds: number) => void} onLevel  while recording
 * @property {(state: string, detail?: string) => void} onState  "starting" | "recording" | "transcribing" | "idle" | "error"
 * @typedef {{code?: string, message?: string}} Refusal
 */

/** One utterance at a time over a ChatConnection. */
export class VoiceRecorder {
  /** @param {import("./socket.js").ChatConnection} connection @param {RecorderEvents} events */
  constructor(connection, events) {
    this.connection = connection;
    this.events = events;
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {AudioWorkletNode | null} */
    this.node = null;
    this.active = false;
    /** @type {Promise<boolean> | null} resolves true once `audio_start` is acknowledged */
    this.startAck = null;
    /** @type {ArrayBuffer[] | null} chunks recorded before that ack */
    this.queue = [];
    this.samples = 0;
    this.stopRequested = false;
  }

  /** @returns {Promise<AudioContext>} */
  async _ensureContext() {
    if (!this.context) {
      this.context = new AudioContext();
      await this.context.audioWorklet.addModule("/web/js/pcm-worklet.js");
    }
    if (this.context.state === "suspended") await this.context.resume();
    return this.context;
  }

  /** Start recording (on press). */
  async start() {
    if (this.active) return;
    this.active = true;
    this.stopRequested = false;
    this.samples = 0;
    this.queue = [];
    this.events.onState("starting");
    /** @type {AudioContext} */
    let context;
    try {
      context = await this._ensureContext();
      // a fresh capture per utterance: the mic light goes off between presses
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      this.active = false;
      this._release();
      const e = /** @type {DOMException} */ (err);
      const denied = e && (e.name === "NotAllowedError" || e.name === "SecurityError");
      this.events.onState("error", denied ? "Microphone access was denied." : `Microphone unavailable: ${e?.message || e}`);
      return;
    }
    this.startAck = this.connection
      .call("audio_start", { sample_rate: SAMPLE_RATE, format: "pcm16" })
      .then(() => {
        for (const chunk of this.queue || []) this.connection.emit("audio_chunk", chunk);
        this.queue = null;
        return true;
      })
      .catch((/** @type {Refusal} */ error) => {
        this.events.onState("error", error.message || error.code);
        return false;
      });
    this.source = context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(context, "pcm16-downsampler");
    this.node.port.onmessage = ({ data }) => {
      if (!data.pcm) return;
      this.samples += data.pcm.byteLength / 2;
      if (this.queue) this.queue.push(data.pcm);
      else this.connection.emit("audio_chunk", data.pcm);
      this.events.onLevel(data.level, this.samples / SAMPLE_RATE);
    };
    this.source.connect(this.node);
    this.events.onState("recording");
    if (this.stopRequested) this.stop();
  }

  _flush() {
    return /** @type {Promise<void>} */ (
      new Promise((resolve) => {
        if (!this.node) return resolve();
        const node = this.node;
        const previous = node.port.onmessage;
        node.port.onmessage = (event) => {
          if (event.data.flushed) resolve();
          else previous?.call(node.port, event);
        };
        node.port.postMessage("flush");
      })
    );
  }

  _release() {
    if (this.source) this.source.disconnect();
    if (this.node) this.node.disconnect();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.source = this.node = this.stream = null;
  }

  /** Stop recording (on release) and send the utterance; resolves with the audio_end ack or null. */
  async stop() {
    if (!this.active) return null;
    if (!this.node) {
      this.stopRequested = true; // released while the mic was still opening
      return null;
    }
    this.active = false;
    await this._flush();
    this._release();
    const started = await this.startAck;
    if (!started) {
      this.events.onState("idle");
      return null;
    }
    if (this.samples / SAMPLE_RATE < MIN_SECONDS) {
      await this.connection.call("audio_cancel", {}).catch(() => {});
      this.events.onState("error", "Hold the microphone button while you speak.");
      return null;
    }
    this.events.onState("transcribing");
    try {
      const ack = await this.connection.call("audio_end", {}, 120000);
      this.events.onState("idle");
      return ack;
    } catch (err) {
      const error = /** @type {Refusal} */ (err);
      this.events.onState("error", error.code === "no_speech" ? "No speech was recognized. Try again." : error.message);
      return null;
    }
  }

  /** Drop the utterance (e.g. switching chats). */
  async cancel() {
    if (!this.active) return;
    this.active = false;
    this._release();
    if (await this.startAck) await this.connection.call("audio_cancel", {}).catch(() => {});
    this.events.onState("idle");
  }

  close() {
    this._release();
    if (this.context) this.context.close();
    this.context = null;
  }
}
