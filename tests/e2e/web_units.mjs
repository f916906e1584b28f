// Unit checks of the web client's pure modules under node: answer assembly by seq, and the 16 kHz resampler.
// Prints one JSON object; tests/e2e/test_web_units.py asserts on it.
import { StreamAssembler } from "../../web/js/stream.js";
import { Pcm16Resampler } from "../../web/js/pcm-worklet.js";
import { showsRefusal } from "../../web/js/refusals.js";

const words = Array.from({ length: 50 }, (_, i) => `w${i} `);
const deltas = words.map((delta, i) => ({ seq: i + 1, delta }));

// live tokens, a reconnect replaying some of them, out of order and twice: the text is still exact
const stream = new StreamAssembler();
const texts = [];
const feed = (list) => list.forEach(({ seq, delta }) => stream.apply(seq, delta) && texts.push(stream.text));
feed(deltas.slice(0, 10));
feed(deltas.slice(14, 20)); // live tokens that arrive before the sync ack fills the gap
feed(deltas.slice(5, 30)); // the sync ack: overlaps both sides
feed([...deltas.slice(30)].reverse());
feed(deltas);
const whole = words.join("");

function tone(rate, freq, seconds = 1) {
  const chunks = [];
  const resampler = new Pcm16Resampler(rate, (pcm) => chunks.push(pcm));
  const n = Math.round(rate * seconds);
  for (let offset = 0; offset < n; offset += 128) {
    const block = new Float32Array(Math.min(128, n - offset));
    for (let i = 0; i < block.length; i++) block[i] = 0.5 * Math.sin((2 * Math.PI * freq * (offset + i)) / rate);
    resampler.push(block);
  }
  resampler.flush();
  const samples = chunks.flatMap((c) => Array.from(c));
  const middle = samples.slice(2000, -2000).map((s) => s / 32768);
  const rms = Math.sqrt(middle.reduce((a, s) => a + s * s, 0) / middle.length);
  let crossings = 0;
  for (let i = 1; i < middle.length; i++) if (middle[i - 1] < 0 !== middle[i] < 0) crossings++;
  return { samples: samples.length, chunks: chunks.map((c) => c.length), rms, freq: crossings / 2 / (middle.length / 16000) };
}

console.log(
  JSON.stringify({
    text: stream.text,
    whole,
    last_seq: stream.lastSeq,
    all_prefixes: texts.every((t) => whole.startsWith(t)),
    growing: texts.every((t, i) => i === 0 || t.length > texts[i - 1].length),
    refusals: {
      audio_chunk_too_long: showsRefusal({ code: "utterance_too_long", message: "too long", event: "audio_chunk" }),
      audio_chunk_rate_limited: showsRefusal({ code: "rate_limited", message: "slow down", event: "audio_chunk", retry_after: 3 }),
      acked_user_message: showsRefusal({ code: "message_too_long", message: "too long", event: "user_message" }),
      busy: showsRefusal({ code: "busy", message: "busy", event: "audio_end" }),
      server_initiated: showsRefusal({ code: "account_erased", message: "erased" }),
    },
    tones: {
      "48000/440": tone(48000, 440),
      "48000/3000": tone(48000, 3000),
      "48000/9000": tone(48000, 9000),
      "44100/1000": tone(44100, 1000),
      "44100/10000": tone(44100, 10000),
    },
  }),
);
