// @ts-check
// Speech out: one audio at a time (a recording, or an answer read aloud), and which messages have played.

import { toast } from "./dom.js";

export class Playback {
  /** @param {(messageId: string) => void} onChange  a message's playing state changed: re-render it */
  constructor(onChange) {
    this.onChange = onChange;
    /** @type {{messageId: string, audio: HTMLAudioElement} | null} */
    this.playing = null;
    /** @type {Set<string>} messages whose audio really started playing in this view */
    this.played = new Set();
  }

  /** @param {string} messageId */
  isPlaying(messageId) {
    return Boolean(this.playing && this.playing.messageId === messageId);
  }

  stop() {
    if (!this.playing) return;
    const { messageId, audio } = this.playing;
    this.playing = null;
    audio.pause();
    this.onChange(messageId);
  }

  /** @param {string} messageId @param {string} url */
  play(messageId, url) {
    this.stop();
    const audio = new Audio(url);
    this.playing = { messageId, audio };
    this.onChange(messageId);
    const mine = () => this.playing !== null && this.playing.audio === audio;
    audio.addEventListener("ended", () => mine() && this.stop());
    audio.addEventListener("error", () => {
      if (mine()) this.stop();
      toast("The audio could not be played.", "error");
    });
    audio
      .play()
      .then(() => {
        this.played.add(messageId);
        this.onChange(messageId);
      })
      .catch((err) => {
        if (mine()) this.stop();
        if (err.name !== "AbortError") toast(`Playback blocked: ${err.message}`, "error");
      });
  }

  reset() {
    this.stop();
    this.played.clear();
  }
}
