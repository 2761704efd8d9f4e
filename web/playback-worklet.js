// Playback worklet: one adaptive jitter buffer per stream (the mix, or each other speaker),
// summed into the output. Runs on the audio thread.

const FRAME = 960; // 20 ms at 48 kHz
const MIN_TARGET = 2 * FRAME; // 40 ms
const START_TARGET = 3 * FRAME; // 60 ms
const MAX_TARGET = 15 * FRAME; // 300 ms
const STABLE_BLOCKS = 48000 * 5 / 128; // about 5 s of render quanta

class Stream {
  constructor() {
    this.queue = [];
    this.offset = 0;
    this.buffered = 0;
    this.target = START_TARGET;
    this.playing = false;
    this.underruns = 0;
    this.stable = 0;
  }

  push(pcm) {
    this.queue.push(pcm);
    this.buffered += pcm.length;
    // Too far ahead (a burst after a stall, or the join burst): drop the oldest frames so
    // the delay comes back to the target instead of staying high.
    if (this.buffered > this.target + 5 * FRAME) {
      while (this.buffered > this.target + FRAME && this.queue.length > 1) {
        const old = this.queue.shift();
        this.buffered -= old.length - this.offset;
        this.offset = 0;
      }
    }
  }

  /** Adds this stream's next samples into `out`. */
  render(out) {
    if (!this.playing) {
      if (this.buffered < this.target) return;
      this.playing = true;
    }
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      for (let k = 0; k < n; k++) out[i + k] += head[this.offset + k];
      i += n;
      this.offset += n;
      this.buffered -= n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    if (i < out.length) {
      // Underrun: wait for a deeper buffer before playing again.
      this.playing = false;
      this.underruns += 1;
      this.stable = 0;
      this.target = Math.min(this.target + FRAME, MAX_TARGET);
    } else if (++this.stable > STABLE_BLOCKS && this.target > MIN_TARGET) {
      this.stable = 0;
      this.target -= FRAME / 2;
    }
  }
}

/** Goertzel power of `freq` in `x` (48 kHz), a sine of amplitude a giving about a²/4. */
function tonePower(x, freq) {
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / 48000);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.length * x.length);
}

/** The marker tone whose onsets the output reports (mouth-to-ear measurements). */
const MARKER_HZ = 1000;
const ONSET = 10 ** (-36 / 10);
const QUIET = 10 ** (-50 / 10);

class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.streams = new Map();
    this.blocks = 0;
    // 20 ms of output at a time, watched for the marker tone starting.
    this.watch = new Float32Array(960);
    this.watched = 0;
    this.watchStart = 0;
    this.quiet = 0;
    this.port.onmessage = (e) => {
      const { id, pcm, drop } = e.data;
      if (drop) {
        this.streams.delete(id);
        return;
      }
      let s = this.streams.get(id);
      if (!s) {
        s = new Stream();
        this.streams.set(id, s);
      }
      s.push(pcm);
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    for (const s of this.streams.values()) s.render(out);
    for (let i = 0; i < out.length; i++) {
      const x = out[i];
      // Soft limit the sum of several speakers.
      out[i] = x > 0.9 || x < -0.9 ? Math.tanh(x) : x;
      if (this.watched === 0) this.watchStart = currentTime + i / sampleRate;
      this.watch[this.watched++] = out[i];
      if (this.watched === this.watch.length) {
        this.watched = 0;
        const p = tonePower(this.watch, MARKER_HZ);
        if (p > ONSET && this.quiet >= 3) this.port.postMessage({ onset: this.watchStart });
        this.quiet = p < QUIET ? this.quiet + 1 : 0;
      }
    }
    if (++this.blocks % 188 === 0) {
      let buffered = 0;
      let underruns = 0;
      for (const s of this.streams.values()) {
        buffered = Math.max(buffered, s.buffered);
        underruns += s.underruns;
      }
      this.port.postMessage({ bufferedMs: (buffered / 48), underruns });
    }
    return true;
  }
}

registerProcessor('stentor-playback', Playback);
